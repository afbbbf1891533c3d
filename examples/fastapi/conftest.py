"""Fixtures for the two test groups.

* live: a running Lanyard at LANYARD_URL (for example http://127.0.0.1:8080).
* corpus: the token corpus written by ``go run ./examples/corpus -out FILE``, at LANYARD_CORPUS.

A missing variable fails the tests that need it, with a message saying what to set:
these tests never skip.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import httpx
import pytest

import lanyard_auth


def _require_env(name: str, how: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: {how} (or run scripts/examples, which sets it)", pytrace=False)
    return value


def _load_corpus() -> Optional[Dict[str, Any]]:
    path = os.environ.get("LANYARD_CORPUS", "")
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One test per corpus case, named after it. Without a corpus, one placeholder
    # case makes the corpus fixture fail with a clear message.
    if "corpus_case" in metafunc.fixturenames:
        corpus = _load_corpus()
        cases: List[Any] = corpus["cases"] if corpus else [None]
        ids = [c["name"] for c in cases] if corpus else ["LANYARD_CORPUS-not-set"]
        metafunc.parametrize("corpus_case", cases, ids=ids)


@pytest.fixture(scope="session")
def lanyard_url() -> str:
    return _require_env("LANYARD_URL", "set it to a running Lanyard's base URL, e.g. http://127.0.0.1:8080").rstrip("/")


@pytest.fixture(scope="session")
def discovery(lanyard_url: str) -> Dict[str, Any]:
    """Lanyard's discovery document: the issuer and JWKS URL to verify with."""
    try:
        r = httpx.get(f"{lanyard_url}/.well-known/openid-configuration", timeout=10)
    except httpx.HTTPError as e:
        pytest.fail(f"cannot reach Lanyard at LANYARD_URL={lanyard_url}: {e}", pytrace=False)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def lanyard(lanyard_url: str) -> httpx.Client:
    """An HTTP client for Lanyard's own API."""
    with httpx.Client(base_url=lanyard_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def corpus() -> Dict[str, Any]:
    _require_env("LANYARD_CORPUS", "set it to the JSON file written by `go run ./examples/corpus -out FILE`")
    return _load_corpus()


@pytest.fixture(scope="session")
def corpus_verifier(corpus: Dict[str, Any]) -> lanyard_auth.LanyardVerifier:
    return lanyard_auth.LanyardVerifier(
        issuer=corpus["issuer"],
        audience=corpus["audience"],
        jwks_url=corpus["jwks_url"],
        algorithms=corpus["algorithms"],
    )
