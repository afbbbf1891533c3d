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
import json
import logging
import os
import threading
import time
import urllib.request
from typing import Any, Dict, Optional, Sequence

import jwt  # PyJWT >= 2.6 with cryptography
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = [
    "InvalidToken",
    "JWKSClient",
    "LanyardProblem",
    "LanyardVerifier",
    "get_verifier",
    "install",
    "problem_response",
    "require_auth",
    "require_complete_profile",
]

log = logging.getLogger("lanyard_auth")

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068; compared case-insensitively
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub")
MAX_JWKS_BYTES = 1 << 20


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
    * caches the parsed set for ``lifespan`` seconds (Lanyard sends
      ``Cache-Control: max-age=300``);
    * refetches early for an unknown ``kid`` (key rotation) at most once per
      ``min_refetch_interval`` seconds;
    * keeps the last good set when a refetch fails, until it expires;
    * after a failed fetch with nothing cached, fails fast for
      ``failure_backoff`` seconds instead of fetching again on every request.
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
        self._lock = threading.Lock()
        self._set: Optional[jwt.PyJWKSet] = None
        self._fetched_at = float("-inf")  # last successful fetch (monotonic)
        self._attempted_at = float("-inf")  # last fetch attempt (monotonic)
        self._last_error: Optional[jwt.PyJWKClientError] = None

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

    def get_jwk_set(self, refresh: bool = False) -> jwt.PyJWKSet:
        with self._lock:
            now = time.monotonic()
            fresh = self._set is not None and now - self._fetched_at < self.lifespan
            if fresh and (not refresh or now - self._attempted_at < self.min_refetch_interval):
                return self._set
            if not fresh and self._last_error is not None and now - self._attempted_at < self.failure_backoff:
                raise self._last_error
            self._attempted_at = now
            try:
                jwk_set = jwt.PyJWKSet.from_dict(self.fetch_data())
            except jwt.PyJWTError as e:
                error = e if isinstance(e, jwt.PyJWKClientError) else jwt.PyJWKClientError(f"unusable JWKS: {e}")
                self._last_error = error
                if fresh:  # a refetch for an unknown kid failed: keep using the set we have
                    log.warning("JWKS refetch failed, keeping the cached set: %s", error)
                    return self._set
                raise error from e
            self._set, self._fetched_at, self._last_error = jwk_set, now, None
            return jwk_set


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
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        algorithms = [a for a in algorithms if a]
        if not algorithms or any(a.lower() == "none" or a.upper().startswith("HS") for a in algorithms):
            # Lanyard signs with a private key; a shared-secret or unsigned alg is never right here.
            raise ValueError(f"algorithms must be asymmetric signature algorithms, got {algorithms!r}")
        if not 0 <= leeway <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds (the contract's bound)")
        self.issuer = issuer
        self.audience = audience or issuer
        self.jwks_url = jwks_url or issuer.rstrip("/") + "/.well-known/jwks.json"
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.jwks = jwks_client or JWKSClient(self.jwks_url)

    @classmethod
    def from_env(cls, environ: Optional[Dict[str, str]] = None) -> "LanyardVerifier":
        env = os.environ if environ is None else environ
        issuer = env.get("LANYARD_ISSUER", "")
        if not issuer:
            raise RuntimeError("LANYARD_ISSUER is not set: set it to Lanyard's LANYARD_ISSUER, e.g. http://127.0.0.1:8080")
        algorithms = [a.strip() for a in env.get("LANYARD_ALGORITHMS", "ES256").split(",")]
        return cls(
            issuer=issuer,
            audience=env.get("LANYARD_AUDIENCE") or None,
            jwks_url=env.get("LANYARD_JWKS_URL") or None,
            algorithms=algorithms,
        )

    def verify(self, token: str) -> Dict[str, Any]:
        """Returns the claims of a valid access token; raises InvalidToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
                raise InvalidToken(f"typ {typ!r} is not at+jwt")
            if "crit" in header:
                # Lanyard never sets crit. Refuse it outright, whatever PyJWT's own crit
                # handling (unpatched PyJWT ignores it: CVE-2026-32597).
                raise InvalidToken("crit header is not supported")
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
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("sub is not a non-empty string")
        if not isinstance(claims.get("profile_complete"), bool):
            raise InvalidToken("profile_complete is missing or not a boolean")
        return claims


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


_bearer = HTTPBearer(auto_error=False)  # auto_error=True would answer 403 to a missing header


def require_auth(
    credentials: Optional[HTTPAuthorizationCredentials] = Depends(_bearer),
    verifier: LanyardVerifier = Depends(get_verifier),
) -> Dict[str, Any]:
    """Any signed-in user: the verified claims, or 401."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized()
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken as e:
        log.info("refused an access token: %s", e)
        raise _unauthorized() from None


def require_complete_profile(claims: Dict[str, Any] = Depends(require_auth)) -> Dict[str, Any]:
    """A signed-in user who finished onboarding: the verified claims, or 401/403."""
    if claims["profile_complete"] is not True:
        raise LanyardProblem(
            403, "profile_incomplete", "complete the onboarding profile first", 'Bearer error="insufficient_scope"'
        )
    profile = claims.get("profile")
    if not (
        isinstance(profile, dict)
        and isinstance(profile.get("python_proficiency"), str)
        and isinstance(profile.get("developer_role"), str)
    ):
        # The contract puts the profile in every token that says profile_complete: true.
        log.info("refused an access token: profile_complete is true but the profile claim is missing or malformed")
        raise _unauthorized()
    return claims
