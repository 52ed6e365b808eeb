"""Sending (``services.send``) to a peer played by the test, and the evidence a third party can check."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from federation import evidence, protocol, services, transport
from federation.cards import raw_public
from federation.keys import encryption_key, signing_key
from federation.models import Direction, Message, Peer

from .conftest import HERE, PATH, new_remote, signed_answer

REFERRAL = str(uuid.uuid4())


@pytest.fixture
def peer(node, remote):
    services.pin_peer(remote.card)
    return Peer.objects.get()


def _answering(remote, *, key=None, status=200):
    """A transport delivering to ``remote``: it verifies the request as a node would, signs an answer."""
    seen = []

    def post(url, *, data, headers):
        assert url == remote.url + PATH
        verified = protocol.verify_request(
            method="POST",
            path=PATH,
            headers=headers,
            body=data,
            key_for={HERE: raw_public(signing_key())}.get,
            recipient=remote.url,
            now=int(time.time()),
        )
        envelope = json.loads(data)
        seen.append(envelope)
        if "sealed" in envelope:
            payload = json.loads(
                protocol.open_sealed(
                    base64.b64decode(envelope["sealed"]),
                    remote.encryption,
                    info=protocol.request_info(HERE, remote.url, verified.message_id),
                )
            )
            sealed = protocol.seal(
                json.dumps({"pong": True, **payload}).encode(),
                raw_public(encryption_key()),
                info=protocol.response_info(remote.url, HERE, verified.message_id),
            )
            answer = json.dumps({"sealed": base64.b64encode(sealed).decode()}).encode()
        else:
            answer = json.dumps({"payload": {"pong": True, **envelope["payload"]}}).encode()
        return signed_answer(remote, headers, status, answer, key=key)

    post.seen = seen
    return post


def test_a_ping_round_trip_is_kept_as_evidence_both_nodes_can_check(peer, remote, monkeypatch):
    monkeypatch.setattr(transport, "post", _answering(remote))
    reply = services.send(peer, "ping", {"echo": "hola"}, referral_id=REFERRAL)
    assert reply.status == 200 and reply.payload == {"pong": True, "echo": "hola"}
    sent = Message.objects.get()
    assert sent.direction == Direction.SENT and sent.response_status == 200
    assert str(sent.referral_id) == REFERRAL and sent.peer_signing_key == peer.signing_key
    peer.refresh_from_db()
    assert peer.last_contact_at is not None and peer.failures == 0

    out = io.StringIO()
    call_command("federation_evidence", REFERRAL, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert (line["direction"], line["node"], line["peer"], line["type"]) == ("sent", HERE, remote.url, "ping")
    own = services.own_card().line()
    # Each institution proves its own part with its own card, and the other's with the other's card alone.
    assert evidence.verify_line(lines[0], remote.card) == {"response": "verified"}
    assert evidence.verify_line(lines[0], own) == {"request": "verified"}


def test_evidence_refuses_what_was_altered_and_holds_without_the_destroyed_bodies(peer, remote, monkeypatch):
    monkeypatch.setattr(transport, "post", _answering(remote))
    services.send(peer, "ping", {"echo": "x"}, referral_id=REFERRAL)
    line = services.evidence_line(Message.objects.get(), HERE)
    own = services.own_card().line()

    altered = json.loads(json.dumps(line))
    altered["request"]["body"] = base64.b64encode(b'{"type":"ping","payload":{"echo":"y"}}').decode()
    with pytest.raises(evidence.EvidenceError, match="request: altered-body"):
        evidence.verify_line(altered, own)
    altered = json.loads(json.dumps(line))
    altered["response"]["status"] = 201
    with pytest.raises(evidence.EvidenceError, match="response: bad-signature"):
        evidence.verify_line(altered, remote.card)
    with pytest.raises(evidence.EvidenceError, match="nothing in this line was signed"):
        evidence.verify_line(line, new_remote("https://third.example").card)
    with pytest.raises(evidence.EvidenceError, match="card"):
        evidence.verify_line(line, remote.card.replace('"DP"', '"XX"'))
    # After a consent withdrawal the bodies go; the signed headers (with the bodies' digests) still verify.
    destroyed = json.loads(json.dumps(line))
    destroyed["request"]["body"] = destroyed["response"]["body"] = None
    assert evidence.verify_line(destroyed, remote.card) == {"response": "verified"}
    assert evidence.verify_line(destroyed, own) == {"request": "verified"}


def test_a_sealed_ping_travels_encrypted_both_ways(peer, remote, monkeypatch):
    answering = _answering(remote)
    monkeypatch.setattr(transport, "post", answering)
    reply = services.send(peer, "ping", {"echo": "María"}, sealed=True)
    assert reply.sealed and reply.payload == {"pong": True, "echo": "María"}
    assert set(answering.seen[0]) == {"type", "referral", "sealed"}
    stored = Message.objects.get()
    assert "María".encode() not in bytes(stored.request_body) + bytes(stored.response_body)


def test_an_unreachable_peer_counts_a_failure(peer, monkeypatch):
    def down(url, *, data, headers):
        raise requests.ConnectionError("connection refused to 10.0.0.1")

    monkeypatch.setattr(transport, "post", down)
    with pytest.raises(services.PeerUnavailable) as failed:
        services.send(peer, "ping", {})
    assert "ConnectionError" in str(failed.value) and "10.0.0.1" not in str(failed.value)
    peer.refresh_from_db()
    assert peer.failures == 1 and peer.last_failure_at is not None and peer.last_contact_at is None
    assert Message.objects.get().response_status is None  # kept as sent, no answer


def test_an_answer_signed_by_another_key_is_not_believed(peer, remote, monkeypatch):
    monkeypatch.setattr(transport, "post", _answering(remote, key=new_remote().signing))
    with pytest.raises(services.PeerUnavailable, match="bad-signature"):
        services.send(peer, "ping", {})
    peer.refresh_from_db()
    assert peer.failures == 1
    assert Message.objects.get().response_status is None


def test_ping_and_evidence_commands_check_their_arguments(node):
    with pytest.raises(CommandError, match="no such peer"):
        call_command("federation_ping", "https://nobody.example", stdout=io.StringIO())
    with pytest.raises(CommandError, match="UUID"):
        call_command("federation_evidence", "nope", stdout=io.StringIO())


def test_an_answer_right_after_a_failure_resets_the_failures_and_a_quiet_second_writes_nothing(
    peer, remote, monkeypatch
):
    """``_contact`` skips the write when the peer row read in this request says it was written within the
    second — but not after a failure counted since (the counter must go back to 0 at the next answer)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(transport, "post", _answering(remote))
    services.send(peer, "ping", {})
    monkeypatch.setattr(
        transport, "post", lambda url, *, data, headers: (_ for _ in ()).throw(requests.Timeout())
    )
    with pytest.raises(services.PeerUnavailable):
        services.send(peer, "ping", {})
    assert Peer.objects.get().failures == 1
    monkeypatch.setattr(transport, "post", _answering(remote))
    services.send(peer, "ping", {})  # the same peer object, within the second of its last contact
    assert Peer.objects.get().failures == 0
    with CaptureQueriesContext(connection) as queries:
        services.send(peer, "ping", {})
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
