// Configuration of the verifier (no network).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bearerToken, createVerifier, createVerifierFromEnv } from '../lanyard-auth.mjs';

test('defaults: audience = issuer, JWKS URL under the issuer, ES256', () => {
  const v = createVerifierFromEnv({ LANYARD_ISSUER: 'https://auth.example.com' });
  assert.deepEqual({ ...v.config }, {
    issuer: 'https://auth.example.com',
    audience: 'https://auth.example.com',
    jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
    algorithms: ['ES256'],
    maxTokenLifetime: 960,
  });
});

test('overrides from the environment', () => {
  const v = createVerifierFromEnv({
    LANYARD_ISSUER: 'https://auth.example.com',
    LANYARD_AUDIENCE: 'https://api.example.com',
    LANYARD_JWKS_URL: 'http://lanyard.internal:8080/.well-known/jwks.json',
    LANYARD_ALGORITHMS: 'ES256, EdDSA',
    LANYARD_MAX_TOKEN_LIFETIME: '3660',
  });
  assert.equal(v.config.audience, 'https://api.example.com');
  assert.equal(v.config.jwksUrl, 'http://lanyard.internal:8080/.well-known/jwks.json');
  assert.deepEqual(v.config.algorithms, ['ES256', 'EdDSA']);
  assert.equal(v.config.maxTokenLifetime, 3660);
});

test('refuses a missing issuer and symmetric or unsigned algorithms', () => {
  assert.throws(() => createVerifierFromEnv({}), /LANYARD_ISSUER/);
  for (const algorithms of [['HS256'], ['none'], []]) {
    assert.throws(() => createVerifier({ issuer: 'https://auth.example.com', algorithms }), TypeError);
  }
  for (const maxTokenLifetime of [0, -1, NaN]) {
    assert.throws(() => createVerifier({ issuer: 'https://auth.example.com', maxTokenLifetime }), TypeError);
  }
  assert.throws(() => createVerifierFromEnv({ LANYARD_ISSUER: 'https://a.example.com', LANYARD_MAX_TOKEN_LIFETIME: '15m' }), TypeError);
});

test('bearerToken parses only a well-formed Bearer header', () => {
  const req = (authorization) => ({ headers: authorization === undefined ? {} : { authorization } });
  assert.equal(bearerToken(req('Bearer abc.def-_.g')), 'abc.def-_.g');
  assert.equal(bearerToken(req('bearer abc')), 'abc');
  for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearerabc']) {
    assert.equal(bearerToken(req(h)), null, String(h));
  }
});
