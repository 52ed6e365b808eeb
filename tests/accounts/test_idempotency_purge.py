"""Expired Idempotency-Key claims are purged: hourly by beat with a broker, by the web process's relay
thread in embedded mode; live claims (in flight or done) are kept."""

from __future__ import annotations

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
