"""A checkpoint when activity warrants it (issue 21): after 1,000 events, or 5 minutes after the last one
when there were events — polled every 30 s by beat and by the embedded relay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit import tasks
from audit.models import AuditCheckpoint
from audit.recorder import batch, record


def _events(n: int) -> None:
    with batch():
        for _ in range(n):
            record(actor_type="system", action="test.event")


@pytest.mark.django_db
def test_nothing_to_sign_on_an_empty_log():
    assert tasks.checkpoint_when_due.apply().get() == {"ok": True, "checkpoint": None}
    assert not AuditCheckpoint.objects.exists()


@pytest.mark.django_db
def test_the_first_events_are_signed_at_once_then_after_five_minutes(monkeypatch):
    _events(3)
    assert tasks.checkpoint_when_due.apply().get()["checkpoint"] == 3
    assert not tasks.checkpoint_due()  # no event since
    _events(2)
    latest = AuditCheckpoint.objects.get()
    assert not tasks.checkpoint_due(now=latest.at + timedelta(minutes=4, seconds=59))
    assert tasks.checkpoint_due(now=latest.at + timedelta(minutes=5))
    assert tasks.checkpoint_when_due.apply().get()["checkpoint"] is None  # not yet five minutes
    later = latest.at + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(tasks.timezone, "now", lambda: later)  # five minutes on
    assert tasks.checkpoint_when_due.apply().get()["checkpoint"] == 5


@pytest.mark.django_db
def test_a_thousand_events_are_signed_without_waiting():
    _events(1)
    tasks.checkpoint_when_due.apply().get()
    _events(999)
    assert not tasks.checkpoint_due()
    _events(1)
    assert tasks.checkpoint_due()
    assert tasks.checkpoint_when_due.apply().get()["checkpoint"] == 1001


@pytest.mark.django_db
def test_five_quiet_minutes_sign_nothing():
    _events(1)
    tasks.checkpoint_when_due.apply().get()
    latest = AuditCheckpoint.objects.get()
    assert not tasks.checkpoint_due(now=latest.at + timedelta(hours=2))


def test_beat_and_the_embedded_relay_poll_every_30_seconds():
    from config.celery import app
    from notifications import apps as notification_apps

    entry = app.conf.beat_schedule["audit-checkpoint-when-due"]
    assert entry["task"] == tasks.checkpoint_when_due.name and float(entry["schedule"]) == 30.0
    assert notification_apps.HOUSEKEEPING["audit-checkpoint-when-due"] == (30.0, entry["task"])
