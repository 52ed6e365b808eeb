"""Fixtures of the production-readiness suite: a sent referral, request bodies and problem checks.

The partner clients ``iom_api`` / ``dp_api`` are ``tests/conftest.py``'s."""

from __future__ import annotations

import json

import pytest

from tests.builders import referral_body  # noqa: F401 — the suites import it from here
from tests.factories import subject_json

API = "/api/v1"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = json.loads(response.content)
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status
    return body


def case_body(**subject) -> dict:
    return {"subject": subject_json(**subject), "summary": "Resumen confidencial"}


@pytest.fixture
def sent_referral(iom_actor, dp, make_referral):
    """``sent_referral()``: an IOM → DP referral in status requested, built through the services."""

    def make():
        return make_referral(iom_actor, dp, path=[(iom_actor, "send")])

    return make
