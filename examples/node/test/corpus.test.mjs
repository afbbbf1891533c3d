// Group "corpus": every token of the shared corpus (LANYARD_CORPUS, written by
// `go run ./examples/corpus -out FILE`) gets the answer the corpus says: accepted
// (200, or 403 on the personalised route when the profile is incomplete) or refused
// (401 with WWW-Authenticate).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { InvalidTokenError, createVerifier } from '../lanyard-auth.mjs';
import {
  assertProfileIncomplete, assertUnauthorized, bearer, requireEnv, startApp, unverifiedClaims,
} from '../testing.mjs';

const EXPECTED_CASES = [
  'good_complete', 'good_incomplete', 'expired', 'not_yet_valid', 'wrong_issuer', 'wrong_audience',
  'tampered_payload', 'tampered_signature', 'alg_none', 'hs256_public_key', 'unknown_kid',
  'missing_profile_complete', 'wrong_typ', 'missing_sid', 'exp_string', 'exp_huge', 'missing_nbf', 'iat_future',
  'profile_true_without_profile', 'case_variant_claim', 'b64_false', 'trailing_whitespace',
  'case_variant_only', 'duplicate_claim', 'case_duplicate_claim', 'duplicate_profile_member',
  'duplicate_header_member', 'aud_array_with_null', 'lifetime_too_long',
];

const path = process.env.LANYARD_CORPUS;

if (!path) {
  test('token corpus', () => {
    requireEnv('LANYARD_CORPUS', 'set it to the JSON file written by `go run ./examples/corpus -out FILE`');
  });
} else {
  const corpus = JSON.parse(readFileSync(path, 'utf8'));

  describe('token corpus', () => {
    let app;
    let verify;
    const get = (p, token) => fetch(`${app.url}${p}`, { headers: bearer(token) });

    before(async () => {
      verify = createVerifier({
        issuer: corpus.issuer, audience: corpus.audience, jwksUrl: corpus.jwks_url, algorithms: corpus.algorithms,
      });
      app = await startApp(verify);
    });
    after(() => app?.close());

    test('the corpus has every case', () => {
      const names = new Set(corpus.cases.map((c) => c.name));
      assert.deepEqual(EXPECTED_CASES.filter((n) => !names.has(n)), []);
      assert.match(corpus.jwks_url, /^http:\/\/127\.0\.0\.1:/);
    });

    test('Bearer scheme variants', async () => {
      const token = corpus.cases.find((c) => c.name === 'good_complete').token;
      for (const h of [`Bearer  ${token}`, `bearer ${token}`, `BEARER   ${token}`]) {
        const res = await fetch(`${app.url}/chapters/personalised`, { headers: { Authorization: h } });
        assert.equal(res.status, 200, h);
      }
      for (const h of [`Bearer\t${token}`, `Bearer${token}`, `Basic ${token}`, `Bearer ${token} x`]) {
        await assertUnauthorized(await fetch(`${app.url}/me`, { headers: { Authorization: h } }));
      }
      const two = new Headers([['Authorization', `Bearer ${token}`], ['Authorization', `Bearer ${token}`]]);
      await assertUnauthorized(await fetch(`${app.url}/me`, { headers: two }));
    });

    for (const c of corpus.cases) {
      test(`${c.name}: ${c.accept ? (c.profile_complete ? 'accepted' : 'accepted, profile incomplete') : 'refused'}`, async () => {
        // The verifier itself, on the token exactly as the corpus has it.
        if (c.accept) {
          assert.equal((await verify(c.token)).profile_complete, c.profile_complete);
        } else {
          await assert.rejects(verify(c.token), InvalidTokenError);
        }
        if (c.token !== c.token.trim()) {
          // HTTP drops whitespace around a header value (RFC 9110 §5.5), so over HTTP this
          // token would arrive as a different one: the direct check above is the test.
          return;
        }
        const me = await get('/me', c.token);
        const chapter = await get('/chapters/personalised', c.token);
        if (!c.accept) {
          await assertUnauthorized(me);
          await assertUnauthorized(chapter);
          return;
        }
        assert.equal(me.status, 200, await me.clone().text());
        const body = await me.json();
        assert.equal(body.profile_complete, c.profile_complete);
        assert.equal(body.user_id, unverifiedClaims(c.token).sub);
        if (c.profile_complete) {
          assert.equal(chapter.status, 200, await chapter.clone().text());
          const { profile } = unverifiedClaims(c.token);
          const got = await chapter.json();
          assert.equal(got.python_proficiency, profile.python_proficiency);
          assert.equal(got.developer_role, profile.developer_role);
        } else {
          await assertProfileIncomplete(chapter);
        }
      });
    }
  });
}
