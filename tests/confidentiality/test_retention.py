"""Retention: closed cases older than RETENTION_DAYS are erased by the periodic task; open ones are kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from referrals import retention, services
from referrals.models import Case, Referral

DAY = timedelta(days=1)


def later(days_after_period: int = 1):
    """A time ``days_after_period`` days after the retention period has run out for today's data."""
    return timezone.now() + timedelta(days=settings.RETENTION_DAYS) + days_after_period * DAY


@pytest.fixture
def cases(iom_actor, dp_actor, dp, make_case, make_referral):
    completed = make_referral(
        iom_actor,
        dp,
        path=[
            (iom_actor, "send"),
            (dp_actor, "accept"),
            (dp_actor, "start"),
            (dp_actor, "complete", "Hecho"),
        ],
    )
    cancelled = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (iom_actor, "cancel", "Error")])
    in_progress = make_referral(
        iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "accept"), (dp_actor, "start")]
    )
    requested = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    draft_only = make_referral(iom_actor, dp)
    no_referral = make_case(iom_actor)
    return {
        "completed": completed.case,
        "cancelled": cancelled.case,
        "in_progress": in_progress.case,
        "requested": requested.case,
        "draft_only": draft_only.case,
        "no_referral": no_referral,
    }


def erased(name_to_case) -> set[str]:
    ids = {c.pk: name for name, c in name_to_case.items()}
    return {ids[pk] for pk in Case.objects.filter(erased_at__isnull=False).values_list("pk", flat=True)}


def test_nothing_is_due_within_the_period(cases):
    report = retention.apply_retention(now=later(-1))
    assert report["due"] == 0 and report["erased"] == 0
    assert erased(cases) == set()


def test_closed_cases_are_erased_after_the_period_and_open_ones_kept(cases):
    report = retention.apply_retention(now=later())
    assert erased(cases) == {"completed", "cancelled", "draft_only", "no_referral"}
    assert report == {
        "retention_days": settings.RETENTION_DAYS,
        "due": 4,
        "erased": 4,
        "held_open": 2,
        "dry_run": False,
    }
    for case in Case.objects.filter(erased_at__isnull=False):
        assert case.wrapped_data_key is None and case.summary is None
    events = AuditEvent.objects.filter(action="subject.erased")
    assert events.count() == 4 and {e.detail["trigger"] for e in events} == {"retention"}
    assert {e.actor_label for e in events} == {"task:apply_retention"}
    # Running again changes nothing.
    assert retention.apply_retention(now=later())["erased"] == 0
    assert AuditEvent.objects.filter(action="subject.erased").count() == 4


def test_recent_activity_on_a_referral_or_a_note_keeps_a_case(cases, iom_actor):
    now = later()
    completed = Referral.objects.get(case=cases["completed"])
    Referral.objects.filter(pk=completed.pk).update(updated_at=now - 10 * DAY)
    cancelled = Referral.objects.get(case=cases["cancelled"])
    services.note_create(actor=iom_actor, referral_id=cancelled.pk, body="Seguimiento")
    from referrals.models import Note

    Note.objects.filter(referral=cancelled).update(at=now - 5 * DAY)
    Case.objects.filter(pk=cases["no_referral"].pk).update(closed_at=now - 3 * DAY)
    retention.apply_retention(now=now)
    assert erased(cases) == {"draft_only"}


def test_dry_run_and_limit(cases):
    report = retention.apply_retention(now=later(), dry_run=True)
    assert report["due"] == 4 and report["erased"] == 0 and erased(cases) == set()
    assert retention.apply_retention(now=later(), limit=1)["erased"] == 1
    assert len(erased(cases)) == 1


def test_the_celery_task_is_registered_under_its_name_and_erases(cases):
    from config.celery import app

    app.loader.import_default_modules()
    task = app.tasks["referrals.tasks.apply_retention"]
    assert app.conf.beat_schedule["referrals-retention"]["task"] == task.name
    with override_settings(RETENTION_DAYS=0):
        result = task.apply().get()
    assert result["erased"] == 4 and result["held_open"] == 2 and result["retention_days"] == 0
    assert erased(cases) == {"completed", "cancelled", "draft_only", "no_referral"}


def test_embedded_mode_runs_retention_and_the_audit_check_in_the_relay_thread(cases, monkeypatch):
    """Without Redis there is no beat: the embedded relay's housekeeping runs the same jobs, for real."""
    from notifications import apps as notification_apps

    # A pass closes its thread's stale connections; here it runs in the test's thread and transaction.
    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)
    assert set(notification_apps.HOUSEKEEPING) == {
        "plumbing-purge-idempotency-keys",
        "audit-verify-chain",
        "audit-checkpoint-when-due",
        "audit-seal-pending",
        "referrals-retention",
        "federation-deliver-outbox",
        "federation-witness-peers",
        "federation-purge",
    }
    with override_settings(RETENTION_DAYS=0):
        notification_apps.relay_once()  # nothing due: nothing erased
        assert erased(cases) == set()
        notification_apps.relay_once(housekeeping=["referrals-retention", "audit-verify-chain"])
    assert erased(cases) == {"completed", "cancelled", "draft_only", "no_referral"}
    assert not AuditEvent.objects.filter(action="audit.verification_failed").exists()


def test_a_failing_housekeeping_job_does_not_stop_the_others(cases, monkeypatch, caplog):
    from notifications import apps as notification_apps

    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)

    def broken():
        raise RuntimeError("simulated")

    monkeypatch.setattr("audit.tasks.verify_audit_chain", broken)
    with override_settings(RETENTION_DAYS=0):
        notification_apps.relay_once(housekeeping=["audit-verify-chain", "referrals-retention"])
    assert erased(cases) == {"completed", "cancelled", "draft_only", "no_referral"}
    assert "audit-verify-chain failed (RuntimeError)" in caplog.text
