"""Verify Lanyard access tokens in a FastAPI backend.

Two dependencies implement the contract's strict profile enforcement:

* ``require_auth``: the request must carry a valid access token. Otherwise the
  answer is 401 problem+json, ``code: "unauthorized"``, with
  ``WWW-Authenticate: Bearer error="invalid_token"``. That covers a missing,
  malformed, forged or expired token, and a JWKS that cannot be fetched
  (the verifier fails closed: a 401, never a 500).
* ``require_complete_profile``: as above, and then the token must say
  ``profile_complete: true``. Otherwise the answer is 403 problem+json,
  ``code: "profile_incomplete"``, with
  ``WWW-Authenticate: Bearer error="insufficient_scope"``.

Both return the verified claims as a dict, so a route can personalise its
content from ``claims["profile"]`` without a database lookup.

Configuration (environment, read once on first use):

``LANYARD_ISSUER``      required; exactly Lanyard's ``LANYARD_ISSUER`` (the ``iss`` claim).
``LANYARD_AUDIENCE``    the ``aud`` claim; default: the issuer.
``LANYARD_JWKS_URL``    default: issuer + ``/.well-known/jwks.json``. Point it at an
                        internal address if the backend reaches Lanyard that way.
``LANYARD_ALGORITHMS``  comma-separated allow-list; default ``ES256`` (match
                        Lanyard's ``LANYARD_SIGNING_ALG``).
``LANYARD_MAX_TOKEN_LIFETIME``  the longest ``exp - iat`` accepted, in seconds; default
                        960: Lanyard's default access TTL plus 60 s. A verifier cannot
                        know ``LANYARD_ACCESS_TTL``: raise this with it.

Tested with Debian bookworm's python3-jwt 2.6.0 and python3-fastapi 0.92.
Elsewhere: ``pip install "pyjwt[crypto]" fastapi``.

Usage::

    import lanyard_auth
    app = FastAPI()
    lanyard_auth.install(app)          # problem+json bodies for the 401/403 answers

    @app.get("/lessons")
    def lessons(claims: dict = Depends(lanyard_auth.require_complete_profile)):
        return {"level": claims["profile"]["python_proficiency"]}

To point the dependencies at another verifier (tests, several issuers), use
FastAPI's ``app.dependency_overrides[lanyard_auth.get_verifier]``.
"""

from __future__ import annotations

import functools
import http.client
import base64
import json
import logging
import math
import os
import re
import threading
import time
import urllib.request
from typing import Any, Dict, Optional, Sequence

import jwt  # PyJWT >= 2.6 with cryptography
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

__all__ = [
    "InvalidToken",
    "bearer_token",
    "JWKSClient",
    "LanyardProblem",
    "LanyardVerifier",
    "get_verifier",
    "install",
    "problem_response",
    "require_auth",
    "require_complete_profile",
    "require_verified_email",
]

log = logging.getLogger("lanyard_auth")

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068; compared case-insensitively
# nbf is checked when present but not required (Lanyard always sends it; the contract
# demands only that it be checked).
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
MAX_JWKS_BYTES = 1 << 20
MAX_NUMERIC_DATE = 2**53  # every NumericDate is a JSON number in [0, 2^53)
DEFAULT_MAX_TOKEN_LIFETIME = 15 * 60 + 60  # seconds: Lanyard's default access TTL plus 60 s
# A compact JWS and nothing else: no whitespace, no padding (PyJWT's base64 decoder
# would silently skip a trailing space or newline).
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)  # the scheme, one or more spaces, the token


class InvalidToken(Exception):
    """The token must be refused with 401. The message is for logs only."""


class JWKSClient(jwt.PyJWKClient):
    """PyJWT's PyJWKClient with what a server needs and PyJWT 2.6 lacks.

    PyJWT 2.6's client fetches without a timeout, refetches the set on every
    unknown ``kid`` (a forged kid per request would make every request fetch),
    forgets the cached set when a fetch fails, lets some fetch errors escape as
    non-PyJWT exceptions, and re-parses the set on every call. This subclass:

    * fetches with a timeout and turns every fetch or parse failure into
      ``jwt.PyJWKClientError``;
    * fetches in a background thread, one fetch at a time (single flight), and
      never holds its lock during a fetch: a token whose ``kid`` is cached
      verifies at once, however slow Lanyard is;
    * treats the set as fresh for ``lifespan`` seconds (Lanyard sends
      ``Cache-Control: max-age=300``); after that, cached keys keep working
      while a background refetch runs (at most one per ``min_refetch_interval``);
    * refetches early for an unknown ``kid`` (key rotation) at most once per
      ``min_refetch_interval`` seconds; such a token waits for that fetch;
    * never drops the last good set when a fetch fails: while Lanyard is
      unreachable, tokens signed by cached keys keep verifying;
    * with nothing cached, after a failed fetch fails fast for
      ``failure_backoff`` seconds instead of fetching on every request.
    """

    def __init__(
        self,
        uri: str,
        *,
        lifespan: float = 300,
        timeout: float = 5,
        min_refetch_interval: float = 30,
        failure_backoff: float = 1,
    ) -> None:
        super().__init__(uri, cache_keys=False, cache_jwk_set=False)
        self.lifespan = lifespan
        self.timeout = timeout
        self.min_refetch_interval = min_refetch_interval
        self.failure_backoff = failure_backoff
        self._lock = threading.Lock()  # guards the fields below; never held while fetching
        self._set: Optional[jwt.PyJWKSet] = None
        self._keys: Dict[str, jwt.PyJWK] = {}  # signing keys of _set, by kid
        self._fetched_at = float("-inf")  # last successful fetch (monotonic)
        self._attempted_at = float("-inf")  # last fetch start (monotonic)
        self._last_error: Optional[jwt.PyJWKClientError] = None
        self._inflight: Optional[threading.Event] = None  # set when the running fetch ends

    def fetch_data(self) -> Any:
        request = urllib.request.Request(self.uri, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("the JWKS is larger than 1 MiB")
            data = json.loads(body)
        except (OSError, ValueError, http.client.HTTPException) as e:
            # URLError, HTTPError, timeouts and resets are OSErrors; bad JSON is a ValueError.
            raise jwt.PyJWKClientError(f"cannot fetch the JWKS from {self.uri}: {e}") from e
        if not isinstance(data, dict):
            raise jwt.PyJWKClientError(f"the JWKS at {self.uri} is not a JSON object")
        return data

    def _start_fetch_locked(self) -> threading.Event:
        """The running fetch, or a new one in a background thread. Needs self._lock."""
        if self._inflight is None:
            done = threading.Event()
            self._inflight = done
            self._attempted_at = time.monotonic()
            threading.Thread(target=self._fetch, args=(done,), name="lanyard-jwks", daemon=True).start()
        return self._inflight

    def _fetch(self, done: threading.Event) -> None:
        jwk_set: Optional[jwt.PyJWKSet] = None
        error: Optional[jwt.PyJWKClientError] = None
        try:
            jwk_set = jwt.PyJWKSet.from_dict(self.fetch_data())
        except jwt.PyJWKClientError as e:
            error = e
        except Exception as e:  # PyJWKSetError, or a key PyJWT cannot parse
            error = jwt.PyJWKClientError(f"unusable JWKS from {self.uri}: {e}")
        with self._lock:
            if jwk_set is not None:
                self._set, self._fetched_at, self._last_error = jwk_set, time.monotonic(), None
                self._keys = {
                    k.key_id: k for k in jwk_set.keys if k.key_id and k.public_key_use in ("sig", None)
                }
            else:
                self._last_error = error
                if self._set is not None:
                    log.warning("JWKS fetch failed, keeping the cached set: %s", error)
            self._inflight = None
        done.set()

    def _wait(self, done: threading.Event) -> None:
        # Bounded: urlopen's timeout is per socket operation, so a server that
        # trickles bytes could hold the fetch longer than self.timeout.
        done.wait(self.timeout + 1)

    def get_jwk_set(self, refresh: bool = False) -> jwt.PyJWKSet:
        with self._lock:
            now = time.monotonic()
            jwk_set = self._set
            done: Optional[threading.Event] = None
            if jwk_set is None:
                if self._inflight is None and self._last_error is not None and now - self._attempted_at < self.failure_backoff:
                    raise self._last_error
                done = self._start_fetch_locked()
            elif (refresh or now - self._fetched_at >= self.lifespan) and now - self._attempted_at >= self.min_refetch_interval:
                self._start_fetch_locked()  # in the background; the cached set answers now
        if done is None:
            return jwk_set
        self._wait(done)
        with self._lock:
            if self._set is not None:
                return self._set
            raise self._last_error or jwt.PyJWKClientError(f"timed out fetching the JWKS from {self.uri}")

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = time.monotonic()
            key = self._keys.get(kid)
            if key is not None:
                # The hot path: no fetch, no wait. A stale set is refreshed behind it.
                if now - self._fetched_at >= self.lifespan and now - self._attempted_at >= self.min_refetch_interval:
                    self._start_fetch_locked()
                return key
            if self._inflight is not None:
                done = self._inflight
            elif self._set is None:
                if self._last_error is not None and now - self._attempted_at < self.failure_backoff:
                    raise self._last_error
                done = self._start_fetch_locked()
            elif now - self._attempted_at >= self.min_refetch_interval:
                done = self._start_fetch_locked()  # an unknown kid: perhaps a rotated-in key
            else:
                raise jwt.PyJWKClientError(f"no key with kid {kid!r} in the JWKS")
        self._wait(done)
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            if self._set is None and self._last_error is not None:
                raise self._last_error
        raise jwt.PyJWKClientError(f"no key with kid {kid!r} in the JWKS")


class LanyardVerifier:
    """Checks Lanyard access tokens offline against the issuer's JWKS."""

    def __init__(
        self,
        issuer: str,
        audience: Optional[str] = None,
        jwks_url: Optional[str] = None,
        algorithms: Sequence[str] = ("ES256",),
        leeway: float = 30,
        jwks_client: Optional[jwt.PyJWKClient] = None,
        max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        algorithms = [a for a in algorithms if a]
        if not algorithms or any(a.lower() == "none" or a.upper().startswith("HS") for a in algorithms):
            # Lanyard signs with a private key; a shared-secret or unsigned alg is never right here.
            raise ValueError(f"algorithms must be asymmetric signature algorithms, got {algorithms!r}")
        if not 0 <= leeway <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds (the contract's bound)")
        if not (math.isfinite(max_token_lifetime) and max_token_lifetime > 0):
            raise ValueError("max_token_lifetime must be a positive number of seconds")
        self.issuer = issuer
        self.audience = audience or issuer
        self.jwks_url = jwks_url or issuer.rstrip("/") + "/.well-known/jwks.json"
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.max_token_lifetime = max_token_lifetime
        self.jwks = jwks_client or JWKSClient(self.jwks_url)

    @classmethod
    def from_env(cls, environ: Optional[Dict[str, str]] = None) -> "LanyardVerifier":
        env = os.environ if environ is None else environ
        issuer = env.get("LANYARD_ISSUER", "")
        if not issuer:
            raise RuntimeError("LANYARD_ISSUER is not set: set it to Lanyard's LANYARD_ISSUER, e.g. http://127.0.0.1:8080")
        algorithms = [a.strip() for a in env.get("LANYARD_ALGORITHMS", "ES256").split(",")]
        lifetime = env.get("LANYARD_MAX_TOKEN_LIFETIME")
        return cls(
            issuer=issuer,
            audience=env.get("LANYARD_AUDIENCE") or None,
            jwks_url=env.get("LANYARD_JWKS_URL") or None,
            algorithms=algorithms,
            max_token_lifetime=float(lifetime) if lifetime else DEFAULT_MAX_TOKEN_LIFETIME,
        )

    def verify(self, token: str) -> Dict[str, Any]:
        """Returns the claims of a valid access token; raises InvalidToken otherwise."""
        if not isinstance(token, str) or not COMPACT_JWS.fullmatch(token):
            raise InvalidToken("not a compact JWS")
        if any(not _canonical_b64url(part) for part in token.split(".")):
            raise InvalidToken("non-canonical base64url")
        for part in token.split(".")[:2]:
            _refuse_duplicate_names(part)
        try:
            header = jwt.get_unverified_header(token)
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
                raise InvalidToken(f"typ {typ!r} is not at+jwt")
            if "crit" in header or "b64" in header:
                # Lanyard sets neither. Refuse them outright, whatever PyJWT's own handling
                # (unpatched PyJWT ignores crit: CVE-2026-32597; b64=false changes what is signed).
                raise InvalidToken("crit and b64 header parameters are not supported")
            alg = header.get("alg")
            if alg not in self.algorithms:  # before any JWKS lookup: alg "none", HS256, ...
                raise InvalidToken(f"alg {alg!r} is not allowed")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidToken("no kid")
            key = self.jwks.get_signing_key(kid)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.algorithms,  # pinned; never the token's own choice
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except InvalidToken:
            raise
        except jwt.PyJWTError as e:  # includes PyJWKClientError: JWKS unreachable, unknown kid
            raise InvalidToken(f"{e.__class__.__name__}: {e}") from e
        except Exception as e:  # odd input that slipped past PyJWT's own checks: still a 401
            log.warning("refusing an access token that raised %s", e.__class__.__name__)
            raise InvalidToken(e.__class__.__name__) from e
        _check_claims(claims)
        if claims["exp"] - claims["iat"] > self.max_token_lifetime:
            # What a leaked signing key would mint: a token that outlives the key's revocation.
            raise InvalidToken(f"lifetime exp - iat exceeds {self.max_token_lifetime} s")
        return claims


def _refuse_duplicate_names(part: str) -> None:
    """Refuses a header or claims set (a base64url part) that is not strict UTF-8 JSON, or in
    which an object, at any depth, has two member names equal ignoring case. json.loads keeps
    the last of two names silently and is case-sensitive, other JSON readers are not: "sub"
    twice, or "sub" and "SUB", could name two users to two readers."""
    try:
        text = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")
        json.loads(text, object_pairs_hook=_unique_names, parse_constant=_no_constant)
    except ValueError as e:  # bad UTF-8, bad JSON, NaN or Infinity
        raise InvalidToken(f"not strict UTF-8 JSON: {e}") from e


def _unique_names(pairs: Sequence[Any]) -> Dict[str, Any]:
    seen: Dict[str, str] = {}
    for name, _ in pairs:
        key = name.casefold()
        if key in seen:
            raise InvalidToken(f"duplicate member names {seen[key]!r} and {name!r}")
        seen[key] = name
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _canonical_b64url(part: str) -> bool:
    """True if part is the one canonical unpadded base64url spelling of its bytes."""
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except ValueError:
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == part


def _is_numeric_date(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v < MAX_NUMERIC_DATE


def _check_claims(claims: Dict[str, Any]) -> None:
    """The rules PyJWT leaves out (examples/README.md, "Agreed rules"); PyJWT checked
    signature, iss, aud, exp, nbf and iat against the clock."""
    for name in ("exp", "iat", "nbf"):
        # PyJWT int()s dates, so it would take "1790000000" or 1e300.
        if name in claims and not _is_numeric_date(claims[name]):
            raise InvalidToken(f"{name} is not a NumericDate (a JSON number in [0, 2^53))")
    for name in ("sub", "sid"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise InvalidToken(f"{name} is not a non-empty string")
    for name in ("email", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise InvalidToken(f"{name} is not a string")
    aud = claims.get("aud")
    if isinstance(aud, list) and not all(isinstance(a, str) for a in aud):
        raise InvalidToken("aud is not a string or an array of strings")
    if not isinstance(claims.get("profile_complete"), bool):
        raise InvalidToken("profile_complete is missing or not a boolean")
    profile = claims.get("profile")
    if profile is not None and not (
        isinstance(profile, dict)
        and isinstance(profile.get("python_proficiency"), str)
        and isinstance(profile.get("developer_role"), str)
    ):
        raise InvalidToken("profile is not an object with string python_proficiency and developer_role")
    if claims["profile_complete"] and profile is None:
        # The contract puts the profile in every token that says profile_complete: true.
        raise InvalidToken("profile_complete is true but the profile claim is missing")


@functools.lru_cache(maxsize=None)
def get_verifier() -> LanyardVerifier:
    """The verifier configured from the environment (built on first use)."""
    return LanyardVerifier.from_env()


class LanyardProblem(HTTPException):
    """A 401/403 answer. Without ``install(app)`` FastAPI still sends the
    right status and WWW-Authenticate header, with its default JSON body."""

    def __init__(self, status_code: int, code: str, detail: str, www_authenticate: str) -> None:
        super().__init__(status_code=status_code, detail=detail, headers={"WWW-Authenticate": www_authenticate})
        self.code = code


def _unauthorized() -> LanyardProblem:
    return LanyardProblem(401, "unauthorized", "a valid access token is required", 'Bearer error="invalid_token"')


def problem_response(request: Request, exc: LanyardProblem) -> JSONResponse:
    """RFC 9457 problem+json, the shape Lanyard itself answers with."""
    titles = {401: "Unauthorized", 403: "Forbidden"}
    return JSONResponse(
        {
            "type": "about:blank",
            "title": titles.get(exc.status_code, "Error"),
            "status": exc.status_code,
            "detail": exc.detail,
            "code": exc.code,
        },
        status_code=exc.status_code,
        media_type="application/problem+json",
        headers={**(exc.headers or {}), "Cache-Control": "no-store"},
    )


def install(app: FastAPI) -> None:
    """Registers the problem+json handler for the dependencies' answers."""
    app.add_exception_handler(LanyardProblem, problem_response)


def bearer_token(request: Request) -> Optional[str]:
    """The token of the request's ``Authorization: Bearer <token>`` header, or None.

    The scheme is matched case-insensitively and may be followed by one or more spaces,
    as Lanyard itself accepts, then the token (checked by ``verify``) and nothing else. Two Authorization headers are ambiguous and refused (None).
    (FastAPI's HTTPBearer keeps the extra spaces in the token.)
    """
    values = request.headers.getlist("authorization")
    if len(values) != 1:
        return None
    m = BEARER.fullmatch(values[0])
    return m.group(1) if m else None


def require_auth(
    token: Optional[str] = Depends(bearer_token),
    verifier: LanyardVerifier = Depends(get_verifier),
) -> Dict[str, Any]:
    """Any signed-in user: the verified claims, or 401."""
    if not token:
        raise _unauthorized()
    try:
        return verifier.verify(token)
    except InvalidToken as e:
        log.info("refused an access token: %s", e)
        raise _unauthorized() from None


def require_verified_email(claims: Dict[str, Any] = Depends(require_auth)) -> Dict[str, Any]:
    """A signed-in user who proved the email address: the verified claims, or 401/403.

    Lanyard writes ``email_verified`` into every access token; a token without it (minted
    before the claim existed) counts as unverified.
    """
    if claims.get("email_verified") is not True:
        raise LanyardProblem(
            403, "email_unverified", "verify your email address first", 'Bearer error="insufficient_scope"'
        )
    return claims


def require_complete_profile(claims: Dict[str, Any] = Depends(require_auth)) -> Dict[str, Any]:
    """A signed-in user who finished onboarding: the verified claims, or 401/403."""
    if claims["profile_complete"] is not True:
        raise LanyardProblem(
            403, "profile_incomplete", "complete the onboarding profile first", 'Bearer error="insufficient_scope"'
        )
    # verify() already refused a complete profile without a well-formed profile claim.
    return claims
