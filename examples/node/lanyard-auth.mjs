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

import { createRemoteJWKSet, jwtVerify } from 'jose';

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

const REQUIRED_CLAIMS = ['exp', 'iat', 'nbf', 'sub', 'sid']; // iss and aud are required by the issuer/audience options

/**
 * Returns `async verify(token) => claims` for Lanyard access tokens; it throws
 * InvalidTokenError for any token that must be refused.
 *
 * @param {object} options
 * @param {string} options.issuer      exactly Lanyard's LANYARD_ISSUER (the `iss` claim)
 * @param {string} [options.audience]  Lanyard's LANYARD_AUDIENCE; default: the issuer
 * @param {string} [options.jwksUrl]   default: issuer + /.well-known/jwks.json
 * @param {string[]} [options.algorithms] allow-list; default ['ES256'] (LANYARD_SIGNING_ALG)
 */
export function createVerifier({ issuer, audience, jwksUrl, algorithms = ['ES256'] } = {}) {
  if (typeof issuer !== 'string' || issuer === '') {
    throw new TypeError('issuer is required: set it to Lanyard\'s LANYARD_ISSUER');
  }
  if (!Array.isArray(algorithms) || algorithms.length === 0 ||
      algorithms.some((a) => typeof a !== 'string' || a.toLowerCase() === 'none' || /^HS/i.test(a))) {
    // Lanyard signs with a private key: a shared-secret or unsigned alg is never right here.
    throw new TypeError(`algorithms must be asymmetric signature algorithms, got ${JSON.stringify(algorithms)}`);
  }
  audience ||= issuer;
  jwksUrl ||= `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;

  // Fetched on first use, cached for the JWKS's max-age (300 s at Lanyard), refetched
  // early for an unknown kid at most every 30 s; each fetch times out after 5 s.
  const jwks = createRemoteJWKSet(new URL(jwksUrl), {
    cacheMaxAge: 300_000,
    cooldownDuration: 30_000,
    timeoutDuration: 5_000,
  });
  const options = {
    issuer,
    audience,
    algorithms: [...algorithms], // pinned; never the token's own choice
    typ: 'at+jwt', // also accepts application/at+jwt, case-insensitively
    clockTolerance: 30,
    requiredClaims: REQUIRED_CLAIMS,
  };

  async function verify(token) {
    if (typeof token !== 'string' || token === '') {
      throw new InvalidTokenError('no token');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, options));
    } catch (err) {
      // jose's JOSEErrors (bad signature, alg, typ, claims, unknown kid, JWKS timeout) and
      // fetch's network errors (Lanyard unreachable) alike: the token cannot be trusted.
      throw new InvalidTokenError(`${err?.code ?? err?.name ?? 'error'}: ${err?.message}`, { cause: err });
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new InvalidTokenError('sub is not a non-empty string');
    }
    if (typeof payload.profile_complete !== 'boolean') {
      throw new InvalidTokenError('profile_complete is missing or not a boolean');
    }
    return payload;
  }
  Object.defineProperty(verify, 'config', {
    value: Object.freeze({ issuer, audience, jwksUrl, algorithms: [...algorithms] }),
    enumerable: true,
  });
  return verify;
}

/** createVerifier from LANYARD_ISSUER, LANYARD_AUDIENCE, LANYARD_JWKS_URL and LANYARD_ALGORITHMS. */
export function createVerifierFromEnv(env = process.env) {
  if (!env.LANYARD_ISSUER) {
    throw new TypeError('LANYARD_ISSUER is not set: set it to Lanyard\'s LANYARD_ISSUER, e.g. http://127.0.0.1:8080');
  }
  return createVerifier({
    issuer: env.LANYARD_ISSUER,
    audience: env.LANYARD_AUDIENCE || undefined,
    jwksUrl: env.LANYARD_JWKS_URL || undefined,
    algorithms: env.LANYARD_ALGORITHMS ? env.LANYARD_ALGORITHMS.split(',').map((a) => a.trim()) : undefined,
  });
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(req) {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return null;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header); // RFC 6750 b64token
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
  if (requireCompleteProfile) {
    if (claims.profile_complete !== true) {
      throw new AuthProblem(403, 'profile_incomplete', 'complete the onboarding profile first',
        'Bearer error="insufficient_scope"');
    }
    const p = claims.profile;
    if (p === null || typeof p !== 'object' ||
        typeof p.python_proficiency !== 'string' || typeof p.developer_role !== 'string') {
      // The contract puts the profile in every token that says profile_complete: true.
      throw unauthorized(new InvalidTokenError('profile_complete is true but the profile claim is missing'));
    }
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
