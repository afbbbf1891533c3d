"""CORS for browser callers (LANYARD_EXAMPLE_CORS_ORIGINS): no Lanyard needed.

A site on another origin (examples/docusaurus) calls GET /chapters/personalised
with an Authorization header, so the browser sends a preflight first.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import lanyard_auth
from app import cors_origins, create_app

SITE = "http://localhost:3000"
OTHER = "http://127.0.0.1:4000"
PERSONALISED = "/chapters/personalised"


def preflight(client: TestClient, origin: str, headers: str = "authorization") -> httpx.Response:
    return client.options(
        PERSONALISED,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": headers,
        },
    )


def client_for(origins: str) -> TestClient:
    application: FastAPI = create_app({"LANYARD_EXAMPLE_CORS_ORIGINS": origins})
    # No Lanyard here: requests without a token are refused before any key is needed.
    application.dependency_overrides[lanyard_auth.get_verifier] = lambda: None
    return TestClient(application)


@pytest.fixture()
def cors_app() -> TestClient:
    return client_for(f" {SITE}/ , https://learn.example.com")


def test_origins_parsed_exactly() -> None:
    assert cors_origins({}) == []
    assert cors_origins({"LANYARD_EXAMPLE_CORS_ORIGINS": ""}) == []
    assert cors_origins({"LANYARD_EXAMPLE_CORS_ORIGINS": "http://a:1, http://b:2/,"}) == ["http://a:1", "http://b:2"]
    with pytest.raises(RuntimeError):
        cors_origins({"LANYARD_EXAMPLE_CORS_ORIGINS": "*"})


def test_preflight_from_an_allowed_origin_allows_authorization(cors_app: TestClient) -> None:
    r = preflight(cors_app, SITE)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SITE
    assert "GET" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    # The token is in the header: no cookies, so no credentials.
    assert "access-control-allow-credentials" not in r.headers


def test_preflight_from_another_origin_is_refused(cors_app: TestClient) -> None:
    r = preflight(cors_app, OTHER)
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


def test_preflight_with_another_header_is_refused(cors_app: TestClient) -> None:
    r = preflight(cors_app, SITE, "authorization, x-custom")
    assert r.status_code == 400


def test_answers_carry_the_origin_and_expose_nothing_extra(cors_app: TestClient) -> None:
    # Also the 401 problem, so that the browser app can read its code.
    r = cors_app.get(PERSONALISED, headers={"Origin": SITE})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == SITE
    assert "access-control-expose-headers" not in r.headers
    assert r.json()["code"] == "unauthorized"

    r = cors_app.get("/public", headers={"Origin": OTHER})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_no_origins_by_default() -> None:
    client = client_for("")
    r = preflight(client, SITE)
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/public", headers={"Origin": SITE})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
