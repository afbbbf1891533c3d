"""A tiny FastAPI backend that trusts Lanyard access tokens.

    LANYARD_ISSUER=http://127.0.0.1:8080 /usr/bin/python3 -m uvicorn app:app --port 8000

Routes:
    GET /public                 open to anyone
    GET /me                     any signed-in user (401 without a valid access token)
    GET /chapters/personalised  needs a complete onboarding profile (401, then 403 profile_incomplete)

The personalised chapter is built from the token's ``profile`` claim alone: no
database, no call to Lanyard per request.

Browser callers (a site on another origin, such as examples/docusaurus) need CORS:
``LANYARD_EXAMPLE_CORS_ORIGINS`` is a comma-separated list of exact origins
(``scheme://host[:port]``, e.g. ``http://localhost:3000``) allowed to call this API
with an ``Authorization`` header. Default: none (no CORS headers at all). No
credentials (cookies) are involved: the access token travels in the header.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

import lanyard_auth
from lanyard_auth import require_auth, require_complete_profile, require_verified_email

router = APIRouter()


def cors_origins(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The allowed browser origins from LANYARD_EXAMPLE_CORS_ORIGINS (comma-separated)."""
    env = os.environ if environ is None else environ
    origins = [o.strip().rstrip("/") for o in env.get("LANYARD_EXAMPLE_CORS_ORIGINS", "").split(",")]
    origins = [o for o in origins if o]
    if "*" in origins:
        raise RuntimeError("LANYARD_EXAMPLE_CORS_ORIGINS: list exact origins, not *")
    return origins


def add_cors(target: FastAPI, origins: List[str]) -> None:
    """Lets the listed origins call the API from a browser with a bearer token.

    Only GET (and the preflight's OPTIONS), only the Authorization request header,
    no cookies (allow_credentials stays False: the token is in the header), and no
    response header exposed beyond the CORS-safelisted ones.
    """
    if origins:
        target.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            allow_credentials=False,
            max_age=600,
        )


# How the first chapter opens, by python_proficiency.
OPENINGS = {
    "none": "Start here: what a program is, and your first line of Python.",
    "beginner": "A quick refresher on variables, loops and functions, then on to the robot.",
    "intermediate": "Skip the basics: we go straight to classes, modules and the robot's API.",
    "advanced": "The short version: the robot's API, its concurrency model and where to extend it.",
}

# What the examples are about, by developer_role.
EXAMPLES = {
    "student": "a line-following robot for a class project",
    "hobbyist": "a weekend rover built from a kit",
    "software_engineer": "a tested, packaged controller service",
    "data_scientist": "logging sensor data and plotting it",
    "ml_engineer": "training a small model on the robot's camera frames",
    "robotics_engineer": "closed-loop motor control with ROS 2",
    "researcher": "a reproducible experiment with recorded runs",
    "educator": "a lesson plan your students can follow",
    "other": "a small robot that avoids obstacles",
}


@router.get("/public")
def public() -> Dict[str, Any]:
    return {"message": "anyone can read this"}


@router.get("/me")
def me(claims: Dict[str, Any] = Depends(require_auth)) -> Dict[str, Any]:
    return {
        "user_id": claims["sub"],
        "email": claims.get("email"),
        "profile_complete": claims["profile_complete"],
    }


@router.get("/certificates/me")
def certificate(claims: Dict[str, Any] = Depends(require_verified_email)) -> Dict[str, Any]:
    """A course certificate is issued to a proved address only (403 email_unverified before)."""
    return {"user_id": claims["sub"], "email": claims["email"], "certificate": "Introduction to robot programming"}


@router.get("/chapters/personalised")
def personalised_chapter(claims: Dict[str, Any] = Depends(require_complete_profile)) -> Dict[str, Any]:
    profile = claims["profile"]
    level, role = profile["python_proficiency"], profile["developer_role"]
    return {
        "chapter": 1,
        "title": "Your first robot program",
        "python_proficiency": level,
        "developer_role": role,
        # Values added to Lanyard later fall back to the general text instead of failing.
        "opening": OPENINGS.get(level, OPENINGS["beginner"]),
        "example": EXAMPLES.get(role, EXAMPLES["other"]),
    }


def create_app(environ: Optional[Mapping[str, str]] = None) -> FastAPI:
    """The app, with CORS from ``environ`` (default: the process environment)."""
    application = FastAPI(title="Lanyard FastAPI example")
    lanyard_auth.install(application)
    application.include_router(router)
    add_cors(application, cors_origins(environ))
    return application


app = create_app()
