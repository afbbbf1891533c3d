// Group "live": against a running Lanyard (LANYARD_URL), the whole way a user goes:
// sign up, be refused a personalised chapter (403), complete onboarding, read it (200), refresh.

import assert from 'node:assert/strict';
import net from 'node:net';
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
  });
}
