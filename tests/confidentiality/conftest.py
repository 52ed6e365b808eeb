"""Fixtures of the confidentiality suites: fresh keys, and a case carrying every kind of personal value."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.cache import cache
from django.utils import timezone

from referrals import crypto, services
from tests.builders import referral_through_services

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
    categories = ("identity", "contact", "documents", "protection_needs")
    details = {"method": "written", "details": values.CONSENT_DETAILS}
    done = referral_through_services(
        sender=iom_actor,
        to=dp,
        path=[(iom_actor, "send"), (dp_actor, "accept"), (dp_actor, "start")],
        categories=categories,
        urgency="urgent",
        reason=values.REASON,
        subject=subject,
        summary=values.SUMMARY,
        consent_fields=details,
    )
    case = done.case
    services.note_create(actor=iom_actor, referral_id=done.pk, body=values.NOTE_SENDER)
    services.note_create(actor=dp_actor, referral_id=done.pk, body=values.NOTE_RECEIVER)
    services.referral_transition(
        actor=dp_actor, referral_id=done.pk, action="complete", outcome=values.OUTCOME
    )
    rejected = referral_through_services(
        sender=iom_actor,
        to=dp,
        path=[(iom_actor, "send"), (dp_actor, "reject", values.STATUS_REASON)],
        case=case,
        requested=("health",),
        reason=values.REASON,
        consent_fields=details,
    )
    case.refresh_from_db()
    return {"case": case, "completed": done, "rejected": rejected}
