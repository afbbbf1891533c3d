// Group "live": against a running Lanyard (LANYARD_URL), the whole way a user goes:
// sign up, be refused a personalised chapter (403), complete onboarding, read it (200), refresh.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { createVerifier, createVerifierFromEnv } from '../lanyard-auth.mjs';
import {
  assertProfileIncomplete, assertUnauthorized, bearer, requireEnv, startApp, unverifiedClaims,
} from '../testing.mjs';

const LANYARD_URL = process.env.LANYARD_URL?.replace(/\/+$/, '');
const PERSONALISED = '/chapters/personalised';

async function lanyard(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${LANYARD_URL}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function signUp() {
  const r = await lanyard('POST', '/v1/auth/signup', {
    body: {
      email: `node-${crypto.randomUUID()}@example.com`,
      password: 'correct horse battery staple',
      name: 'Node example',
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

if (!LANYARD_URL) {
  test('live Lanyard', () => {
    requireEnv('LANYARD_URL', 'set it to a running Lanyard\'s base URL, e.g. http://127.0.0.1:8080');
  });
} else {
  describe('live Lanyard', () => {
    let discovery;
    let app; // configured the way it is in production: from the environment
    const get = (path, headers = {}) => fetch(`${app.url}${path}`, { headers });

    before(async () => {
      const r = await lanyard('GET', '/.well-known/openid-configuration');
      assert.equal(r.status, 200, `cannot read Lanyard's discovery document at ${LANYARD_URL}`);
      discovery = r.body;
      app = await startApp(createVerifierFromEnv({ LANYARD_ISSUER: discovery.issuer }));
    });
    after(() => app?.close());

    test('the public route needs no token', async () => {
      const res = await get('/public');
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { message: 'anyone can read this' });
    });

    test('the JWKS URL defaults to the issuer\'s', () => {
      const verify = createVerifierFromEnv({ LANYARD_ISSUER: discovery.issuer });
      assert.equal(verify.config.jwksUrl, discovery.jwks_uri);
      assert.equal(verify.config.audience, discovery.issuer);
    });

    test('onboarding flow: 403 profile_incomplete, PUT profile, 200 personalised, refresh, still 200', async () => {
      const signup = await signUp();
      const { access_token: access, refresh_token: refresh } = signup;
      assert.equal(signup.user.profile_complete, false);

      let res = await get('/me', bearer(access));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(),
        { user_id: signup.user.id, email: signup.user.email, profile_complete: false });
      await assertProfileIncomplete(await get(PERSONALISED, bearer(access)));

      // Onboarding: Lanyard answers with the profile and a fresh access token for the same session.
      const put = await lanyard('PUT', '/v1/me/profile', {
        token: access, body: { python_proficiency: 'beginner', developer_role: 'data_scientist' },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(put.body.token_type, 'Bearer');
      assert.ok(put.body.expires_in > 0);
      assert.equal(put.body.profile.python_proficiency, 'beginner');
      assert.equal(put.body.profile.developer_role, 'data_scientist');
      const fresh = put.body.access_token;
      assert.notEqual(fresh, access);
      assert.equal(unverifiedClaims(fresh).sid, unverifiedClaims(access).sid);
      assert.equal(unverifiedClaims(fresh).profile_complete, true);

      res = await get(PERSONALISED, bearer(fresh));
      assert.equal(res.status, 200);
      const chapter = await res.json();
      assert.equal(chapter.python_proficiency, 'beginner');
      assert.equal(chapter.developer_role, 'data_scientist');
      assert.equal(chapter.example, 'logging sensor data and plotting it');
      assert.match(chapter.opening, /^A quick refresher/);

      // The token issued before onboarding still says profile_complete: false.
      await assertProfileIncomplete(await get(PERSONALISED, bearer(access)));

      // A refresh carries the profile into the new access token.
      const r = await lanyard('POST', '/v1/auth/refresh', { body: { refresh_token: refresh } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const refreshed = r.body.access_token;
      assert.ok(refreshed !== access && refreshed !== fresh);
      res = await get(PERSONALISED, bearer(refreshed));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), chapter);
    });

    test('a missing token is 401', async () => {
      for (const path of ['/me', PERSONALISED]) {
        await assertUnauthorized(await get(path));
        await assertUnauthorized(await get(path, { Authorization: 'Bearer' }));
        await assertUnauthorized(await get(path, { Authorization: 'Basic dXNlcjpwYXNz' }));
      }
    });

    for (const [name, token] of [
      ['garbage', 'garbage'],
      ['three dots', 'a.b.c'],
      ['no signature', 'eyJhbGciOiJFUzI1NiJ9.e30.'],
      ['kid not a string', 'eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6WzFdfQ.e30.AA'],
    ]) {
      test(`a garbage token is 401: ${name}`, async () => {
        await assertUnauthorized(await get('/me', bearer(token)));
        await assertUnauthorized(await get(PERSONALISED, bearer(token)));
      });
    }

    test('a forged token is 401', async () => {
      const access = (await signUp()).access_token;
      const [header, payload, signature] = access.split('.');
      const claims = unverifiedClaims(access);
      claims.profile_complete = true;
      claims.profile = { python_proficiency: 'advanced', developer_role: 'researcher' };
      const forged = Buffer.from(JSON.stringify(claims)).toString('base64url');
      await assertUnauthorized(await get(PERSONALISED, bearer(`${header}.${forged}.${signature}`)));
      const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
      await assertUnauthorized(await get('/me', bearer(`${header}.${payload}.${flipped}`)));
    });

    test('an unreachable JWKS is 401, not 500', async () => {
      const port = await new Promise((resolve) => { // a loopback port with nothing listening
        const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
      });
      const other = await startApp(createVerifier({
        issuer: discovery.issuer, jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
      }));
      try {
        const access = (await signUp()).access_token;
        await assertUnauthorized(await fetch(`${other.url}/me`, { headers: bearer(access) }));
        await assertUnauthorized(await fetch(`${other.url}${PERSONALISED}`, { headers: bearer(access) }));
      } finally {
        await other.close();
      }
    });

    test('a token for another audience is 401', async () => {
      const other = await startApp(createVerifier({
        issuer: discovery.issuer, audience: 'https://another-service.example', jwksUrl: discovery.jwks_uri,
      }));
      try {
        const access = (await signUp()).access_token;
        await assertUnauthorized(await fetch(`${other.url}/me`, { headers: bearer(access) }));
      } finally {
        await other.close();
      }
    });

    // Keep this test LAST in this describe: tests in a describe run one after another,
    // and this is the only file that talks to Lanyard, so no other test sees the rotation
    // half-done. (The FastAPI suite, run before this one, rotates too: each run adds a key.)
    // Not tested here: a token whose kid is not in the JWKS is refused (corpus case
    // unknown_kid, corpus.test.mjs), and the old key leaves the JWKS once its tokens have
    // expired (16+ minutes of real time: internal/identity/rotation_test.go, fake clock).
    test('key rotation (keys rotate --now): a verifier with a cached JWKS accepts old and new kids', async () => {
      const lanyardBin = requireEnv('LANYARD_BIN', 'set it to the lanyard binary the server runs');
      const dataDir = requireEnv('LANYARD_DATA_DIR', 'set it to the running server\'s LANYARD_DATA_DIR');
      const kidOf = (token) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')).kid;

      const signup = await signUp();
      const t1 = signup.access_token;
      const oldKid = kidOf(t1);

      // cooldownDuration 0: refetch at once on an unknown kid. With the default (30 s), a
      // verifier that fetched the JWKS less than 30 s before a --now rotation refuses
      // new-kid tokens until its 30 s are up: the 401s `lanyard keys rotate --help` warns of.
      const verify = createVerifier({
        issuer: discovery.issuer, jwksUrl: discovery.jwks_uri, jwksOptions: { cooldownDuration: 0 },
      });
      const other = await startApp(verify);
      try {
        // The verifier fetches and caches the JWKS (old key only) before the rotation.
        let res = await fetch(`${other.url}/me`, { headers: bearer(t1) });
        assert.equal(res.status, 200, await res.text());

        // execFile rejects unless the exit status is 0.
        await promisify(execFile)(lanyardBin, ['keys', 'rotate', '--now'], {
          env: { ...process.env, LANYARD_DATA_DIR: dataDir }, timeout: 60_000,
        }).catch((err) => assert.fail(`keys rotate --now failed (exit ${err.code}): ${err.stdout}${err.stderr}`));

        // The server switches within LANYARD_KEY_CHECK_INTERVAL (1 s under scripts/examples).
        const deadline = Date.now() + 10_000;
        let kids;
        for (;;) {
          const jwks = await lanyard('GET', new URL(discovery.jwks_uri).pathname);
          assert.equal(jwks.status, 200);
          kids = jwks.body.keys.map((k) => k.kid);
          if (kids.length >= 2 && kids[0] !== oldKid) break;
          assert.ok(Date.now() < deadline, `JWKS did not show the rotation within 10 s: ${kids}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(kids.includes(oldKid), `the old key left the JWKS at once: ${kids}`);

        const login = await lanyard('POST', '/v1/auth/login', {
          body: { email: signup.user.email, password: 'correct horse battery staple' },
        });
        assert.equal(login.status, 200, JSON.stringify(login.body));
        const t2 = login.body.access_token;
        const newKid = kidOf(t2);
        assert.notEqual(newKid, oldKid);
        assert.equal(newKid, kids[0]);

        // The same verifier, JWKS cached before the rotation: both tokens verify.
        for (const token of [t1, t2]) {
          res = await fetch(`${other.url}/me`, { headers: bearer(token) });
          const text = await res.text();
          assert.equal(res.status, 200, text);
          assert.equal(JSON.parse(text).email, signup.user.email);
        }
        assert.equal((await verify(t1)).sub, (await verify(t2)).sub);
      } finally {
        await other.close();
      }
    });
  });
}
