"""Expired Idempotency-Key claims are purged: hourly by beat with a broker, by the web process's relay
thread in embedded mode; live claims (in flight or done) are kept."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import IdempotencyKey
from notifications import apps as notification_apps

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys():
    now = timezone.now()

    def claim(name, expires_at, state=IdempotencyKey.State.DONE):
        return IdempotencyKey.objects.create(
            principal=f"client:{uuid.uuid4()}",
            key=name,
            request_hash="0" * 64,
            state=state,
            status_code=201 if state == IdempotencyKey.State.DONE else None,
            object_type="case",
            object_id=uuid.uuid4(),
            created_at=expires_at - timedelta(hours=24),
            expires_at=expires_at,
        )

    claim("expired-long-ago", now - timedelta(days=3))
    claim("expired-just-now", now - timedelta(seconds=1))
    claim("expired-in-flight", now - timedelta(minutes=1), IdempotencyKey.State.IN_FLIGHT)
    claim("live", now + timedelta(hours=23))
    claim("live-in-flight", now + timedelta(minutes=1), IdempotencyKey.State.IN_FLIGHT)
    return {"live", "live-in-flight"}


def _left() -> set[str]:
    return set(IdempotencyKey.objects.values_list("key", flat=True))


def test_the_task_purges_only_expired_keys(keys):
    from config.celery import app

    app.loader.import_default_modules()
    task = app.tasks["plumbing.tasks.purge_idempotency_keys"]
    assert task.apply().get() == 3
    assert _left() == keys
    assert task.apply().get() == 0  # idempotent
    assert _left() == keys


def test_beat_runs_it_hourly():
    from config.celery import app

    entry = app.conf.beat_schedule["plumbing-purge-idempotency-keys"]
    assert entry == {"task": "plumbing.tasks.purge_idempotency_keys", "schedule": 3600.0}


def test_embedded_mode_purges_in_the_relay_thread_when_housekeeping_is_due(keys, settings, monkeypatch):
    settings.REDIS_URL = None
    # A pass closes its thread's stale connections; here it runs in the test's thread and transaction.
    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)
    notification_apps.relay_once()
    assert len(_left()) == 5
    notification_apps.relay_once(housekeeping=["plumbing-purge-idempotency-keys"])
    assert _left() == keys


def test_the_relay_loop_does_housekeeping_at_start_then_at_each_jobs_period(monkeypatch):
    """Runs the loop itself with a fake clock: every job on the first pass, then the hourly ones once per
    hour and retention once a day."""
    calls = []
    clock = {"now": 1000.0}
    passes = iter(range(75))

    class FakeStop:
        def wait(self, _interval):
            try:
                next(passes)
            except StopIteration:
                return True
            clock["now"] += 1200.0  # each pass 20 minutes apart
            return False

    monkeypatch.setattr(notification_apps, "relay_once", lambda housekeeping: calls.append(set(housekeeping)))
    # In a thread of its own, as in the web process (the loop closes its thread's connections on exit).
    thread = threading.Thread(
        target=notification_apps._relay_loop, args=(0, FakeStop()), kwargs={"clock": lambda: clock["now"]}
    )
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    # passes every 20 min for 25 h; the first is due at once, hourly jobs every 60 min, retention daily
    hourly = {"plumbing-purge-idempotency-keys", "audit-verify-chain"}
    assert calls[:6] == [hourly | {"referrals-retention"}, set(), set(), hourly, set(), set()]
    assert [i for i, jobs in enumerate(calls) if "referrals-retention" in jobs] == [0, 72]
    assert [i for i, jobs in enumerate(calls) if "audit-verify-chain" in jobs] == list(range(0, 75, 3))
