"""The outbox (``services.enqueue``, ``federation.delivery``): written with the change that causes it,
delivered first in first out per peer, retried with backoff while the peer is down, once per message id."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from federation import delivery, services, transport
from federation.models import Direction, Message, Outgoing, Peer

from .test_sending_and_evidence import _answering


@pytest.fixture
def peer(node, remote):
    services.pin_peer(remote.card)
    return Peer.objects.get()


def _down(calls):
    def post(url, *, data, headers):
        calls.append(headers["federation-message-id"])
        raise requests.ConnectionError("connection refused to 10.0.0.1")

    return post


def _status_line() -> str:
    out = io.StringIO()
    call_command("federation_status", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("https://dp.node.example"))


def test_a_message_commits_and_rolls_back_with_the_change_that_causes_it(peer):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.enqueue(peer, "ping", {"echo": "lost with the change"})
        raise RuntimeError("the business change failed")
    assert not Outgoing.objects.exists()
    with transaction.atomic():
        row = services.enqueue(peer, "ping", {"echo": "María Pérez"}, sealed=True)
    row.refresh_from_db()
    assert row.state == Outgoing.State.WAITING and row.attempts == 0 and row.type == "ping"
    assert "María".encode() not in bytes(row.body) and json.loads(bytes(row.body))["type"] == "ping"
    with pytest.raises(ValueError, match="unknown message type"):
        services.enqueue(peer, "nonsense", {})


def test_a_peer_down_queues_then_everything_arrives_once_in_order(
    peer, remote, monkeypatch, settings, caplog
):
    settings.FEDERATION_RETRY_BASE_SECONDS = 10
    rows = [
        services.enqueue(peer, "ping", {"echo": f"n{i}"}, sealed=i == 1, referral_id=None) for i in range(3)
    ]
    calls = []
    monkeypatch.setattr(transport, "post", _down(calls))
    with caplog.at_level(logging.INFO, logger="federation"):
        assert delivery.deliver_outbox() == {"delivered": 0, "failed": 1}
    assert calls == [str(rows[0].message_id)]  # the head failed: the rest waits behind it
    head = Outgoing.objects.get(pk=rows[0].pk)
    assert head.attempts == 1 and head.last_error == "ConnectionError" and head.leased_until is None
    assert timedelta(seconds=4.9) <= head.next_attempt_at - head.last_attempt_at <= timedelta(seconds=10)
    assert "10.0.0.1" not in caplog.text and "n0" not in caplog.text and "ConnectionError" in caplog.text
    # Not due yet: nothing is posted.
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0} and len(calls) == 1
    line = _status_line()
    assert "waiting 3 (since 20" in line and "last error ConnectionError, next try 20" in line
    assert "failures 1" in line

    answering = _answering(remote)
    monkeypatch.setattr(transport, "post", answering)
    Outgoing.objects.update(next_attempt_at=timezone.now())  # the backoff ran out
    assert delivery.deliver_outbox() == {"delivered": 3, "failed": 0}
    assert [e.get("payload", {}).get("echo") for e in answering.seen] == ["n0", None, "n2"]
    assert set(answering.seen[1]) == {"type", "referral", "sealed"}
    done = list(Outgoing.objects.order_by("id"))
    assert [(r.state, r.response_status, r.body) for r in done] == [("delivered", 200, None)] * 3
    assert done[0].attempts == 2 and done[1].attempts == 1 and done[0].last_error == ""
    sent = Message.objects.filter(direction=Direction.SENT)
    assert sorted(str(m.message_id) for m in sent) == sorted(str(r.message_id) for r in rows)
    assert all(m.response_status == 200 for m in sent)
    # Nothing twice: another pass posts nothing.
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0} and len(answering.seen) == 3
    line = _status_line()
    assert "waiting 0 " in line and "failures 0" in line and "answered with a problem 0" in line


def test_a_retry_posts_the_same_message_id_and_body_re_signed(peer, remote, monkeypatch):
    row = services.enqueue(peer, "ping", {"echo": "again"}, sealed=True)
    bodies = []

    def down(url, *, data, headers):
        bodies.append((headers["federation-message-id"], data, headers["signature-input"]))
        raise requests.Timeout()

    monkeypatch.setattr(transport, "post", down)
    delivery.deliver_outbox()
    Outgoing.objects.update(next_attempt_at=None)
    answering = _answering(remote)

    def up(url, *, data, headers):
        bodies.append((headers["federation-message-id"], data, headers["signature-input"]))
        return answering(url, data=data, headers=headers)

    monkeypatch.setattr(transport, "post", up)
    assert delivery.deliver_outbox()["delivered"] == 1
    assert bodies[0][0] == bodies[1][0] == str(row.message_id) and bodies[0][1] == bodies[1][1]
    assert Outgoing.objects.get().attempts == 2
    # The evidence keeps the signed headers of the attempt that was answered.
    assert Message.objects.get().request_headers["federation-message-id"] == str(row.message_id)


def test_a_message_another_process_holds_is_left_to_it(peer, remote, monkeypatch):
    row = services.enqueue(peer, "ping", {})
    Outgoing.objects.filter(pk=row.pk).update(leased_until=timezone.now() + timedelta(seconds=60))
    answering = _answering(remote)
    monkeypatch.setattr(transport, "post", answering)
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0} and answering.seen == []
    # A crashed process's lease runs out: the message is delivered.
    Outgoing.objects.filter(pk=row.pk).update(leased_until=timezone.now() - timedelta(seconds=1))
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}


def test_a_verified_problem_answer_is_final_and_counted(peer, remote, monkeypatch):
    services.enqueue(peer, "ping", {"echo": "x"})
    monkeypatch.setattr(transport, "post", _answering(remote, status=400))
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert Outgoing.objects.get().response_status == 400
    assert "answered with a problem 1" in _status_line()


def test_an_answer_that_does_not_verify_is_retried(peer, remote, monkeypatch):
    from .conftest import new_remote

    services.enqueue(peer, "ping", {})
    monkeypatch.setattr(transport, "post", _answering(remote, key=new_remote().signing))
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 1}
    assert Outgoing.objects.get().last_error == "answer-bad-signature"


def test_a_verified_message_from_the_peer_makes_what_waits_for_it_due(peer, remote, post, monkeypatch):
    services.enqueue(peer, "ping", {})
    monkeypatch.setattr(transport, "post", _down([]))
    delivery.deliver_outbox()
    assert Outgoing.objects.get().next_attempt_at is not None
    body, headers = remote.request({"type": "ping", "payload": {}})
    assert post(body, headers).status_code == 200
    assert Outgoing.objects.get().next_attempt_at is None


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap(settings):
    settings.FEDERATION_RETRY_BASE_SECONDS = 2
    settings.FEDERATION_RETRY_MAX_SECONDS = 30
    for attempts, full in ((1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (40, 30)):
        delays = [delivery.backoff_seconds(attempts) for _ in range(50)]
        assert all(full * 0.5 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jitter


def test_a_single_node_delivers_nothing(settings, db):
    settings.NODE_URL = ""
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0}


def test_the_periodic_machinery_runs_the_delivery(peer, remote, monkeypatch):
    """Beat's entry and the embedded relay's housekeeping name the same task, and the relay runs it."""
    from config.celery import app
    from notifications import apps as notification_apps

    app.loader.import_default_modules()
    task = app.tasks["federation.tasks.deliver_outbox"]
    assert app.conf.beat_schedule["federation-deliver-outbox"]["task"] == task.name
    assert notification_apps.HOUSEKEEPING["federation-deliver-outbox"][0] < 3  # every relay pass
    services.enqueue(peer, "ping", {})
    answering = _answering(remote)
    monkeypatch.setattr(transport, "post", answering)
    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)
    notification_apps.relay_once(housekeeping=["federation-deliver-outbox"])
    assert len(answering.seen) == 1 and Outgoing.objects.get().state == "delivered"
    assert task.apply(args=[str(peer.pk)]).get() == {"delivered": 0, "failed": 0}


def test_with_a_broker_the_commit_hands_the_peer_over_to_a_worker(
    peer, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    app.loader.import_default_modules()
    handed = []
    monkeypatch.setattr(services, "broker_enabled", lambda: True)
    monkeypatch.setattr(
        app.tasks["federation.tasks.deliver_outbox"],
        "apply_async",
        lambda args, retry: handed.append(args),
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.enqueue(peer, "ping", {"echo": "María"}, sealed=True)
        assert handed == []  # nothing before the commit
    assert len(callbacks) == 1 and handed == [[str(peer.pk)]]  # the peer's id only, never a payload


def test_a_batch_holds_at_most_one_message_per_referral_in_queue_order(peer, settings):
    """Side-by-side delivery (``FEDERATION_DELIVERY_CONCURRENCY``): a referral's messages go one after the
    other; other referrals' messages, and messages about no referral, may travel with them."""
    import uuid

    r1, r2 = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        services.enqueue(peer, "ping", {"echo": "1"}, referral_id=r1),  # r1's first
        services.enqueue(peer, "ping", {"echo": "2"}, referral_id=r1),  # r1's second: waits for the first
        services.enqueue(peer, "ping", {"echo": "3"}, referral_id=r2),
        services.enqueue(peer, "ping", {"echo": "4"}),  # about no referral
        services.enqueue(peer, "ping", {"echo": "5"}, referral_id=r2),  # r2's second
    ]
    batch = delivery._next_batch(peer.pk, 4)
    assert [row.pk for row in batch] == [rows[0].pk, rows[2].pk, rows[3].pk]
    # claimed: another pass (another process) gets nothing of them, and not what waits behind them
    assert delivery._next_batch(peer.pk, 4) == []
    # a head that is not due (the peer was down) holds the whole queue
    Outgoing.objects.update(leased_until=None, next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert delivery._next_batch(peer.pk, 4) == []
    settings.FEDERATION_DELIVERY_CONCURRENCY = 3
    assert delivery.concurrency() == 3
