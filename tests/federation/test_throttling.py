"""Rate limits of the federation door (``federation.throttling``): per pinned peer after its signature
verified, per client IP for what is refused before (still 401, recorded once per window past the limit); a
peer's 429 with Retry-After, one ``federation.refused`` per
window; the sender's outbox posts a throttled message again later, nothing lost."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import requests
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from audit.models import AuditEvent
from config.env import env_rate
from federation import delivery, protocol, services, transport
from federation.cards import raw_public
from federation.keys import signing_key
from federation.models import Message, Outgoing, Peer
from plumbing import throttling

from .conftest import HERE, PATH
from .test_sending_and_evidence import _answering


@pytest.fixture
def pinned(node, remote):
    services.pin_peer(remote.card)
    return remote


def _refusals():
    return [e.detail for e in AuditEvent.objects.filter(action="federation.refused").order_by("sequence")]


def _ping(remote, echo="hola", message_id=None):
    return remote.request(
        {"type": "ping", "referral": None, "payload": {"echo": echo}}, message_id=message_id
    )


# --- At the door ----------------------------------------------------------------------------------------


def test_requests_refused_before_a_node_is_known_are_limited_per_ip(pinned, post, settings):
    settings.FEDERATION_THROTTLE_UNVERIFIED = "3/min"
    unsigned = [post(b'{"type":"ping","payload":{}}', {}) for _ in range(5)]
    # Always 401, as the contract says of any unsigned request; past the limit no longer recorded one by one.
    assert [r.status_code for r in unsigned] == [401, 401, 401, 401, 401]
    over = unsigned[3]
    assert over["Content-Type"] == "application/problem+json"
    assert over.json()["type"] == "/problems/not-authenticated" and over.json()["status"] == 401
    # Three refusals recorded, then one event for the window, however many more arrive.
    assert [d["cause"] for d in _refusals()] == ["unsigned", "unsigned", "unsigned", "rate-limited"]
    assert _refusals()[-1] == {"cause": "rate-limited", "path": PATH}
    # A pinned peer's signed message from the same address (a proxy in front of both) is not held back.
    body, headers = _ping(pinned)
    assert post(body, headers).status_code == 200


def test_a_peer_over_its_limit_gets_a_signed_429_and_nothing_is_kept(pinned, post, settings):
    settings.FEDERATION_THROTTLE_NODE = "2/min"
    answers = []
    for i in range(4):
        body, headers = _ping(pinned, echo=f"n{i}")
        answers.append((post(body, headers), headers, body))
    assert [r.status_code for r, _h, _b in answers] == [200, 200, 429, 429]
    response, headers, body = answers[2]
    assert response.json()["type"] == "/problems/throttled" and int(response["Retry-After"]) >= 1
    protocol.verify_response(  # signed by this node like its other answers to a known peer
        request=protocol.RequestParts("POST", PATH, headers),
        status=429,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=response.content,
        public_key=raw_public(signing_key()),
        responder=HERE,
    )
    assert Message.objects.count() == 2  # the throttled messages were neither run nor kept
    assert _refusals() == [{"cause": "rate-limited", "path": PATH, "claimed_node": pinned.url}]
    # The next window: the same message again is received, once.
    cache.clear()
    again = post(body, headers)
    assert again.status_code == 200 and again.json()["payload"]["echo"] == "n2"
    assert Message.objects.count() == 3


def test_the_default_limits_let_a_catch_up_of_1000_referrals_at_50_per_second_through(settings):
    limit, period = throttling.parse_rate(settings.FEDERATION_THROTTLE_NODE)
    # 1,000 referrals caught up at 50+/s: a delivery and a state or two each, well within one window.
    assert limit / period >= 150
    windows = [
        throttling.hit("test-node", "peer", settings.FEDERATION_THROTTLE_NODE, now=1000.0)
        for _ in range(3000)
    ]
    assert all(w.allowed for w in windows) and windows[-1].count == 3000
    limit, period = throttling.parse_rate(settings.FEDERATION_THROTTLE_UNVERIFIED)
    assert 10 <= limit <= 1000 and period == 60


def test_an_unreachable_cache_serves_rather_than_refuses(pinned, post, settings, monkeypatch):
    settings.FEDERATION_THROTTLE_NODE = "1/min"

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(throttling, "_count", down)  # Redis (or any cache) not answering
    for i in range(3):
        body, headers = _ping(pinned, echo=f"n{i}")
        assert post(body, headers).status_code == 200


def test_fixed_windows_and_rates(monkeypatch):
    assert throttling.parse_rate("30000/min") == (30000, 60)
    assert throttling.parse_rate("5/s") == (5, 1)
    assert throttling.parse_rate("100/hour") == (100, 3600)
    for bad in ("", "0/min", "x/min", "10/week", "10"):
        with pytest.raises(ValueError):
            throttling.parse_rate(bad)
    first = throttling.hit("test", "a", "2/min", now=120.5)
    assert (first.count, first.retry_after, first.allowed) == (1, 60, True)
    throttling.hit("test", "a", "2/min", now=150.0)
    over = throttling.hit("test", "a", "2/min", now=179.2)
    assert not over.allowed and over.first_refused and over.retry_after == 1
    assert throttling.hit("test", "a", "2/min", now=180.0).count == 1  # a new window
    assert throttling.hit("test", "b", "2/min", now=179.3).count == 1  # another key
    monkeypatch.setenv("FEDERATION_THROTTLE_NODE", "lots")
    with pytest.raises(ImproperlyConfigured):
        env_rate("FEDERATION_THROTTLE_NODE", "30000/min")
    monkeypatch.setenv("FEDERATION_THROTTLE_NODE", "600/s")
    assert env_rate("FEDERATION_THROTTLE_NODE", "30000/min") == "600/s"


# --- At the sender: a 429 is "later", never an answer -------------------------------------------------


def _throttling_then(answering, *, times: int, retry_after: str = "45"):
    calls = []

    def post(url, *, data, headers):
        calls.append(headers["federation-message-id"])
        if len(calls) <= times:
            response = requests.Response()
            response.status_code = 429
            response.raw = io.BytesIO(json.dumps({"type": "/problems/throttled", "status": 429}).encode())
            response.headers.update({"Content-Type": "application/problem+json", "Retry-After": retry_after})
            return response
        return answering(url, data=data, headers=headers)

    post.calls = calls
    return post


def test_the_outbox_posts_a_throttled_message_again_after_retry_after_nothing_lost(
    pinned, remote, monkeypatch
):
    peer = Peer.objects.get()
    row = services.enqueue(peer, "ping", {"echo": "María"}, sealed=True)
    transport_post = _throttling_then(_answering(remote), times=1)
    monkeypatch.setattr(transport, "post", transport_post)
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 1}
    waiting = Outgoing.objects.get(pk=row.pk)
    assert waiting.state == Outgoing.State.WAITING and waiting.last_error == "throttled"
    assert waiting.body is not None and waiting.attempts == 1
    assert waiting.next_attempt_at - waiting.last_attempt_at >= timedelta(seconds=45)  # not the 1–2 s backoff
    assert Peer.objects.get().failures == 0  # throttled is not down
    assert Message.objects.get().response_status is None  # nothing of the 429 kept as an answer
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0}  # not due yet

    Outgoing.objects.update(next_attempt_at=None)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    delivered = Outgoing.objects.get(pk=row.pk)
    assert delivered.state == Outgoing.State.DELIVERED and delivered.response_status == 200
    assert transport_post.calls == [str(row.message_id)] * 2
    assert Message.objects.get().response_status == 200


def test_a_throttled_batch_leaves_each_of_its_messages_waiting_for_retry_after(
    pinned, remote, monkeypatch, settings
):
    from federation import keys

    settings.FEDERATION_BATCH_SIZE = 20
    peer = Peer.objects.get()
    rows = [services.enqueue(peer, "ping", {"echo": str(n)}) for n in range(4)]
    single = _answering(remote)
    throttled = _throttling_then(single, times=1)

    def post(url, *, data, headers):  # the head alone is answered; the batch behind it meets the limit
        if url == keys.batch_url(peer.url):
            return throttled(url, data=data, headers=headers)
        return single(url, data=data, headers=headers)

    monkeypatch.setattr(transport, "post", post)
    delivery.ONE_BY_ONE_UNTIL.clear()
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 3}
    waiting = Outgoing.objects.filter(pk__in=[row.pk for row in rows[1:]])
    assert {row.last_error for row in waiting} == {"throttled"}
    assert all(row.next_attempt_at - row.last_attempt_at >= timedelta(seconds=45) for row in waiting)
    assert Peer.objects.get().failures == 0
    # A batch counts each message towards the limit: for a while the messages go one by one, each counted
    # once, so that a batch larger than the limit is not refused again and again.
    Outgoing.objects.update(next_attempt_at=None)
    urls = []
    monkeypatch.setattr(transport, "post", lambda url, **kw: urls.append(url) or single(url, **kw))
    assert delivery.deliver_outbox() == {"delivered": 3, "failed": 0}
    assert urls and keys.batch_url(peer.url) not in urls
    delivery.ONE_BY_ONE_UNTIL.clear()


def test_a_peer_cannot_park_the_queue_with_a_huge_retry_after(pinned, remote, monkeypatch, settings):
    settings.FEDERATION_RETRY_MAX_SECONDS = 30
    row = services.enqueue(Peer.objects.get(), "ping", {})
    monkeypatch.setattr(transport, "post", _throttling_then(_answering(remote), times=2, retry_after="99999"))
    delivery.deliver_outbox()
    waiting = Outgoing.objects.get(pk=row.pk)
    assert timedelta(seconds=59) <= waiting.next_attempt_at - waiting.last_attempt_at <= timedelta(seconds=60)
    Outgoing.objects.update(next_attempt_at=None)
    monkeypatch.setattr(
        transport, "post", _throttling_then(_answering(remote), times=1, retry_after="Fri, 1 Jan")
    )
    delivery.deliver_outbox()
    waiting = Outgoing.objects.get(pk=row.pk)
    assert waiting.next_attempt_at - waiting.last_attempt_at <= timedelta(seconds=30)  # the own backoff


def test_a_forwarded_action_to_a_throttling_authority_is_peer_unavailable(pinned, remote, monkeypatch):
    monkeypatch.setattr(transport, "post", _throttling_then(_answering(remote), times=1))
    with pytest.raises(services.PeerUnavailable) as caught:
        services.send(Peer.objects.get(), "ping", {"echo": "x"})
    assert caught.value.cause == "throttled" and caught.value.retry_after == 45


def test_a_message_from_the_peer_does_not_cut_short_the_wait_it_asked_for(pinned, remote, post, monkeypatch):
    peer = Peer.objects.get()
    throttled = services.enqueue(peer, "ping", {"echo": "a"})
    monkeypatch.setattr(transport, "post", _throttling_then(_answering(remote), times=1))
    delivery.deliver_outbox()
    down = services.enqueue(peer, "ping", {"echo": "b"}, referral_id="3c1d2e4f-1111-4aaa-8bbb-0123456789ab")
    Outgoing.objects.filter(pk=down.pk).update(
        attempts=1, last_error="ConnectionError", next_attempt_at=throttled.created_at + timedelta(hours=1)
    )
    body, headers = _ping(remote)
    assert post(body, headers).status_code == 200  # the peer is up: a backoff for being down ends
    assert Outgoing.objects.get(pk=down.pk).next_attempt_at is None
    assert Outgoing.objects.get(pk=throttled.pk).next_attempt_at is not None  # the 429's wait stays
