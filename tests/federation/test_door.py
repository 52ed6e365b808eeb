"""The door ``/federation/v1/`` in this process: only messages signed by a pinned peer get in (§7.4)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.db import connection

from audit.models import AuditEvent
from federation import protocol, services
from federation.cards import raw_public
from federation.keys import encryption_key, signing_key
from federation.models import Direction, Message, Peer

from .conftest import HERE, PATH, new_remote


@pytest.fixture
def pinned(node, remote):
    services.pin_peer(remote.card)
    return remote


def _refusals():
    return list(AuditEvent.objects.filter(action="federation.refused").order_by("sequence"))


def _verify_answer(response, request_headers, path=PATH):
    headers = {k.lower(): v for k, v in response.headers.items()}
    return protocol.verify_response(
        request=protocol.RequestParts("POST", path, request_headers),
        status=response.status_code,
        headers=headers,
        body=response.content,
        public_key=raw_public(signing_key()),
        responder=HERE,
    )


def test_the_door_is_closed_while_federation_is_off(settings, client, db):
    settings.NODE_URL = ""
    response = client.post(PATH, data=b"{}", content_type="application/json")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
    assert not _refusals()


@pytest.mark.parametrize("path", [PATH, "/federation/v1/", "/federation/v1/anything/else"])
def test_any_path_without_a_node_signature_is_401_and_recorded(node, client, path):
    response = client.post(path, data=b'{"type":"ping","payload":{}}', content_type="application/json")
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/not-authenticated"
    assert client.get(path).status_code == 401
    first = _refusals()[0]
    assert first.detail == {"cause": "unsigned", "path": path} and first.outcome == "denied"
    assert first.institutions == ",IOM,"  # seen by the auditors of the institutions hosted here


def test_a_ping_from_a_pinned_peer_gets_a_signed_answer(pinned, post):
    body, headers = pinned.request({"type": "ping", "referral": None, "payload": {"echo": "hola"}})
    response = post(body, headers)
    assert response.status_code == 200, response.content
    _verify_answer(response, headers)
    payload = response.json()["payload"]
    assert payload["pong"] is True and payload["echo"] == "hola"
    stored = Message.objects.get()
    assert (stored.direction, stored.type, str(stored.message_id)) == (
        Direction.RECEIVED,
        "ping",
        headers["federation-message-id"],
    )
    assert bytes(stored.request_body) == body and stored.request_headers["signature"] == headers["signature"]
    assert bytes(stored.response_body) == response.content
    assert Peer.objects.get().last_contact_at is not None
    assert not _refusals()


def test_a_replay_gets_the_first_answer_and_changes_nothing(pinned, post):
    body, headers = pinned.request({"type": "ping", "payload": {"echo": "once"}})
    first = post(body, headers)
    again = post(body, headers)
    assert again.status_code == first.status_code == 200
    assert again.content == first.content and again["Signature"] == first["Signature"]
    assert Message.objects.count() == 1
    # Sent again later (re-signed, as an outbox would): still the first answer, bound to the same message.
    body2, headers2 = pinned.request(body, message_id=headers["federation-message-id"])
    third = post(body2, headers2)
    assert third.content == first.content
    _verify_answer(third, headers2)


def test_a_known_message_id_with_an_altered_body_is_refused_before_anything(pinned, post):
    body, headers = pinned.request({"type": "ping", "payload": {"echo": "original"}})
    assert post(body, headers).status_code == 200
    altered = body.replace(b"original", b"tampered")
    response = post(altered, headers)
    assert response.status_code == 401
    assert [e.detail["cause"] for e in _refusals()] == ["altered-body"]
    assert _refusals()[0].detail["claimed_node"] == pinned.url
    assert b"tampered" not in json.dumps(_refusals()[0].detail).encode()
    assert Message.objects.count() == 1


def test_the_same_message_id_with_another_signed_body_is_a_conflict(pinned, post):
    body, headers = pinned.request({"type": "ping", "payload": {"echo": "a"}})
    post(body, headers)
    other, other_headers = pinned.request(
        {"type": "ping", "payload": {"echo": "b"}}, message_id=headers["federation-message-id"]
    )
    response = post(other, other_headers)
    assert response.status_code == 409 and response.json()["type"] == "/problems/message-id-reused"
    _verify_answer(response, other_headers)
    assert Message.objects.count() == 1


def test_unknown_node_bad_signature_stale_and_wrong_recipient_are_refused(pinned, post):
    stranger = new_remote("https://stranger.example", ("XX",))
    cases = []
    body, headers = stranger.request({"type": "ping", "payload": {}})
    cases.append((body, headers, "unknown-node"))
    impostor = new_remote(pinned.url)  # the peer's URL, not its key
    body, headers = impostor.request({"type": "ping", "payload": {}})
    cases.append((body, headers, "bad-signature"))
    body, headers = pinned.request({"type": "ping", "payload": {}}, created=int(time.time()) - 301)
    cases.append((body, headers, "stale"))
    body, headers = pinned.request({"type": "ping", "payload": {}}, to="https://third.node.example")
    cases.append((body, headers, "wrong-recipient"))
    for body, headers, _cause in cases:
        assert post(body, headers).status_code == 401
    assert [e.detail["cause"] for e in _refusals()] == [c for _b, _h, c in cases]
    assert _refusals()[0].detail["claimed_node"] == "https://stranger.example"
    assert not Message.objects.exists()


def test_a_sealed_ping_is_stored_encrypted_and_answered_sealed(pinned, post):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: F401

    message_id = protocol.new_message_id()
    secret = json.dumps({"echo": "María Pérez"}).encode()
    sealed = protocol.seal(
        secret, raw_public(encryption_key()), info=protocol.request_info(pinned.url, HERE, message_id)
    )
    body, headers = pinned.request(
        {"type": "ping", "sealed": base64.b64encode(sealed).decode()}, message_id=message_id
    )
    response = post(body, headers)
    assert response.status_code == 200, response.content
    _verify_answer(response, headers)
    answer = response.json()
    assert set(answer) == {"sealed"} and "María".encode() not in response.content
    opened = protocol.open_sealed(
        base64.b64decode(answer["sealed"]),
        pinned.encryption,
        info=protocol.response_info(HERE, pinned.url, message_id),
    )
    assert json.loads(opened)["echo"] == "María Pérez"
    with connection.cursor() as cursor:  # nothing of it in clear in the database
        cursor.execute("SELECT request_body, response_body FROM federation_message")
        for row in cursor.fetchall():
            for value in row:
                assert "María".encode() not in bytes(value) and b"Mar\\u00eda" not in bytes(value)


def test_a_sealed_body_for_another_message_does_not_open(pinned, post):
    sealed = protocol.seal(
        b'{"echo":"x"}',
        raw_public(encryption_key()),
        info=protocol.request_info(pinned.url, HERE, protocol.new_message_id()),
    )
    body, headers = pinned.request({"type": "ping", "sealed": base64.b64encode(sealed).decode()})
    response = post(body, headers)
    assert response.status_code == 400
    _verify_answer(response, headers)
    assert [e.detail["cause"] for e in _refusals()] == ["undecryptable"]


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ({"type": "no-such-type", "payload": {}}, "type"),
        ({"type": "ping", "payload": {}, "extra": 1}, None),
        ({"type": "ping"}, None),
        ({"type": "ping", "payload": {}, "sealed": "AAAA"}, None),
        ({"type": "ping", "payload": {"echo": "x", "name": "y"}}, "name"),
        ({"type": "ping", "payload": {"echo": "x" * 201}}, "echo"),
        ({"type": "ping", "referral": "not-a-uuid", "payload": {}}, "referral"),
        (b"not json", None),
        ([1, 2], None),
    ],
)
def test_a_signed_but_invalid_message_gets_a_signed_400_kept_for_replays(pinned, post, envelope, field):
    body, headers = pinned.request(
        envelope if not isinstance(envelope, list) else json.dumps(envelope).encode()
    )
    response = post(body, headers)
    assert response.status_code == 400 and response.json()["type"] == "/problems/validation-error"
    if field:
        assert field in response.json()["errors"]
    _verify_answer(response, headers)
    assert post(body, headers).content == response.content
    assert Message.objects.get().response_status == 400


def test_a_signed_message_to_another_path_is_404_signed(pinned, post):
    path = "/federation/v1/elsewhere/"
    body, headers = pinned.request({"type": "ping", "payload": {}}, path=path)
    response = post(body, headers, path=path)
    assert response.status_code == 404
    _verify_answer(response, headers, path=path)
    assert not Message.objects.exists()


def test_a_rotated_peer_key_is_accepted_only_after_replace_and_old_evidence_stays_checkable(pinned, post):
    from federation.evidence import verify_line

    body, headers = pinned.request({"type": "ping", "payload": {"echo": "old key"}})
    assert post(body, headers).status_code == 200
    old_card, old_key = pinned.card, Peer.objects.get().signing_key
    rotated = new_remote(pinned.url, pinned.institutions)
    body, headers = rotated.request({"type": "ping", "payload": {}})
    assert post(body, headers).status_code == 401  # not pinned yet
    services.pin_peer(rotated.card, replace=True)
    body, headers = rotated.request({"type": "ping", "payload": {}})
    assert post(body, headers).status_code == 200
    body, headers = pinned.request({"type": "ping", "payload": {}})
    assert post(body, headers).status_code == 401  # the old key is gone
    assert [e.detail["cause"] for e in _refusals()] == ["bad-signature", "bad-signature"]
    first = Message.objects.order_by("created_at", "id").first()
    assert first.peer_signing_key == old_key and Peer.objects.get().previous_cards == [old_card]
    assert verify_line(services.evidence_line(first, HERE), old_card) == {"request": "verified"}


def test_a_body_over_1_mib_is_refused_before_the_door_reads_it(pinned, post):
    body, headers = pinned.request(b"{" + b" " * (1024 * 1024) + b"}")
    response = post(body, headers)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"  # a machine's door: never the web's page
    assert json.loads(response.content)["type"].endswith("/payload-too-large")
    assert not Message.objects.exists()
