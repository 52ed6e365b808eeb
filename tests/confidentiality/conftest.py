"""Fixtures of the confidentiality suites: fresh keys, and a case carrying every kind of personal value."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.cache import cache
from django.utils import timezone

from referrals import crypto, services

from . import populate as values

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_state():
    """No throttling or idempotency state, and no unwrapped data key, carried between tests."""
    cache.clear()
    crypto.forget_cached_keys()
    yield
    cache.clear()
    crypto.forget_cached_keys()


def new_key() -> bytes:
    return os.urandom(32)


def key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture
def full_case(iom, dp, iom_actor, dp_actor):
    """A case with a subject, a completed referral (reason, outcome, notes both ways, consent details) and a
    rejected one (status reason), all with the distinctive values of ``populate``."""
    subject = dict(values.SUBJECT)
    subject["date_of_birth"] = timezone.datetime.fromisoformat(subject["date_of_birth"]).date()
    case = services.case_create(actor=iom_actor, subject=subject, summary=values.SUMMARY)
    consent = {
        "given": True,
        "given_by": "self",
        "method": "written",
        "obtained_at": timezone.now(),
        "data_categories": ["identity", "contact", "documents", "protection_needs"],
        "details": values.CONSENT_DETAILS,
    }
    done = services.referral_create(
        actor=iom_actor,
        case=case,
        to_institution=dp,
        services=["legal_assistance"],
        urgency="urgent",
        reason=values.REASON,
        consent=consent,
    )
    for actor, action, kwargs in (
        (iom_actor, "send", {}),
        (dp_actor, "accept", {}),
        (dp_actor, "start", {}),
    ):
        services.referral_transition(actor=actor, referral_id=done.pk, action=action, **kwargs)
    services.note_create(actor=iom_actor, referral_id=done.pk, body=values.NOTE_SENDER)
    services.note_create(actor=dp_actor, referral_id=done.pk, body=values.NOTE_RECEIVER)
    services.referral_transition(
        actor=dp_actor, referral_id=done.pk, action="complete", outcome=values.OUTCOME
    )
    rejected = services.referral_create(
        actor=iom_actor,
        case=case,
        to_institution=dp,
        services=["health"],
        urgency="normal",
        reason=values.REASON,
        consent={**consent, "data_categories": ["identity"]},
    )
    services.referral_transition(actor=iom_actor, referral_id=rejected.pk, action="send")
    services.referral_transition(
        actor=dp_actor, referral_id=rejected.pk, action="reject", reason=values.STATUS_REASON
    )
    case.refresh_from_db()
    return {"case": case, "completed": done, "rejected": rejected}
