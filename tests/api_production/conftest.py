"""Fixtures of the production-readiness suite: partner clients, a referral factory and problem checks."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from referrals import services
from tests.factories import consent_json, subject_json

API = "/api/v1"


@pytest.fixture
def iom_api(iom, dp, api_as):
    return api_as(iom)


@pytest.fixture
def dp_api(dp, api_as):
    return api_as(dp)


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


def referral_body(case_id, to="DP") -> dict:
    return {
        "case": str(case_id),
        "to_institution": to,
        "services": ["legal_assistance"],
        "urgency": "urgent",
        "reason": "Motivo confidencial",
        "consent": consent_json(["identity", "contact"]),
    }


@pytest.fixture
def sent_referral(iom_actor, dp, make_case):
    """``sent_referral()``: an IOM → DP referral in status requested, built through the services."""

    def make():
        case = make_case(iom_actor)
        referral = services.referral_create(
            actor=iom_actor,
            case=case,
            to_institution=dp,
            services=["protection"],
            urgency="normal",
            reason="Motivo",
            consent={
                "given": True,
                "given_by": "self",
                "method": "verbal",
                "obtained_at": timezone.now(),
                "data_categories": ["identity"],
            },
        )
        services.referral_transition(actor=iom_actor, referral_id=referral.pk, action="send")
        referral.refresh_from_db()
        return referral

    return make
