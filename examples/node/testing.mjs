// Helpers shared by the tests in test/ (kept outside test/ so `node --test` does not run it as a test file).

import assert from 'node:assert/strict';
import http from 'node:http';

import { createApp } from './server.mjs';

/** Starts the example app on a free loopback port; returns { url, close }. */
export async function startApp(verify) {
  const server = http.createServer(createApp(verify));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

export const bearer = (token) => ({ Authorization: `Bearer ${token}` });

export function unverifiedClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

export async function assertUnauthorized(res) {
  const text = await res.text();
  assert.equal(res.status, 401, text);
  const www = res.headers.get('www-authenticate') ?? '';
  assert.match(www, /^Bearer /);
  assert.ok(www.includes('error="invalid_token"'), www);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = JSON.parse(text);
  assert.equal(body.status, 401);
  assert.equal(body.code, 'unauthorized');
  for (const k of ['type', 'title', 'detail']) assert.ok(k in body, `problem member ${k}`);
}

export async function assertProfileIncomplete(res) {
  const text = await res.text();
  assert.equal(res.status, 403, text);
  const www = res.headers.get('www-authenticate') ?? '';
  assert.match(www, /^Bearer /);
  assert.ok(www.includes('error="insufficient_scope"'), www);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = JSON.parse(text);
  assert.equal(body.status, 403);
  assert.equal(body.code, 'profile_incomplete');
  for (const k of ['type', 'title', 'detail']) assert.ok(k in body, `problem member ${k}`);
}

/** The value of an environment variable the tests need; a clear failure without it (these tests never skip). */
export function requireEnv(name, how) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: ${how} (or run scripts/examples, which sets it)`);
  return value;
}
