"""Key rotation against a running Lanyard: the overlap window.

``lanyard keys rotate --now`` makes a new key sign at once and keeps the old one
published (state retired) until the tokens it signed have expired. A backend whose
verifier cached the JWKS before the rotation must keep accepting old-kid tokens and
start accepting new-kid ones.

This file runs after test_app.py and test_jwks.py (pytest takes files in name order),
so the rotation happens after every other live test. It needs LANYARD_BIN and
LANYARD_DATA_DIR (scripts/examples sets both, and starts Lanyard with
LANYARD_KEY_CHECK_INTERVAL=1s so the server picks the new key up quickly).

Not tested here: a token whose kid is not in the JWKS is refused (the corpus case
``unknown_kid``, test_app.py::test_corpus_case), and the old key leaves the JWKS
once its tokens have expired (16+ minutes of real time: internal/identity/rotation_test.go
tests it with a fake clock).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any, Dict, List

import httpx
import pytest
from starlette.testclient import TestClient

import lanyard_auth
from app import app


def _require_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set (run scripts/examples, which sets it)", pytrace=False)
    return value


def _kid(token: str) -> str:
    return lanyard_auth.jwt.get_unverified_header(token)["kid"]


def _jwks_kids(lanyard: httpx.Client, jwks_uri: str) -> List[str]:
    r = lanyard.get(jwks_uri)
    assert r.status_code == 200, r.text
    return [k["kid"] for k in r.json()["keys"]]


def test_rotation_overlap_old_and_new_kid_both_verify(lanyard: httpx.Client, discovery: Dict[str, Any]) -> None:
    lanyard_bin = _require_env("LANYARD_BIN")
    data_dir = _require_env("LANYARD_DATA_DIR")

    email = f"fastapi-rotation-{uuid.uuid4().hex}@example.com"
    password = "correct horse battery staple"
    r = lanyard.post("/v1/auth/signup", json={"email": email, "password": password, "name": "Rotation"})
    assert r.status_code == 201, r.text
    t1 = r.json()["access_token"]
    old_kid = _kid(t1)

    # min_refetch_interval=0: refetch at once on an unknown kid. With the default (30 s),
    # a verifier that fetched the JWKS less than 30 s before a `--now` rotation refuses
    # new-kid tokens until its 30 s are up: the 401s `lanyard keys rotate --help` warns of.
    verifier = lanyard_auth.LanyardVerifier(
        issuer=discovery["issuer"],
        jwks_url=discovery["jwks_uri"],
        jwks_client=lanyard_auth.JWKSClient(discovery["jwks_uri"], min_refetch_interval=0),
    )
    app.dependency_overrides[lanyard_auth.get_verifier] = lambda: verifier
    try:
        with TestClient(app) as client:
            # The verifier fetches and caches the JWKS (old key only) before the rotation.
            r = client.get("/me", headers={"Authorization": f"Bearer {t1}"})
            assert r.status_code == 200, r.text
            assert verifier.jwks._keys.keys() >= {old_kid}

            env = {**os.environ, "LANYARD_DATA_DIR": data_dir}
            done = subprocess.run(
                [lanyard_bin, "keys", "rotate", "--now"], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, f"keys rotate --now: exit {done.returncode}\n{done.stdout}\n{done.stderr}"

            # The server switches within LANYARD_KEY_CHECK_INTERVAL (1 s here).
            deadline = time.monotonic() + 10
            while True:
                kids = _jwks_kids(lanyard, discovery["jwks_uri"])
                if len(kids) >= 2 and kids[0] != old_kid:
                    break
                assert time.monotonic() < deadline, f"JWKS did not show the rotation within 10 s: {kids}"
                time.sleep(0.05)
            assert old_kid in kids, f"the old key left the JWKS at once: {kids}"

            r = lanyard.post("/v1/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
            t2 = r.json()["access_token"]
            new_kid = _kid(t2)
            assert new_kid != old_kid and new_kid == kids[0], (old_kid, new_kid, kids)

            # The same verifier, JWKS cached before the rotation: both tokens verify.
            for token in (t1, t2):
                r = client.get("/me", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
                assert r.json()["email"] == email
            assert verifier.verify(t1)["sub"] == verifier.verify(t2)["sub"]
    finally:
        app.dependency_overrides.clear()
