"""JWKSClient under a Lanyard outage, against a local JWKS server the tests control.

These tests need neither LANYARD_URL nor LANYARD_CORPUS. They synchronise on events,
each wait bounded, never on sleeps.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, Optional

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import lanyard_auth

ISSUER = "https://id.example.test"
WAIT = 10  # seconds: the bound on every wait for an event


class JWKSServer:
    """Serves one JWKS. ``slow()`` makes each request wait until ``release()``."""

    def __init__(self, jwks: Dict[str, Any]) -> None:
        self.body = json.dumps(jwks).encode()
        self.hits = 0
        self.arrived = threading.Event()  # set when a request starts
        self._gate: Optional[threading.Event] = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.hits += 1
                outer.arrived.set()
                gate = outer._gate
                if gate is not None:
                    gate.wait(WAIT)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def slow(self) -> None:
        self.arrived.clear()
        self._gate = threading.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def stop(self) -> None:
        """Nothing listens at the URL any more: connections are refused."""
        if not self._stopped:
            self._stopped = True
            self.release()
            self._httpd.shutdown()
            self._httpd.server_close()


class Issuer:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = uuid.uuid4().hex
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="ES256", use="sig")
        self.jwks = {"keys": [jwk]}

    def token(self, kid: Optional[str] = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": str(uuid.uuid4()),
            "sid": str(uuid.uuid4()),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "email": "ada@example.com",
            "profile_complete": False,
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": kid or self.kid, "typ": "at+jwt"})


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def server(issuer: Issuer) -> Iterator[JWKSServer]:
    srv = JWKSServer(issuer.jwks)
    yield srv
    srv.stop()


def wait_for_fetch(client: lanyard_auth.JWKSClient) -> None:
    """Waits (bounded) for the client's running fetch, if any, to end."""
    done = client._inflight
    if done is not None:
        assert done.wait(WAIT), "the JWKS fetch did not end"


def test_unreachable_jwks_keeps_the_last_good_set(issuer: Issuer, server: JWKSServer) -> None:
    # lifespan 0: the set is stale at once, so every request starts a background refetch.
    client = lanyard_auth.JWKSClient(server.url, lifespan=0, min_refetch_interval=0, timeout=2)
    verifier = lanyard_auth.LanyardVerifier(issuer=ISSUER, jwks_client=client)
    assert verifier.verify(issuer.token())["iss"] == ISSUER
    wait_for_fetch(client)
    hits = server.hits

    server.stop()  # Lanyard goes away after the first successful fetch
    for _ in range(3):
        assert verifier.verify(issuer.token())["iss"] == ISSUER  # starts a refetch that fails
        wait_for_fetch(client)
        assert client._last_error is not None, "the refetch did fail"
    assert server.hits == hits
    assert verifier.verify(issuer.token())["iss"] == ISSUER, "a failed fetch never drops cached keys"
    with pytest.raises(lanyard_auth.InvalidToken):
        verifier.verify(issuer.token(kid="not-a-published-kid"))
    wait_for_fetch(client)
    assert verifier.verify(issuer.token())["iss"] == ISSUER


def test_unreachable_jwks_with_nothing_cached_is_refused(issuer: Issuer, server: JWKSServer) -> None:
    server.stop()
    client = lanyard_auth.JWKSClient(server.url, timeout=2)
    verifier = lanyard_auth.LanyardVerifier(issuer=ISSUER, jwks_client=client)
    for _ in range(2):  # the second fails fast (failure_backoff)
        with pytest.raises(lanyard_auth.InvalidToken):
            verifier.verify(issuer.token())


def test_slow_jwks_does_not_stall_cached_kids(issuer: Issuer, server: JWKSServer) -> None:
    client = lanyard_auth.JWKSClient(server.url, min_refetch_interval=0, timeout=WAIT)
    verifier = lanyard_auth.LanyardVerifier(issuer=ISSUER, jwks_client=client)
    assert verifier.verify(issuer.token())["iss"] == ISSUER
    wait_for_fetch(client)

    server.slow()  # Lanyard now answers only when released
    forged_result: Dict[str, Any] = {}

    def forged() -> None:
        try:
            verifier.verify(issuer.token(kid="forged-kid"))
        except lanyard_auth.InvalidToken as e:
            forged_result["error"] = e

    t = threading.Thread(target=forged)
    t.start()
    try:
        assert server.arrived.wait(WAIT), "the forged kid triggered a refetch"
        # The refetch is in flight and stalled: a cached kid must not wait for it.
        start = time.monotonic()
        for _ in range(20):
            assert verifier.verify(issuer.token())["iss"] == ISSUER
        elapsed = time.monotonic() - start
        assert elapsed < 1, f"cached-kid verifications took {elapsed:.2f}s during a slow fetch"
        assert t.is_alive(), "the forged-kid request waits for the fetch"
    finally:
        server.release()
        t.join(WAIT)
    assert not t.is_alive()
    assert "error" in forged_result
