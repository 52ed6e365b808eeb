"""Embedded mode end to end: without REDIS_URL nothing is handed to a broker, and the web process's relay
thread — started as the serving entrypoint starts it (``start_relay_thread``) — delivers the in-app
notification of a sent referral within seconds; its loop does beat's housekeeping on time. Committed data
(``transactional_db``): the thread has its own connection."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections

from notifications import apps as notification_apps
from notifications import relay
from notifications.models import Delivery, Notification, OutboxMessage

pytestmark = [pytest.mark.timeout(60)]

DEADLINE_SECONDS = 10.0


def _notified(user, referral) -> bool:
    close_old_connections()
    return Notification.objects.filter(
        user=user, referral_id=referral.pk, event_type="referral.requested"
    ).exists()


@pytest.fixture
def embedded(settings):
    settings.REDIS_URL = None
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.NOTIFICATIONS_RELAY_INTERVAL = 0.5
    assert not relay.broker_enabled()


@pytest.fixture
def relay_thread(embedded):
    """The thread as the app starts it in embedded mode (``start_relay_thread()``), stopped afterwards."""
    thread, stop = notification_apps.start_relay_thread()
    assert thread.is_alive() and thread.daemon and thread.name == "notifications-relay"
    yield thread
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the relay thread did not stop"


def test_without_the_thread_nothing_is_delivered(
    transactional_db, embedded, iom_actor, dp, dp_caseworker, make_referral
):
    """The control: in embedded mode a send is not delivered in the request; only the relay delivers."""
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    time.sleep(1.0)
    assert not _notified(dp_caseworker, referral)
    assert OutboxMessage.objects.filter(referral=referral).exclude(state=OutboxMessage.State.DONE).exists()


def test_the_relay_thread_delivers_a_sent_referral_within_10_seconds(
    transactional_db, relay_thread, iom_actor, dp, dp_caseworker, make_referral
):
    referral = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    sent = time.monotonic()
    while time.monotonic() - sent < DEADLINE_SECONDS and not _notified(dp_caseworker, referral):
        time.sleep(0.1)
    elapsed = time.monotonic() - sent
    assert _notified(dp_caseworker, referral), f"no in-app notification after {elapsed:.1f} s"
    notification = Notification.objects.get(user=dp_caseworker, referral_id=referral.pk)
    assert notification.read_at is None and notification.data["reference"] == referral.reference
    assert (
        not OutboxMessage.objects.filter(referral=referral).exclude(state=OutboxMessage.State.DONE).exists()
    )
    in_app = Delivery.objects.get(
        outbox__referral=referral, channel=Delivery.Channel.IN_APP, target=str(dp_caseworker.pk)
    )
    assert in_app.state == Delivery.State.SUCCEEDED


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
    # passes every 20 min for 25 h; the first is due at once, hourly jobs every 60 min, retention daily,
    # and the checkpoint check (every 30 s: a checkpoint when activity warrants one), the federation
    # outbox (every 2 s) and the sequencer's backstop (every 5 s: seal what is still queued) at every pass
    hourly = {"plumbing-purge-idempotency-keys", "audit-verify-chain", "federation-witness-peers"}
    due = {"audit-checkpoint-when-due", "federation-deliver-outbox", "audit-seal-pending"}
    daily = {"referrals-retention", "federation-purge"}
    assert calls[:6] == [hourly | daily | due, due, due, hourly | due, due, due]
    assert [i for i, jobs in enumerate(calls) if daily & jobs] == [0, 72]
    assert [i for i, jobs in enumerate(calls) if "audit-verify-chain" in jobs] == list(range(0, 75, 3))
