// Verify Lanyard access tokens in a Node.js backend, with jose 6 and node:http.
//
//   const verify = createVerifier({ issuer: 'http://127.0.0.1:8080' });
//   const claims = await verify(token);            // throws InvalidTokenError
//
//   http.createServer(withAuth(verify, (req, res, claims) => { ... }, { requireCompleteProfile: true }));
//
// The middleware answers like the contract's "strict profile enforcement":
//   401 problem+json code "unauthorized", WWW-Authenticate: Bearer error="invalid_token"
//       for a missing, malformed, forged or expired token, and when the JWKS cannot be
//       fetched (it fails closed: a 401, never a 500);
//   403 problem+json code "profile_incomplete", WWW-Authenticate: Bearer error="insufficient_scope"
//       on a route that needs onboarding when the token says profile_complete: false.

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

/** The token must be refused with 401. The message is for logs, not for clients. */
export class InvalidTokenError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'InvalidTokenError';
  }
}

/** A 401 or 403 answer, sent as RFC 9457 problem+json. */
export class AuthProblem extends Error {
  constructor(status, code, detail, wwwAuthenticate, options) {
    super(detail, options);
    this.name = 'AuthProblem';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.wwwAuthenticate = wwwAuthenticate;
  }
}

// iss and aud are required by the issuer/audience options. nbf is checked when present but
// not required (Lanyard always sends it; the contract demands only that it be checked).
const REQUIRED_CLAIMS = ['exp', 'iat', 'sub', 'sid'];
const LEEWAY = 30; // seconds
// The longest exp - iat accepted: Lanyard's default access TTL (15 min) plus 60 s. A verifier
// cannot know LANYARD_ACCESS_TTL; raise it (maxTokenLifetime, LANYARD_MAX_TOKEN_LIFETIME) with the TTL.
const DEFAULT_MAX_TOKEN_LIFETIME = 15 * 60 + 60; // seconds
const MAX_NUMERIC_DATE = 2 ** 53; // every NumericDate is a JSON number in [0, 2^53)
const MAX_JWKS_BYTES = 1 << 20;
// A compact JWS and nothing else: jose would accept a token with trailing whitespace.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * A JWKS key function for jwtVerify that survives Lanyard outages, like the Go verifier:
 * the last good set (jose's createLocalJWKSet) answers every kid it holds at once; a stale
 * set (older than cacheMaxAge) is refreshed in the background; an unknown kid waits for a
 * refetch, at most one per cooldownDuration; only one fetch runs at a time; and a failed
 * fetch never drops the cached keys. With nothing cached, a failed fetch fails fast for
 * failureBackoff ms. jose's createRemoteJWKSet forgets nothing either, but refuses every
 * token once its cache is older than cacheMaxAge and a fetch fails.
 */
export function createJWKSCache(url, {
  cacheMaxAge = 300_000, cooldownDuration = 30_000, timeoutDuration = 5_000, failureBackoff = 1_000,
} = {}) {
  let local = null; // jose's key function over the last good set
  let kids = new Set();
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity;
  let lastError = null;
  let inflight = null;

  async function fetchSet() {
    const res = await fetch(url, {
      headers: { Accept: 'application/json' },
      redirect: 'error', // a redirect could move key discovery to another host
      signal: AbortSignal.timeout(timeoutDuration),
    });
    if (!res.ok) throw new Error(`JWKS fetch from ${url}: HTTP ${res.status}`);
    const body = await res.text();
    if (body.length > MAX_JWKS_BYTES) throw new Error('the JWKS is larger than 1 MiB');
    const jwks = JSON.parse(body);
    const next = createLocalJWKSet(jwks); // throws on a malformed set
    local = next;
    kids = new Set(jwks.keys.map((k) => k?.kid).filter((k) => typeof k === 'string'));
    fetchedAt = Date.now();
    lastError = null;
  }

  function start() {
    if (!inflight) {
      attemptedAt = Date.now();
      inflight = fetchSet()
        .catch((err) => { lastError = err; })
        .finally(() => { inflight = null; });
    }
    return inflight;
  }

  async function getKey(protectedHeader, token) {
    const now = Date.now();
    if (local && kids.has(protectedHeader?.kid)) {
      // The hot path: no fetch, no wait. A stale set is refreshed behind it.
      if (now - fetchedAt >= cacheMaxAge && now - attemptedAt >= cooldownDuration) start();
      return local(protectedHeader, token);
    }
    if (inflight) {
      await inflight;
    } else if (!local) {
      if (lastError && now - attemptedAt < failureBackoff) throw lastError;
      await start();
    } else if (now - attemptedAt >= cooldownDuration) {
      await start(); // an unknown kid: perhaps a rotated-in key
    }
    if (!local) throw lastError ?? new Error('no JWKS');
    return local(protectedHeader, token); // JWKSNoMatchingKey for a kid still unknown
  }
  /** Resolves when the running fetch, if any, ends (for tests). */
  getKey.settled = () => inflight ?? Promise.resolve();
  /** The error of the last failed fetch, or null after a success. */
  Object.defineProperty(getKey, 'lastError', { get: () => lastError });
  return getKey;
}

const isNumericDate = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < MAX_NUMERIC_DATE;

/** True if part is the one canonical unpadded base64url spelling of its bytes. */
const canonicalB64url = (part) => Buffer.from(part, 'base64url').toString('base64url') === part;

const strictUTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Refuses a header or claims set (a base64url part) that is not UTF-8 JSON, or in which an
 * object, at any depth, has two member names equal ignoring case. JSON.parse keeps the last of
 * two names silently and is case-sensitive, other JSON readers are not: "sub" twice, or "sub"
 * and "SUB", could name two users to two readers. Throws InvalidTokenError.
 */
function refuseDuplicateNames(part) {
  let text;
  try {
    text = strictUTF8.decode(Buffer.from(part, 'base64url'));
    JSON.parse(text);
  } catch (err) {
    throw new InvalidTokenError(`not UTF-8 JSON: ${err?.message}`, { cause: err });
  }
  // The text is valid JSON, so its strings and brackets are all the scan needs: a string
  // followed by ':' is a member name of the innermost open object.
  const open = []; // per open object a Map from folded name to name; per open array null
  let last = null;
  for (const [tok] of text.matchAll(/"(?:[^"\\]|\\.)*"|[{}[\]:]/g)) {
    if (tok === '{') open.push(new Map());
    else if (tok === '[') open.push(null);
    else if (tok === '}' || tok === ']') open.pop();
    else if (tok === ':') {
      const name = JSON.parse(last);
      const key = name.toUpperCase().toLowerCase(); // folds ſ and s, K (Kelvin) and k alike
      const names = open.at(-1);
      if (names.has(key)) {
        throw new InvalidTokenError(`duplicate member names ${JSON.stringify(names.get(key))} and ${JSON.stringify(name)}`);
      }
      names.set(key, name);
    }
    last = tok;
  }
}

/** The rules jose leaves out (examples/README.md, "Agreed rules"). Throws InvalidTokenError. */
function checkClaims(payload, maxTokenLifetime) {
  for (const name of ['exp', 'iat', 'nbf']) {
    if (name in payload && !isNumericDate(payload[name])) {
      throw new InvalidTokenError(`${name} is not a NumericDate (a JSON number in [0, 2^53))`);
    }
  }
  if (payload.exp - payload.iat > maxTokenLifetime) {
    // What a leaked signing key would mint: a token that outlives the key's revocation.
    throw new InvalidTokenError(`lifetime exp - iat exceeds ${maxTokenLifetime} s`);
  }
  if (payload.iat > Math.floor(Date.now() / 1000) + LEEWAY) {
    throw new InvalidTokenError('iat is in the future'); // as PyJWT and the Go verifier
  }
  for (const name of ['sub', 'sid']) {
    if (typeof payload[name] !== 'string' || payload[name] === '') {
      throw new InvalidTokenError(`${name} is not a non-empty string`);
    }
  }
  for (const name of ['email', 'jti']) {
    if (name in payload && typeof payload[name] !== 'string') throw new InvalidTokenError(`${name} is not a string`);
  }
  if (Array.isArray(payload.aud) && !payload.aud.every((a) => typeof a === 'string')) {
    throw new InvalidTokenError('aud is not a string or an array of strings');
  }
  if (typeof payload.profile_complete !== 'boolean') {
    throw new InvalidTokenError('profile_complete is missing or not a boolean');
  }
  const p = payload.profile;
  if (p !== undefined && p !== null && (typeof p !== 'object' || Array.isArray(p) ||
      typeof p.python_proficiency !== 'string' || typeof p.developer_role !== 'string')) {
    throw new InvalidTokenError('profile is not an object with string python_proficiency and developer_role');
  }
  if (payload.profile_complete && (p === undefined || p === null)) {
    // The contract puts the profile in every token that says profile_complete: true.
    throw new InvalidTokenError('profile_complete is true but the profile claim is missing');
  }
}

/**
 * Returns `async verify(token) => claims` for Lanyard access tokens; it throws
 * InvalidTokenError for any token that must be refused.
 *
 * @param {object} options
 * @param {string} options.issuer      exactly Lanyard's LANYARD_ISSUER (the `iss` claim)
 * @param {string} [options.audience]  Lanyard's LANYARD_AUDIENCE; default: the issuer
 * @param {string} [options.jwksUrl]   default: issuer + /.well-known/jwks.json
 * @param {string[]} [options.algorithms] allow-list; default ['ES256'] (LANYARD_SIGNING_ALG)
 * @param {number} [options.maxTokenLifetime] the longest exp - iat accepted, in seconds; default
 *   960: Lanyard's default access TTL plus 60 s (set it to LANYARD_ACCESS_TTL + 60 s)
 * @param {object} [options.jwksOptions] createJWKSCache options (cacheMaxAge, cooldownDuration, ...)
 */
export function createVerifier({
  issuer, audience, jwksUrl, algorithms = ['ES256'], maxTokenLifetime = DEFAULT_MAX_TOKEN_LIFETIME, jwksOptions,
} = {}) {
  if (typeof issuer !== 'string' || issuer === '') {
    throw new TypeError('issuer is required: set it to Lanyard\'s LANYARD_ISSUER');
  }
  if (!Number.isFinite(maxTokenLifetime) || maxTokenLifetime <= 0) {
    throw new TypeError(`maxTokenLifetime must be a positive number of seconds, got ${maxTokenLifetime}`);
  }
  if (!Array.isArray(algorithms) || algorithms.length === 0 ||
      algorithms.some((a) => typeof a !== 'string' || a.toLowerCase() === 'none' || /^HS/i.test(a))) {
    // Lanyard signs with a private key: a shared-secret or unsigned alg is never right here.
    throw new TypeError(`algorithms must be asymmetric signature algorithms, got ${JSON.stringify(algorithms)}`);
  }
  audience ||= issuer;
  jwksUrl ||= `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;

  // Fetched on first use, fresh for the JWKS's max-age (300 s at Lanyard), refetched
  // early for an unknown kid at most every 30 s; each fetch times out after 5 s. Cached
  // keys keep verifying while Lanyard is unreachable.
  const jwks = createJWKSCache(new URL(jwksUrl), jwksOptions);
  const options = {
    issuer,
    audience,
    algorithms: [...algorithms], // pinned; never the token's own choice
    typ: 'at+jwt', // also accepts application/at+jwt, case-insensitively
    clockTolerance: LEEWAY,
    requiredClaims: REQUIRED_CLAIMS,
  };

  async function verify(token) {
    if (typeof token !== 'string' || token === '') {
      throw new InvalidTokenError('no token');
    }
    if (!COMPACT_JWS.test(token) || !token.split('.').every(canonicalB64url)) {
      throw new InvalidTokenError('not a compact JWS');
    }
    token.split('.').slice(0, 2).forEach(refuseDuplicateNames);
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch (err) {
      throw new InvalidTokenError(`bad header: ${err?.message}`, { cause: err });
    }
    if ('crit' in header || 'b64' in header) {
      // Lanyard sets neither; b64 without crit would be ignored by jose, with it would
      // change what was signed. Refuse both, as the Go and FastAPI verifiers do.
      throw new InvalidTokenError('crit and b64 header parameters are not supported');
    }
    if (typeof header.kid !== 'string' || header.kid === '') {
      throw new InvalidTokenError('no kid');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, options));
    } catch (err) {
      // jose's JOSEErrors (bad signature, alg, typ, claims, unknown kid, JWKS timeout) and
      // fetch's network errors (Lanyard unreachable) alike: the token cannot be trusted.
      throw new InvalidTokenError(`${err?.code ?? err?.name ?? 'error'}: ${err?.message}`, { cause: err });
    }
    checkClaims(payload, maxTokenLifetime);
    return payload;
  }
  Object.defineProperty(verify, 'config', {
    value: Object.freeze({ issuer, audience, jwksUrl, algorithms: [...algorithms], maxTokenLifetime }),
    enumerable: true,
  });
  Object.defineProperty(verify, 'jwks', { value: jwks }); // the key cache, for tests
  return verify;
}

/**
 * createVerifier from LANYARD_ISSUER, LANYARD_AUDIENCE, LANYARD_JWKS_URL, LANYARD_ALGORITHMS and
 * LANYARD_MAX_TOKEN_LIFETIME (seconds).
 */
export function createVerifierFromEnv(env = process.env) {
  if (!env.LANYARD_ISSUER) {
    throw new TypeError('LANYARD_ISSUER is not set: set it to Lanyard\'s LANYARD_ISSUER, e.g. http://127.0.0.1:8080');
  }
  return createVerifier({
    issuer: env.LANYARD_ISSUER,
    audience: env.LANYARD_AUDIENCE || undefined,
    jwksUrl: env.LANYARD_JWKS_URL || undefined,
    algorithms: env.LANYARD_ALGORITHMS ? env.LANYARD_ALGORITHMS.split(',').map((a) => a.trim()) : undefined,
    maxTokenLifetime: env.LANYARD_MAX_TOKEN_LIFETIME ? Number(env.LANYARD_MAX_TOKEN_LIFETIME) : undefined,
  });
}

/**
 * The token of an `Authorization: Bearer <token>` header, or null. The scheme is matched
 * case-insensitively and may be followed by one or more spaces, as Lanyard itself accepts;
 * then the token, which verify checks, and nothing else. Two Authorization headers are
 * ambiguous: null.
 */
export function bearerToken(req) {
  const values = req.headersDistinct?.authorization ?? (req.headers.authorization === undefined ? [] : [req.headers.authorization]);
  if (values.length !== 1 || typeof values[0] !== 'string') return null;
  const m = /^Bearer +(\S+)$/i.exec(values[0]); // anything else after the token: refused
  return m ? m[1] : null;
}

const unauthorized = (cause) =>
  new AuthProblem(401, 'unauthorized', 'a valid access token is required', 'Bearer error="invalid_token"', { cause });

/**
 * The verified claims of the request's access token. Throws AuthProblem: 401 for
 * a missing or invalid token; with requireCompleteProfile, 403 when the profile
 * is incomplete.
 */
export async function authenticate(req, verify, { requireCompleteProfile = false } = {}) {
  const token = bearerToken(req);
  if (token === null) throw unauthorized();
  let claims;
  try {
    claims = await verify(token);
  } catch (err) {
    if (err instanceof InvalidTokenError) throw unauthorized(err);
    throw err;
  }
  // verify already refused a complete profile without a well-formed profile claim.
  if (requireCompleteProfile && claims.profile_complete !== true) {
    throw new AuthProblem(403, 'profile_incomplete', 'complete the onboarding profile first',
      'Bearer error="insufficient_scope"');
  }
  return claims;
}

/** Sends an AuthProblem as application/problem+json with its WWW-Authenticate header. */
export function sendProblem(res, problem) {
  const titles = { 401: 'Unauthorized', 403: 'Forbidden' };
  const body = JSON.stringify({
    type: 'about:blank',
    title: titles[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
  });
  res.writeHead(problem.status, {
    'Content-Type': 'application/problem+json',
    'Cache-Control': 'no-store',
    'WWW-Authenticate': problem.wwwAuthenticate,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * Wraps a node:http handler `(req, res, claims)`: it runs only for a valid token
 * (and, with requireCompleteProfile, a complete profile); otherwise the 401/403
 * answer is sent. The claims are also left on `req.auth`.
 */
export function withAuth(verify, handler, { requireCompleteProfile = false } = {}) {
  return async (req, res) => {
    let claims;
    try {
      claims = await authenticate(req, verify, { requireCompleteProfile });
    } catch (err) {
      if (err instanceof AuthProblem) return sendProblem(res, err);
      throw err;
    }
    req.auth = claims;
    return handler(req, res, claims);
  };
}
