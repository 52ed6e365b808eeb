"""Consent decides the projection (contract §4): the receiver sees exactly the consented data categories
(other keys omitted), the sender the whole subject; withdrawing consent cancels and revokes."""

from __future__ import annotations

import itertools

import pytest

from audit.models import AuditEvent
from referrals.choices import SUBJECT_FIELDS
from referrals.models import Referral

from .helpers import (
    ALL_SUBJECT_STRINGS,
    API,
    FREE_TEXTS,
    NOTE,
    REASON,
    SECRET_STRINGS_BY_CATEGORY,
    SECRET_SUBJECT,
    SUMMARY,
    assert_problem,
    leaked,
    subject_keys,
)

CATEGORIES = ("identity", "contact", "documents", "protection_needs")
COMBINATIONS = [c for n in range(1, 5) for c in itertools.combinations(CATEGORIES, n)]
EVERY_SECRET = ALL_SUBJECT_STRINGS + FREE_TEXTS + [SUMMARY]


def _expected_value(name):
    value = SECRET_SUBJECT[name]
    return value.isoformat() if name == "date_of_birth" else value


@pytest.mark.parametrize("categories", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_receiver_sees_exactly_the_consented_categories(categories, referral_in, sender_api, receiver_api):
    referral = referral_in("requested", categories=categories)

    received = receiver_api.get(f"{API}/referrals/{referral.pk}/")

    assert received.status_code == 200
    subject = received.json()["subject"]
    assert set(subject) == subject_keys(categories)  # not null-valued: omitted
    assert subject == {name: _expected_value(name) for name in subject_keys(categories)}
    hidden = [s for c in CATEGORIES if c not in categories for s in SECRET_STRINGS_BY_CATEGORY[c]]
    assert leaked(received, hidden + [SUMMARY]) == []
    assert received.json()["case"] is None
    assert received.json()["consent"]["data_categories"] == sorted(categories)
    # the sender always sees the whole subject
    sent = sender_api.get(f"{API}/referrals/{referral.pk}/").json()
    assert set(sent["subject"]) == set(SUBJECT_FIELDS)
    assert sent["subject"] == {name: _expected_value(name) for name in SUBJECT_FIELDS}
    assert sent["case"] == str(referral.case_id)


def test_the_projection_holds_in_action_responses_too(referral_in, receiver_api):
    referral = referral_in("requested", categories=("documents",))
    accepted = receiver_api.post(f"{API}/referrals/{referral.pk}/accept/", {}, format="json")
    assert set(accepted.json()["subject"]) == {"document_type", "document_number"}
    assert (
        leaked(accepted, SECRET_STRINGS_BY_CATEGORY["identity"] + SECRET_STRINGS_BY_CATEGORY["contact"]) == []
    )


def test_lists_never_carry_the_subject_or_free_text(referral_in, sender_api, receiver_api):
    for status in ("requested", "accepted", "on-hold", "completed", "rejected"):
        referral_in(status, categories=CATEGORIES)
    for client in (sender_api, receiver_api):
        listed = client.get(f"{API}/referrals/")
        assert listed.status_code == 200 and len(listed.json()["results"]) == 5
        assert leaked(listed, EVERY_SECRET) == []


# --- consent withdrawal ---------------------------------------------------------------------------


def _withdraw(client, referral, reason="RETIRO-SECRETO"):
    return client.post(f"{API}/referrals/{referral.pk}/consent/withdraw/", {"reason": reason}, format="json")


@pytest.mark.parametrize("status", ["requested", "received", "accepted", "in-progress", "on-hold"])
def test_withdrawal_cancels_an_open_referral_and_revokes_the_receiver(
    status, referral_in, sender_api, receiver_api
):
    referral = referral_in(status, categories=CATEGORIES)
    from referrals import services

    services.note_create(actor=_sender_actor(referral), referral_id=referral.pk, body=NOTE)

    response = _withdraw(sender_api, referral)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["status_reason"] == "RETIRO-SECRETO"  # the sender still sees its own free text
    assert body["consent"]["withdrawn_at"] is not None
    assert response["ETag"] != f'"{referral.version}"'
    _assert_receiver_revoked(receiver_api, referral)


def test_withdrawal_after_completion_keeps_the_status_but_revokes(referral_in, sender_api, receiver_api):
    referral = referral_in("completed", categories=CATEGORIES)
    assert receiver_api.get(f"{API}/referrals/{referral.pk}/").json()["outcome"] == "RESULTADO-SECRETO"

    response = _withdraw(sender_api, referral)

    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["consent"]["withdrawn_at"] is not None
    assert Referral.objects.get(pk=referral.pk).receiver_access_revoked_at is not None
    _assert_receiver_revoked(receiver_api, referral)


def test_withdrawal_of_a_draft_cancels_it(referral_in, sender_api):
    referral = referral_in("draft")
    response = _withdraw(sender_api, referral)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_withdrawal_needs_a_reason_and_happens_once(referral_in, sender_api):
    referral = referral_in("accepted")
    for payload in ({}, {"reason": ""}, {"reason": "  "}, {"reason": None}):
        response = sender_api.post(f"{API}/referrals/{referral.pk}/consent/withdraw/", payload, format="json")
        assert_problem(response, 400, "validation-error", errors={"reason"})
    assert Referral.objects.get(pk=referral.pk).consent.withdrawn_at is None
    assert _withdraw(sender_api, referral).status_code == 200
    assert_problem(_withdraw(sender_api, referral), 409, "invalid-transition")


def test_only_the_sender_withdraws(referral_in, receiver_api, third, api_as):
    referral = referral_in("accepted")
    assert_problem(_withdraw(receiver_api, referral), 403, "permission-denied")
    assert_problem(_withdraw(api_as(third), referral), 404, "not-found")
    assert Referral.objects.get(pk=referral.pk).consent.withdrawn_at is None


def test_withdrawal_is_audited_without_the_reason(referral_in, sender_api):
    referral = referral_in("accepted")
    _withdraw(sender_api, referral)
    events = AuditEvent.objects.filter(object_id=str(referral.pk), action="consent.withdrawn")
    assert events.count() == 1
    revoked = AuditEvent.objects.filter(object_id=str(referral.pk), action="permission.revoked")
    assert revoked.count() == 1
    for event in AuditEvent.objects.filter(object_id=str(referral.pk)):
        assert "RETIRO-SECRETO" not in str(event.detail)


def _sender_actor(referral):
    from accounts.actor import actor_for_user

    return actor_for_user(referral.created_by)


def _assert_receiver_revoked(receiver_api, referral):
    read = receiver_api.get(f"{API}/referrals/{referral.pk}/")
    assert read.status_code == 200  # the metadata stays
    body = read.json()
    assert body["subject"] is None
    assert (body["reason"], body["status_reason"], body["outcome"], body["case"]) == (None, None, None, None)
    assert leaked(read, EVERY_SECRET) == []
    assert_problem(receiver_api.get(f"{API}/referrals/{referral.pk}/notes/"), 403, "permission-denied")
    assert_problem(
        receiver_api.post(f"{API}/referrals/{referral.pk}/notes/", {"body": "hola"}, format="json"),
        403,
        "permission-denied",
    )
    events = receiver_api.get(f"{API}/referrals/{referral.pk}/events/")
    assert events.status_code == 200 and leaked(events, EVERY_SECRET) == []
    listed = receiver_api.get(f"{API}/referrals/")
    assert str(referral.pk) in [item["id"] for item in listed.json()["results"]]
    assert leaked(listed, EVERY_SECRET) == []
    assert REASON not in read.content.decode()
