"""Tests of the FastAPI example.

Group "live": against a running Lanyard (LANYARD_URL), the whole way a user goes:
sign up, be refused a personalised chapter (403), complete onboarding, read it (200), refresh.

Group "corpus": every token of the shared corpus (LANYARD_CORPUS) gets the answer the corpus
says: accepted (200, or 403 on the personalised route when the profile is incomplete) or
refused (401 with WWW-Authenticate).
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from typing import Any, Dict, Iterator

import httpx
import pytest
from starlette.testclient import TestClient

import lanyard_auth
from app import app

PERSONALISED = "/chapters/personalised"
CERTIFICATE = "/certificates/me"


def assert_email_unverified(r: Any) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "email_unverified"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
EXPECTED_CORPUS_CASES = {
    "good_complete",
    "good_incomplete",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "tampered_payload",
    "tampered_signature",
    "alg_none",
    "hs256_public_key",
    "unknown_kid",
    "missing_profile_complete",
    "wrong_typ",
    "missing_sid",
    "exp_string",
    "exp_huge",
    "missing_nbf",
    "iat_future",
    "profile_true_without_profile",
    "case_variant_claim",
    "b64_false",
    "trailing_whitespace",
    "case_variant_only",
    "duplicate_claim",
    "case_duplicate_claim",
    "duplicate_profile_member",
    "duplicate_header_member",
    "aud_array_with_null",
    "lifetime_too_long",
}


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unverified_claims(token: str) -> Dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("Bearer ") and 'error="invalid_token"' in www, www
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 401 and body["code"] == "unauthorized", body
    assert set(body) >= {"type", "title", "status", "detail", "code"}


def assert_profile_incomplete(r: httpx.Response) -> None:
    assert r.status_code == 403, r.text
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("Bearer ") and 'error="insufficient_scope"' in www, www
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 403 and body["code"] == "profile_incomplete", body
    assert set(body) >= {"type", "title", "status", "detail", "code"}


# ---------------------------------------------------------------- live Lanyard


@pytest.fixture
def live_app(discovery: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app configured the way it is in production: from the environment."""
    monkeypatch.setenv("LANYARD_ISSUER", discovery["issuer"])
    monkeypatch.delenv("LANYARD_JWKS_URL", raising=False)
    monkeypatch.delenv("LANYARD_ALGORITHMS", raising=False)
    lanyard_auth.get_verifier.cache_clear()
    app.dependency_overrides.clear()
    with TestClient(app) as client:
        yield client
    lanyard_auth.get_verifier.cache_clear()


def sign_up(lanyard: httpx.Client) -> Dict[str, Any]:
    r = lanyard.post(
        "/v1/auth/signup",
        json={
            "email": f"fastapi-{uuid.uuid4().hex}@example.com",
            "password": "correct horse battery staple",
            "name": "FastAPI example",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_live_public_route_needs_no_token(live_app: TestClient) -> None:
    r = live_app.get("/public")
    assert r.status_code == 200
    assert r.json() == {"message": "anyone can read this"}


def test_live_jwks_url_defaults_to_the_issuers(live_app: TestClient, discovery: Dict[str, Any]) -> None:
    assert lanyard_auth.get_verifier().jwks_url == discovery["jwks_uri"]


def test_live_onboarding_flow(live_app: TestClient, lanyard: httpx.Client) -> None:
    signup = sign_up(lanyard)
    access, refresh = signup["access_token"], signup["refresh_token"]
    assert signup["user"]["profile_complete"] is False

    # Signed in: /me works, the personalised chapter is refused with 403.
    r = live_app.get("/me", headers=bearer(access))
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": signup["user"]["id"], "email": signup["user"]["email"], "profile_complete": False}
    assert_profile_incomplete(live_app.get(PERSONALISED, headers=bearer(access)))
    # The address is not proved yet: the certificate waits for it.
    assert unverified_claims(access)["email_verified"] is False
    assert_email_unverified(live_app.get(CERTIFICATE, headers=bearer(access)))

    # Onboarding: Lanyard answers with the profile and a fresh access token for the same session.
    r = lanyard.put(
        "/v1/me/profile",
        headers=bearer(access),
        json={"python_proficiency": "intermediate", "developer_role": "robotics_engineer"},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["token_type"] == "Bearer" and updated["expires_in"] > 0
    assert updated["profile"]["python_proficiency"] == "intermediate"
    assert updated["profile"]["developer_role"] == "robotics_engineer"
    fresh = updated["access_token"]
    assert fresh != access
    assert unverified_claims(fresh)["sid"] == unverified_claims(access)["sid"]
    assert unverified_claims(fresh)["profile_complete"] is True

    r = live_app.get(PERSONALISED, headers=bearer(fresh))
    assert r.status_code == 200, r.text
    chapter = r.json()
    assert chapter["python_proficiency"] == "intermediate"
    assert chapter["developer_role"] == "robotics_engineer"
    assert chapter["example"] == "closed-loop motor control with ROS 2"
    assert chapter["opening"].startswith("Skip the basics")

    # The token issued before onboarding still says profile_complete: false.
    assert_profile_incomplete(live_app.get(PERSONALISED, headers=bearer(access)))

    # A refresh carries the profile into the new access token.
    r = lanyard.post("/v1/auth/refresh", json={"refresh_token": refresh})
    assert r.status_code == 200, r.text
    refreshed = r.json()["access_token"]
    assert refreshed not in (access, fresh)
    r = live_app.get(PERSONALISED, headers=bearer(refreshed))
    assert r.status_code == 200, r.text
    assert r.json() == chapter


def test_live_missing_token_is_401(live_app: TestClient) -> None:
    for path in ("/me", PERSONALISED):
        assert_unauthorized(live_app.get(path))
        assert_unauthorized(live_app.get(path, headers={"Authorization": "Bearer"}))
        assert_unauthorized(live_app.get(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}))


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6WzFdfQ.e30.AA"],
    ids=["garbage", "three-dots", "no-signature", "kid-not-a-string"],
)
def test_live_garbage_token_is_401(live_app: TestClient, token: str) -> None:
    assert_unauthorized(live_app.get("/me", headers=bearer(token)))
    assert_unauthorized(live_app.get(PERSONALISED, headers=bearer(token)))


def test_live_forged_token_is_401(live_app: TestClient, lanyard: httpx.Client) -> None:
    access = sign_up(lanyard)["access_token"]
    header, payload, signature = access.split(".")
    claims = unverified_claims(access)
    claims["profile_complete"] = True
    claims["profile"] = {"python_proficiency": "advanced", "developer_role": "researcher"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_unauthorized(live_app.get(PERSONALISED, headers=bearer(f"{header}.{forged_payload}.{signature}")))
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert_unauthorized(live_app.get("/me", headers=bearer(f"{header}.{payload}.{flipped}")))


def test_live_unreachable_jwks_is_401_not_500(lanyard: httpx.Client, discovery: Dict[str, Any]) -> None:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verifier = lanyard_auth.LanyardVerifier(issuer=discovery["issuer"], jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    access = sign_up(lanyard)["access_token"]
    app.dependency_overrides[lanyard_auth.get_verifier] = lambda: verifier
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert_unauthorized(client.get("/me", headers=bearer(access)))
            assert_unauthorized(client.get(PERSONALISED, headers=bearer(access)))
    finally:
        app.dependency_overrides.clear()


def test_live_other_audience_is_401(lanyard: httpx.Client, discovery: Dict[str, Any]) -> None:
    verifier = lanyard_auth.LanyardVerifier(
        issuer=discovery["issuer"], audience="https://another-service.example", jwks_url=discovery["jwks_uri"]
    )
    access = sign_up(lanyard)["access_token"]
    app.dependency_overrides[lanyard_auth.get_verifier] = lambda: verifier
    try:
        with TestClient(app) as client:
            assert_unauthorized(client.get("/me", headers=bearer(access)))
    finally:
        app.dependency_overrides.clear()


# ---------------------------------------------------------------- token corpus


@pytest.fixture
def corpus_app(corpus_verifier: lanyard_auth.LanyardVerifier) -> Iterator[TestClient]:
    app.dependency_overrides[lanyard_auth.get_verifier] = lambda: corpus_verifier
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


def test_corpus_has_every_case(corpus: Dict[str, Any]) -> None:
    names = {c["name"] for c in corpus["cases"]}
    assert names >= EXPECTED_CORPUS_CASES, EXPECTED_CORPUS_CASES - names
    assert corpus["jwks_url"].startswith("http://127.0.0.1:")


def test_corpus_case(
    corpus_app: TestClient, corpus_verifier: lanyard_auth.LanyardVerifier, corpus_case: Dict[str, Any]
) -> None:
    token = corpus_case["token"]
    # The verifier itself, on the token exactly as the corpus has it.
    if corpus_case["accept"]:
        assert corpus_verifier.verify(token)["profile_complete"] is corpus_case["profile_complete"]
    else:
        with pytest.raises(lanyard_auth.InvalidToken):
            corpus_verifier.verify(token)
    if token != token.strip():
        # HTTP drops whitespace around a header value (RFC 9110 §5.5), so over HTTP this
        # token would arrive as a different one: the direct check above is the test.
        return
    me = corpus_app.get("/me", headers=bearer(token))
    chapter = corpus_app.get(PERSONALISED, headers=bearer(token))
    certificate = corpus_app.get(CERTIFICATE, headers=bearer(token))
    if not corpus_case["accept"]:
        assert_unauthorized(me)
        assert_unauthorized(chapter)
        assert_unauthorized(certificate)
        return
    if unverified_claims(token).get("email_verified") is True:
        assert certificate.status_code == 200, certificate.text
    else:
        assert_email_unverified(certificate)
    assert me.status_code == 200, me.text
    assert me.json()["profile_complete"] is corpus_case["profile_complete"]
    assert me.json()["user_id"] == unverified_claims(token)["sub"]
    if corpus_case["profile_complete"]:
        assert chapter.status_code == 200, chapter.text
        profile = unverified_claims(token)["profile"]
        assert chapter.json()["python_proficiency"] == profile["python_proficiency"]
        assert chapter.json()["developer_role"] == profile["developer_role"]
    else:
        assert_profile_incomplete(chapter)


def test_corpus_bearer_scheme_variants(corpus_app: TestClient, corpus: Dict[str, Any]) -> None:
    token = next(c["token"] for c in corpus["cases"] if c["name"] == "good_complete")
    for header in (f"Bearer  {token}", f"bearer {token}", f"BEARER   {token}"):
        assert corpus_app.get(PERSONALISED, headers={"Authorization": header}).status_code == 200, header
    for header in (f"Bearer\t{token}", f"Bearer{token}", f"Basic {token}", f"Bearer {token} x"):
        assert_unauthorized(corpus_app.get("/me", headers={"Authorization": header}))
    two = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    assert_unauthorized(corpus_app.get("/me", headers=two))


# ---------------------------------------------------------------- configuration


def test_config_from_env_defaults() -> None:
    v = lanyard_auth.LanyardVerifier.from_env({"LANYARD_ISSUER": "https://auth.example.com"})
    assert v.issuer == v.audience == "https://auth.example.com"
    assert v.jwks_url == "https://auth.example.com/.well-known/jwks.json"
    assert v.algorithms == ["ES256"] and v.leeway == 30
    assert v.max_token_lifetime == 960


def test_config_from_env_overrides() -> None:
    v = lanyard_auth.LanyardVerifier.from_env(
        {
            "LANYARD_ISSUER": "https://auth.example.com",
            "LANYARD_AUDIENCE": "https://api.example.com",
            "LANYARD_JWKS_URL": "http://lanyard.internal:8080/.well-known/jwks.json",
            "LANYARD_ALGORITHMS": "ES256, EdDSA",
            "LANYARD_MAX_TOKEN_LIFETIME": "3660",
        }
    )
    assert v.audience == "https://api.example.com"
    assert v.jwks_url == "http://lanyard.internal:8080/.well-known/jwks.json"
    assert v.algorithms == ["ES256", "EdDSA"]
    assert v.max_token_lifetime == 3660


def test_config_refuses_missing_issuer_and_symmetric_algs() -> None:
    with pytest.raises(RuntimeError, match="LANYARD_ISSUER"):
        lanyard_auth.LanyardVerifier.from_env({})
    for algs in (["HS256"], ["none"], []):
        with pytest.raises(ValueError):
            lanyard_auth.LanyardVerifier("https://auth.example.com", algorithms=algs)
    for lifetime in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            lanyard_auth.LanyardVerifier("https://auth.example.com", max_token_lifetime=lifetime)
    with pytest.raises(ValueError):
        lanyard_auth.LanyardVerifier.from_env({"LANYARD_ISSUER": "https://a.example.com", "LANYARD_MAX_TOKEN_LIFETIME": "15m"})
