"""Batches (``POST /federation/v1/batch/``): several messages in one request, each exactly as it would be
posted alone — signed on its own, answered on its own, kept as evidence on its own, idempotent by its id.

At the door (this node, the peer played by the test): every message of a batch gets the answer it would get
alone (a replay its first answer, byte for byte); a refused one (altered, signed by another node) its
unsigned 401 and ``federation.refused`` while the others run; one that fails unexpectedly is answered 500
and loses nothing of the others; a malformed batch is a signed 400, an unsigned one a 401.

At the sender (the outbox, the peer played by the test): waiting messages go in batches after the head,
each settled by its own verified answer (one answered unsigned waits and is retried alone); a peer without
batches (a verified 404) gets them one by one; bodies too large for one request go in two; while a
referral's message is in flight its next one is not claimed.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid

import pytest
import requests
from django.utils import timezone

from audit.models import AuditEvent
from federation import delivery, handlers, protocol, services, transport
from federation.cards import raw_public
from federation.evidence import verify_line
from federation.keys import signing_key
from federation.models import Direction, Message, Outgoing, Peer

from .conftest import HERE, PATH, new_remote, signed_answer
from .test_referral_messages import projection, sealed
from .test_sending_and_evidence import _answering

BATCH = "/federation/v1/batch/"


@pytest.fixture
def paired(node, remote):
    services.pin_peer(remote.card)
    return remote


def _inner(remote, envelope, *, message_id=None):
    body, headers = remote.request(envelope, message_id=message_id)
    return {"headers": headers, "body": base64.b64encode(body).decode()}


def _batch(remote, items):
    return remote.request(json.dumps({"messages": items}).encode(), path=BATCH)


def _answers(response, headers) -> list[dict]:
    """The door's answer to a batch, its signature checked; then each message's answer."""
    assert response.status_code == 200, response.content
    protocol.verify_response(
        request=protocol.RequestParts("POST", BATCH, headers),
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=response.content,
        public_key=raw_public(signing_key()),
        responder=HERE,
    )
    return json.loads(response.content)["answers"]


def _verified(answer: dict, item: dict) -> dict:
    """One message's answer, checked as the answer to that message alone."""
    body = base64.b64decode(answer["body"])
    protocol.verify_response(
        request=protocol.RequestParts("POST", PATH, item["headers"]),
        status=answer["status"],
        headers=answer["headers"],
        body=body,
        public_key=raw_public(signing_key()),
        responder=HERE,
    )
    return json.loads(body)


def test_each_message_of_a_batch_is_answered_and_kept_as_it_would_be_alone(paired, post):
    data = projection()
    envelope, message_id = sealed(paired, "referral.deliver", data)
    items = [
        _inner(paired, {"type": "ping", "referral": None, "payload": {"echo": "uno"}}),
        _inner(paired, envelope, message_id=message_id),
        _inner(paired, {"type": "ping", "referral": None, "payload": {"echo": "x" * 201}}),  # a 400
    ]
    body, headers = _batch(paired, items)
    answers = _answers(post(body, headers, path=BATCH), headers)
    assert [a["status"] for a in answers] == [200, 201, 400]
    assert _verified(answers[0], items[0])["payload"]["echo"] == "uno"
    assert _verified(answers[1], items[1])["payload"]["referral"] == data["referral"]["id"]
    assert _verified(answers[2], items[2])["status"] == 400
    rows = Message.objects.filter(direction=Direction.RECEIVED).order_by("id")
    assert [(r.type, r.request_path, r.response_status) for r in rows] == [
        ("ping", PATH, 200),
        ("referral.deliver", PATH, 201),
        ("ping", PATH, 400),
    ]
    # The evidence of each is the message's own: a third party verifies it with the peer's card alone.
    line = services.evidence_line(rows[1], HERE)
    assert verify_line(line, paired.card) == {"request": "verified"}
    assert AuditEvent.objects.filter(action="referral.delivered").count() == 1

    # The same batch again, and one of its messages alone: their first answers, nothing runs twice.
    body2, headers2 = _batch(paired, items)
    replayed = _answers(post(body2, headers2, path=BATCH), headers2)
    assert replayed == answers
    alone = post(base64.b64decode(items[1]["body"]), items[1]["headers"])
    assert alone.status_code == 201 and alone.content == base64.b64decode(answers[1]["body"])
    assert Message.objects.filter(direction=Direction.RECEIVED).count() == 3
    assert AuditEvent.objects.filter(action="referral.delivered").count() == 1


def test_a_refused_message_in_a_batch_is_refused_alone_and_recorded(paired, post):
    good = _inner(paired, {"type": "ping", "referral": None, "payload": {"echo": "bien"}})
    altered = _inner(paired, {"type": "ping", "referral": None, "payload": {"echo": "original"}})
    altered["body"] = base64.b64encode(
        b'{"type":"ping","referral":null,"payload":{"echo":"cambiado"}}'
    ).decode()
    stranger = new_remote("https://stranger.example", ("UNHCR",))  # not pinned here
    foreign = _inner(stranger, {"type": "ping", "referral": None, "payload": {"echo": "ajeno"}})
    body, headers = _batch(paired, [altered, good, foreign])
    answers = _answers(post(body, headers, path=BATCH), headers)
    assert [a["status"] for a in answers] == [401, 200, 401]
    assert "signature" not in answers[0]["headers"] and "signature" not in answers[2]["headers"]
    assert Message.objects.filter(direction=Direction.RECEIVED).count() == 1
    refused = AuditEvent.objects.filter(action="federation.refused").order_by("sequence")
    assert [(e.detail["cause"], e.detail["path"], e.detail.get("claimed_node")) for e in refused] == [
        ("altered-body", PATH, paired.url),
        ("unknown-node", PATH, "https://stranger.example"),
    ]


def test_a_message_that_fails_unexpectedly_loses_nothing_of_the_others(paired, post, monkeypatch):
    ping = handlers.REGISTRY["ping"]

    def fragile(message):
        if message.payload.get("echo") == "boom":
            raise RuntimeError("a bug in a handler")
        return ping(message)

    monkeypatch.setitem(handlers.REGISTRY, "ping", fragile)
    items = [
        _inner(paired, {"type": "ping", "referral": None, "payload": {"echo": e}}) for e in ("a", "boom", "b")
    ]
    body, headers = _batch(paired, items)
    answers = _answers(post(body, headers, path=BATCH), headers)
    assert [a["status"] for a in answers] == [200, 500, 200]
    assert "signature" not in answers[1]["headers"]  # unsigned: its sender posts it again
    kept = Message.objects.filter(direction=Direction.RECEIVED)
    assert sorted(m.message_id.hex for m in kept) == sorted(
        uuid.UUID(items[i]["headers"]["federation-message-id"]).hex for i in (0, 2)
    )
    # Posted again, it runs (the failure left nothing behind).
    monkeypatch.setitem(handlers.REGISTRY, "ping", ping)
    body, headers = _batch(paired, [items[1]])
    assert [a["status"] for a in _answers(post(body, headers, path=BATCH), headers)] == [200]


def test_a_malformed_batch_is_a_signed_400_and_an_unsigned_one_a_401(paired, post):
    for content in (b"[]", b'{"messages": []}', b'{"messages": [{"headers": {}, "body": "%%"}]}', b"{"):
        body, headers = paired.request(content, path=BATCH)
        response = post(body, headers, path=BATCH)
        assert response.status_code == 400 and "signature" in response.headers
    body, headers = _batch(paired, [_inner(paired, {"type": "ping", "referral": None, "payload": {}})])
    response = post(body, {k: v for k, v in headers.items() if k != "signature"}, path=BATCH)
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="federation.refused", detail__path=BATCH).count() == 1
    assert not Message.objects.exists()


# --- The sender ------------------------------------------------------------------------------------------


@pytest.fixture
def peer(node, remote):
    services.pin_peer(remote.card)
    return Peer.objects.get()


def _batching(remote, *, supported=True, fail=frozenset()):
    """A transport to ``remote`` that takes batches (``supported``) as a node does: each message answered
    by ``_answering`` as if posted alone, but those whose echo is in ``fail`` (answered 500, unsigned)."""
    single = _answering(remote)
    requests_seen = []

    def post(url, *, data, headers):
        if url == remote.url + PATH:
            requests_seen.append(1)
            return single(url, data=data, headers=headers)
        assert url == remote.url + BATCH
        protocol.verify_request(
            method="POST",
            path=BATCH,
            headers=headers,
            body=data,
            key_for={HERE: raw_public(signing_key())}.get,
            recipient=remote.url,
            now=int(time.time()),
        )
        if not supported:
            return signed_answer(remote, headers, 404, b'{"status": 404}', path=BATCH)
        items = json.loads(data)["messages"]
        requests_seen.append(len(items))
        answers = []
        for item in items:
            inner = base64.b64decode(item["body"])
            if json.loads(inner).get("payload", {}).get("echo") in fail:
                answers.append({"status": 500, "headers": {}, "body": base64.b64encode(b"{}").decode()})
                continue
            response = single(remote.url + PATH, data=inner, headers=item["headers"])
            answers.append(
                {
                    "status": response.status_code,
                    "headers": {k.lower(): v for k, v in response.headers.items()},
                    "body": base64.b64encode(response.content).decode(),
                }
            )
        return signed_answer(remote, headers, 200, json.dumps({"answers": answers}).encode(), path=BATCH)

    post.seen = single.seen
    post.requests = requests_seen
    return post


def _queue(peer, n, **kwargs):
    return [services.enqueue(peer, "ping", {"echo": f"m{i}"}, **kwargs) for i in range(n)]


def test_waiting_messages_go_in_batches_each_settled_and_kept_on_its_own(peer, remote, monkeypatch, settings):
    settings.FEDERATION_BATCH_SIZE = 3
    rows = _queue(peer, 6)
    rows.append(services.enqueue(peer, "ping", {"echo": "m6"}, sealed=True))
    transport_ = _batching(remote)
    monkeypatch.setattr(transport, "post", transport_)
    assert delivery.deliver_outbox() == {"delivered": 7, "failed": 0}
    assert transport_.requests == [1, 3, 3]  # the head alone, then batches of three
    assert [e.get("payload", {}).get("echo") for e in transport_.seen] == [f"m{i}" for i in range(6)] + [None]
    assert {(r.state, r.response_status, r.body, r.attempts) for r in Outgoing.objects.all()} == {
        ("delivered", 200, None, 1)
    }
    sent = Message.objects.filter(direction=Direction.SENT).order_by("id")
    assert sorted(str(m.message_id) for m in sent) == sorted(str(r.message_id) for r in rows)
    for message in sent:  # each message's evidence: its own request and its own answer, as signed
        line = services.evidence_line(message, HERE)
        assert verify_line(line, remote.card) == {"response": "verified"}
        assert message.request_path == PATH
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0}


def test_a_message_of_a_batch_without_a_verified_answer_waits_and_goes_again(
    peer, remote, monkeypatch, settings
):
    settings.FEDERATION_BATCH_SIZE = 5
    settings.FEDERATION_RETRY_BASE_SECONDS = 10
    rows = _queue(peer, 4)
    monkeypatch.setattr(transport, "post", _batching(remote, fail={"m2"}))
    assert delivery.deliver_outbox() == {"delivered": 3, "failed": 1}
    states = {r.pk: (r.state, r.last_error, r.attempts) for r in Outgoing.objects.all()}
    assert states[rows[2].pk] == ("waiting", "answer-unsigned", 1)
    assert {states[r.pk] for r in rows if r is not rows[2]} == {("delivered", "", 1)}
    assert Message.objects.get(message_id=rows[2].message_id).response_status is None
    Outgoing.objects.update(next_attempt_at=timezone.now())
    transport_ = _batching(remote)
    monkeypatch.setattr(transport, "post", transport_)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0} and transport_.requests == [1]
    assert Outgoing.objects.get(pk=rows[2].pk).attempts == 2


def test_a_batch_without_a_verified_answer_leaves_every_message_waiting(peer, remote, monkeypatch, settings):
    settings.FEDERATION_BATCH_SIZE = 5
    _queue(peer, 3)
    single = _answering(remote)

    def post(url, *, data, headers):
        if url.endswith(PATH):
            return single(url, data=data, headers=headers)
        response = requests.Response()  # e.g. a proxy's 413: unsigned
        response.status_code, response.raw = 413, io.BytesIO(b"")
        return response

    monkeypatch.setattr(transport, "post", post)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 2}
    waiting = Outgoing.objects.filter(state="waiting")
    assert waiting.count() == 2 and {r.last_error for r in waiting} == {"answer-unsigned"}
    assert Peer.objects.get().failures == 1


def test_a_peer_without_batches_gets_the_messages_one_by_one(peer, remote, monkeypatch, settings):
    settings.FEDERATION_BATCH_SIZE = 5
    delivery.ONE_BY_ONE_UNTIL.clear()
    _queue(peer, 4)
    transport_ = _batching(remote, supported=False)
    monkeypatch.setattr(transport, "post", transport_)
    assert delivery.deliver_outbox() == {"delivered": 4, "failed": 0}
    assert transport_.requests == [1, 1, 1, 1]
    assert peer.pk in delivery.ONE_BY_ONE_UNTIL  # the next passes post one by one: no batch is tried
    _queue(peer, 3)
    batches = []
    monkeypatch.setattr(transport, "post", lambda url, **kw: batches.append(url) or transport_(url, **kw))
    assert delivery.deliver_outbox() == {"delivered": 3, "failed": 0}
    assert all(url.endswith(PATH) for url in batches)
    delivery.ONE_BY_ONE_UNTIL.clear()


def test_bodies_too_large_for_one_request_go_in_two(peer, remote, monkeypatch, settings):
    settings.FEDERATION_BATCH_SIZE = 10
    rows = _queue(peer, 5)
    monkeypatch.setattr(services, "BATCH_MAX_BODY_BYTES", 2 * len(rows[1].body) + 1)
    transport_ = _batching(remote)
    monkeypatch.setattr(transport, "post", transport_)
    assert delivery.deliver_outbox() == {"delivered": 5, "failed": 0}
    assert transport_.requests == [1, 2, 2]


def test_a_referral_with_a_message_in_flight_has_its_next_one_wait(peer):
    r1, r2 = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [
        services.enqueue(peer, "ping", {"echo": "1"}, referral_id=r1),
        services.enqueue(peer, "ping", {"echo": "2"}, referral_id=r2),
        services.enqueue(peer, "ping", {"echo": "3"}, referral_id=r1),  # behind r1's first, in flight
        services.enqueue(peer, "ping", {"echo": "4"}),
    ]
    first = delivery._next_batch(peer.pk, 1)
    assert [r.pk for r in first] == [rows[0].pk]
    following = delivery._next_batch(peer.pk, 10, busy={rows[0].pk})
    assert [r.pk for r in following] == [rows[1].pk, rows[3].pk]


def test_a_pass_that_reaches_its_limit_asks_for_another_at_once(peer, remote, monkeypatch, settings):
    settings.FEDERATION_BATCH_SIZE = 2
    _queue(peer, 4)
    monkeypatch.setattr(transport, "post", _batching(remote))
    asked = []
    monkeypatch.setattr(services, "deliver_soon", lambda peer_id=None: asked.append(peer_id))
    assert delivery.deliver_outbox(limit=3) == {"delivered": 3, "failed": 0}
    assert asked == [None]
    assert delivery.deliver_outbox(limit=3) == {"delivered": 1, "failed": 0}
    assert asked == [None]  # under the limit: the queue is empty, nothing more is asked


def test_each_message_of_a_batch_counts_towards_the_peers_rate_limit(paired, post, settings):
    settings.FEDERATION_THROTTLE_NODE = "5/min"
    pings = [_inner(paired, {"type": "ping", "referral": None, "payload": {"echo": n}}) for n in "wxyz"]
    body, headers = _batch(paired, pings)
    assert [a["status"] for a in _answers(post(body, headers, path=BATCH), headers)] == [200] * 4
    # Four counted: a second batch of two would make six — over the limit, and nothing of it runs.
    more = [_inner(paired, {"type": "ping", "referral": None, "payload": {"echo": n}}) for n in ("a", "b")]
    body, headers = _batch(paired, more)
    throttled = post(body, headers, path=BATCH)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) >= 1
    assert Message.objects.filter(direction=Direction.RECEIVED).count() == 4
    limited = AuditEvent.objects.filter(action="federation.refused", detail__cause="rate-limited")
    assert limited.count() == 1  # the request that crossed the limit is recorded, once
