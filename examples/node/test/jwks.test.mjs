// The JWKS cache under a Lanyard outage, against a local JWKS server the tests control.
// Needs neither LANYARD_URL nor LANYARD_CORPUS. Synchronises on events (promises), each
// wait bounded, never on sleeps.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { before, describe, test } from 'node:test';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';

import { InvalidTokenError, createVerifier } from '../lanyard-auth.mjs';

const ISSUER = 'https://id.example.test';
const WAIT = 10_000; // ms: the bound on every wait

const bounded = (promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => { setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT).unref(); }),
]);

/** Serves one JWKS; slow() holds each request until release(); stop() closes the port. */
async function startJWKSServer(jwks) {
  const body = JSON.stringify(jwks);
  const state = { hits: 0, gate: null, arrived: null, onArrive: null };
  const server = http.createServer(async (req, res) => {
    state.hits += 1;
    state.onArrive?.();
    if (state.gate) await state.gate;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let release = () => {};
  return {
    url: `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`,
    get hits() { return state.hits; },
    slow() {
      state.gate = new Promise((resolve) => { release = resolve; });
      state.arrived = new Promise((resolve) => { state.onArrive = resolve; });
    },
    arrived: () => state.arrived,
    release: () => release(),
    stop: () => new Promise((resolve) => { release(); server.closeAllConnections(); server.close(resolve); }),
  };
}

describe('JWKS outage', () => {
  let key;
  let jwk;
  const kid = randomUUID();

  before(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' };
  });

  const token = (k = kid) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      sid: randomUUID(), jti: randomUUID(), email: 'ada@example.com', profile_complete: false, nbf: now,
    })
      .setProtectedHeader({ alg: 'ES256', kid: k, typ: 'at+jwt' })
      .setIssuer(ISSUER).setAudience(ISSUER).setSubject(randomUUID())
      .setIssuedAt(now).setExpirationTime(now + 900)
      .sign(key);
  };

  test('an unreachable JWKS after a first fetch keeps the last good keys', async () => {
    const srv = await startJWKSServer({ keys: [jwk] });
    try {
      // cacheMaxAge 0: the set is stale at once, so every request starts a background refetch.
      const verify = createVerifier({
        issuer: ISSUER, jwksUrl: srv.url, jwksOptions: { cacheMaxAge: 0, cooldownDuration: 0, timeoutDuration: 2_000 },
      });
      assert.equal((await verify(await token())).iss, ISSUER);
      await bounded(verify.jwks.settled(), 'the first fetch');

      await srv.stop(); // Lanyard goes away
      for (let i = 0; i < 3; i += 1) {
        assert.equal((await verify(await token())).iss, ISSUER); // starts a refetch that fails
        await bounded(verify.jwks.settled(), 'the refetch');
        assert.ok(verify.jwks.lastError, 'the refetch did fail');
      }
      assert.equal((await verify(await token())).iss, ISSUER, 'a failed fetch never drops cached keys');
      await assert.rejects(verify(await token('not-a-published-kid')), InvalidTokenError);
      assert.equal((await verify(await token())).iss, ISSUER);
    } finally {
      await srv.stop();
    }
  });

  test('an unreachable JWKS with nothing cached refuses tokens', async () => {
    const srv = await startJWKSServer({ keys: [jwk] });
    await srv.stop();
    const verify = createVerifier({ issuer: ISSUER, jwksUrl: srv.url, jwksOptions: { timeoutDuration: 2_000 } });
    await assert.rejects(verify(await token()), InvalidTokenError);
    await assert.rejects(verify(await token()), InvalidTokenError); // fails fast (failureBackoff)
  });

  test('a slow JWKS does not stall tokens with a cached kid', async () => {
    const srv = await startJWKSServer({ keys: [jwk] });
    try {
      const verify = createVerifier({
        issuer: ISSUER, jwksUrl: srv.url, jwksOptions: { cooldownDuration: 0, timeoutDuration: WAIT },
      });
      assert.equal((await verify(await token())).iss, ISSUER);
      await bounded(verify.jwks.settled(), 'the first fetch');

      srv.slow(); // Lanyard now answers only when released
      let forgedDone = false;
      const forged = verify(await token('forged-kid')).finally(() => { forgedDone = true; });
      forged.catch(() => {});
      await bounded(srv.arrived(), 'the refetch the forged kid triggers');

      const good = await Promise.all(Array.from({ length: 20 }, () => token()));
      const start = performance.now();
      for (const t of good) assert.equal((await verify(t)).iss, ISSUER);
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 1_000, `cached-kid verifications took ${elapsed} ms during a slow fetch`);
      assert.equal(forgedDone, false, 'the forged-kid request waits for the fetch');

      srv.release();
      await assert.rejects(bounded(forged, 'the forged-kid verification'), InvalidTokenError);
    } finally {
      await srv.stop();
    }
  });
});

