"""The periodic verification task: silent while the chain is intact; on a broken chain it records
``audit.verification_failed`` and alerts every institution's supervisors (in-app and e-mail), with no
personal data."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from accounts.choices import Role
from audit.models import AuditEvent
from audit.tasks import verify_audit_chain
from notifications.models import Notification
from tests.api.helpers import ALL_SUBJECT_STRINGS, FREE_TEXTS, SUMMARY, build_referral

from .conftest import raw, triggers_dropped


@pytest.fixture
def staff(iom, dp, third, make_user):
    return {
        "iom_sup": make_user(iom, Role.SUPERVISOR, username="iom.sup"),
        "dp_sup": make_user(dp, Role.SUPERVISOR, username="dp.sup"),
        "unhcr_sup": make_user(third, Role.SUPERVISOR, username="unhcr.sup"),
        "retired_sup": make_user(dp, Role.SUPERVISOR, username="dp.retired", is_active=False),
        "iom_cw": make_user(iom, Role.CASEWORKER, username="iom.cw2"),
        "dp_admin": make_user(dp, Role.ADMIN, username="dp.admin"),
    }


@pytest.fixture
def activity(iom, dp, iom_actor, dp_actor):
    return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="accepted")


def test_an_intact_chain_alerts_nobody(staff, activity):
    before = AuditEvent.objects.count()
    result = verify_audit_chain.apply().get()
    assert result == {"ok": True, "checked": before, "checkpoint": before}
    assert AuditEvent.objects.count() == before
    assert not Notification.objects.filter(event_type="audit.verification_failed").exists()
    assert mail.outbox == []


def test_a_broken_chain_is_recorded_and_every_supervisor_alerted(
    staff, activity, django_capture_on_commit_callbacks
):
    victim = AuditEvent.objects.get(sequence=3)
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET outcome = 'denied' WHERE sequence = 3")

    # The e-mails leave after the alert's transaction commits (a rolled-back alert mails nobody).
    with django_capture_on_commit_callbacks(execute=True):
        result = verify_audit_chain.apply().get()
    assert result == {"ok": False, "bad_sequence": 3, "reason": "hash_mismatch", "alerted": 3}

    event = AuditEvent.objects.get(action="audit.verification_failed")
    assert event.actor_type == "system" and event.outcome == "failure"
    assert event.detail == {
        "first_bad_id": str(victim.id),
        "first_bad_sequence": 3,
        "cause": "hash_mismatch",
    }
    assert event.institutions == ",DP,IOM,UNHCR,"  # every institution's auditors see it

    notified = Notification.objects.filter(event_type="audit.verification_failed")
    assert {n.user.username for n in notified} == {"iom.sup", "dp.sup", "unhcr.sup"}
    assert all(n.referral_id is None for n in notified)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        staff[k].email for k in ("iom_sup", "dp_sup", "unhcr_sup")
    )
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)  # nobody sees the others
    assert "sequence 3" in mail.outbox[0].body and "secuencia 3" in mail.outbox[0].body

    # Nothing personal anywhere in the alert: not in the mail, the notifications or the event.
    sent = " ".join(m.subject + m.body for m in mail.outbox)
    stored = json.dumps([n.data for n in notified]) + json.dumps(event.detail)
    for secret in [*ALL_SUBJECT_STRINGS, *FREE_TEXTS, SUMMARY]:
        assert secret not in sent and secret not in stored


def test_the_alert_shows_in_the_supervisors_in_app_list(staff, activity, user_api):
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence = 2")
    verify_audit_chain.apply().get()
    response = user_api(staff["dp_sup"]).get("/api/v1/notifications/")
    assert response.status_code == 200
    assert [n["event_type"] for n in response.json()["results"]] == ["audit.verification_failed"]


def test_a_mail_failure_keeps_the_recorded_alert(staff, activity, settings):
    settings.EMAIL_BACKEND = "tests.audit.test_tasks.BrokenBackend"
    with triggers_dropped():
        raw("UPDATE audit_auditevent SET action = 'test.forged' WHERE sequence = 2")
    result = verify_audit_chain.apply().get()
    assert result["ok"] is False
    assert AuditEvent.objects.filter(action="audit.verification_failed").count() == 1
    assert Notification.objects.filter(event_type="audit.verification_failed").count() == 3


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")

    def open(self):
        pass

    def close(self):
        pass
