"""The referral messages at the door (contract §7.4), in this process: a peer played by the test hosts the
Defensoría; this node hosts IOM.

- ``referral.deliver``: the copy holds exactly the consented subject fields; a projection carrying a field of
  a category not consented is refused whole (400, nothing stored); an unsealed one is refused; a second
  delivery of the same referral changes nothing; a peer delivers only for its own institutions.
- ``referral.state``: taken when newer, ignored when older; a peer updates only the copies it is the
  authority of (404 otherwise).
- ``referral.action``: the authority runs the lifecycle's rules for the peer's institution (200 and the new
  state sealed to the peer, or the lifecycle's 409/412) and queues the new state back; another peer → 404.
- A receiver's action on a copy whose authority cannot be reached → 503 ``peer-unavailable``, nothing changed.
"""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings
from django.utils import timezone

from accounts.actor import actor_for_user
from accounts.choices import Scope
from accounts.models import Institution
from audit.models import AuditEvent
from federation import protocol, services
from federation.evidence import verify_line
from federation.models import Message, Outgoing
from referrals.data_rights import subject_erase
from referrals.models import Referral, Subject
from tests.builders import referral_through_services
from tests.factories import InstitutionFactory, subject_data
from tests.web.conftest import logged_in_client

from .conftest import HERE, new_remote


@pytest.fixture
def paired(node, remote):
    services.pin_peer(remote.card)
    return remote


def sealed(remote, message_type, payload, *, referral=None, message_id=None):
    """A sealed envelope from ``remote`` to this node, and the message id."""
    message_id = message_id or protocol.new_message_id()
    info = protocol.request_info(remote.url, HERE, message_id)
    own = X25519PrivateKey.from_private_bytes(settings.NODE_ENCRYPTION_KEY).public_key()
    ciphertext = protocol.seal(json.dumps(payload).encode(), own.public_bytes_raw(), info=info)
    envelope = {"type": message_type, "referral": referral, "sealed": protocol.b64(ciphertext)}
    return envelope, message_id


def deliver(post, remote, payload, *, clear=False, referral=None):
    if clear:
        envelope, message_id = {"type": "referral.deliver", "referral": referral, "payload": payload}, None
    else:
        envelope, message_id = sealed(remote, "referral.deliver", payload, referral=referral)
    body, headers = remote.request(envelope, message_id=message_id)
    return post(body, headers)


def projection(*, categories=("identity",), subject=None, version=2, status="requested", **referral):
    rid = str(uuid.uuid4())
    now = timezone.now().isoformat()
    return {
        "referral": {
            "id": rid,
            "reference": f"DP-R-2026-{rid[:6]}",
            "from": "DP",
            "to": "IOM",
            "to_office": None,
            "province": "",
            "services": ["legal_assistance"],
            "urgency": "urgent",
            "reason": "Orientación legal",
            "created_at": now,
            **referral,
        },
        "case": {"id": str(uuid.uuid4()), "reference": f"DP-2026-{rid[:6]}"},
        "consent": {
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": now,
            "data_categories": list(categories),
            "details": "",
            "recorded_at": now,
        },
        "subject": subject if subject is not None else {"given_name": "Ana", "family_name": "Pérez"},
        "state": {
            "version": version,
            "status": status,
            "status_reason": "",
            "outcome": "",
            "sent_at": now,
            "response_due_at": now,
            "answered_at": None,
            "receiver_access_revoked_at": None,
            "updated_at": now,
            "events": [
                {
                    "id": str(uuid.uuid4()),
                    "at": now,
                    "institution": "DP",
                    "action": "send",
                    "from": "draft",
                    "to": "requested",
                    "sequence": 1,
                }
            ],
            "notes": [],
        },
    }


def test_a_delivered_projection_becomes_a_copy_with_the_consented_fields_only(paired, post, api_as):
    data = projection(subject={"given_name": "Ana", "family_name": "Pérez", "date_of_birth": "1991-02-03"})
    response = deliver(post, paired, data)
    assert response.status_code == 201, response.content
    copy = Referral.objects.get(pk=data["referral"]["id"])
    assert copy.from_institution.code == "DP" and copy.from_institution.node == paired.url
    assert (
        copy.reference == data["referral"]["reference"] and copy.status == "requested" and copy.version == 2
    )
    subject = Subject.objects.get(case=copy.case)
    assert (subject.given_name, subject.family_name, str(subject.date_of_birth)) == (
        "Ana",
        "Pérez",
        "1991-02-03",
    )
    assert not subject.phone and not subject.document_number
    # IOM's systems see it as a referral received, with the authority's timeline.
    seen = api_as(copy.to_institution).get(f"/api/v1/referrals/{copy.pk}/")
    assert seen.status_code == 200 and seen.json()["subject"]["given_name"] == "Ana"
    events = api_as(copy.to_institution).get(f"/api/v1/referrals/{copy.pk}/events/").json()
    rows = events["results"] if isinstance(events, dict) else events
    assert [e["id"] for e in rows] == [data["state"]["events"][0]["id"]]
    audit = AuditEvent.objects.filter(action="referral.delivered", object_id=str(copy.pk)).get()
    assert audit.detail["node"] == paired.url and "Ana" not in json.dumps(audit.detail)
    # A second delivery of the same referral (another message id) changes nothing.
    again = deliver(post, paired, data)
    assert again.status_code == 200 and Referral.objects.filter(pk=copy.pk).count() == 1


def test_a_field_beyond_consent_refuses_the_whole_delivery(paired, post):
    data = projection(categories=("identity",), subject={"given_name": "Ana", "phone": "+50760000000"})
    response = deliver(post, paired, data)
    assert response.status_code == 400 and "subject.phone" in response.json()["errors"]
    assert not Referral.objects.filter(pk=data["referral"]["id"]).exists()
    assert not Subject.objects.exists()


def test_a_delivery_in_clear_is_refused(paired, post):
    data = projection()
    response = deliver(post, paired, data, clear=True)
    assert response.status_code == 400 and not Referral.objects.exists()


def test_a_peer_delivers_only_for_its_own_institutions(paired, post):
    InstitutionFactory(code="UNHCR", name="UNHCR")  # hosted here, not by the peer
    response = deliver(post, paired, projection(**{"from": "UNHCR"}))
    assert response.status_code == 400 and not Referral.objects.exists()


def _state_message(post, remote, referral_id, state):
    envelope, message_id = sealed(remote, "referral.state", state, referral=referral_id)
    body, headers = remote.request(envelope, message_id=message_id)
    return post(body, headers)


def test_a_newer_state_is_taken_an_older_ignored_and_only_from_the_authority(paired, post, node):
    data = projection()
    assert deliver(post, paired, data).status_code == 201
    rid = data["referral"]["id"]
    newer = dict(data["state"], version=3, status="cancelled", status_reason="Retiró su consentimiento")
    newer["receiver_access_revoked_at"] = timezone.now().isoformat()
    newer["events"] = [
        *data["state"]["events"],
        {
            "id": str(uuid.uuid4()),
            "at": timezone.now().isoformat(),
            "institution": "DP",
            "action": "cancel",
            "from": "requested",
            "to": "cancelled",
            "sequence": 2,
        },
    ]
    assert _state_message(post, paired, rid, newer).status_code == 200
    copy = Referral.objects.get(pk=rid)
    assert (copy.status, copy.version, copy.events.count()) == ("cancelled", 3, 2)
    assert copy.status_reason == "Retiró su consentimiento"  # a text the authority changed is taken
    assert copy.receiver_access_revoked_at is not None
    assert AuditEvent.objects.filter(action="referral.transitioned", object_id=rid).exists()
    older = dict(data["state"], version=2, status="requested")
    assert _state_message(post, paired, rid, older).status_code == 200
    assert Referral.objects.get(pk=rid).status == "cancelled"
    # Another peer may not touch this copy.
    other = new_remote("https://unhcr.node.example", institutions=("UNHCR",))
    services.pin_peer(other.card)
    assert _state_message(post, other, rid, dict(newer, version=9)).status_code == 404
    assert Referral.objects.get(pk=rid).version == 3


@pytest.fixture
def sent_to_peer(paired, make_user):
    """A referral of this node (IOM) sent to the peer's Defensoría: this node is its authority."""
    iom = Institution.objects.get(code="IOM")
    dp = Institution.objects.get(code="DP")
    sender = actor_for_user(make_user(iom))
    referral = referral_through_services(
        sender=sender, to=dp, path=[(sender, "send")], subject=subject_data()
    )
    return referral


def _action(post, remote, referral_id, payload):
    envelope, message_id = sealed(remote, "referral.action", payload, referral=referral_id)
    body, headers = remote.request(envelope, message_id=message_id)
    return post(body, headers), message_id


def test_the_authority_decides_a_forwarded_action_and_queues_the_new_state(sent_to_peer, paired, post):
    rid = str(sent_to_peer.pk)
    by = {"type": "user", "id": "42", "label": "maria.dp", "request_id": "req-1"}
    response, message_id = _action(post, paired, rid, {"action": "accept", "if_match": '"2"', "by": by})
    assert response.status_code == 200, response.content
    opened = json.loads(
        protocol.open_sealed(
            protocol.unb64(response.json()["sealed"]),
            paired.encryption,
            info=protocol.response_info(HERE, paired.url, message_id),
        )
    )
    assert opened["status"] == "accepted" and opened["version"] == 3
    assert Referral.objects.get(pk=rid).status == "accepted"
    event = AuditEvent.objects.filter(action="referral.transitioned", object_id=rid).order_by("-at").first()
    assert (event.actor_type, event.actor_id, event.actor_institution) == ("user", "42", "DP")
    assert event.request_id == "req-1" and paired.url in event.actor_label
    assert Outgoing.objects.filter(type="referral.state", referral_id=rid).exists()
    # The lifecycle's own answers: a stale If-Match (412), an action of the wrong status (409).
    stale, _ = _action(post, paired, rid, {"action": "start", "if_match": '"2"', "by": by})
    assert stale.status_code == 412
    wrong, _ = _action(post, paired, rid, {"action": "accept", "by": by})
    assert wrong.status_code == 409 and wrong.json()["type"].endswith("invalid-transition")


def test_another_peer_cannot_act_on_a_referral_sent_elsewhere(sent_to_peer, paired, post):
    other = new_remote("https://unhcr.node.example", institutions=("UNHCR",))
    services.pin_peer(other.card)
    envelope, message_id = sealed(
        other, "referral.action", {"action": "accept"}, referral=str(sent_to_peer.pk)
    )
    body, headers = other.request(envelope, message_id=message_id)
    response = post(body, headers)
    assert response.status_code == 404
    assert Referral.objects.get(pk=sent_to_peer.pk).status == "requested"


def test_an_action_on_a_copy_whose_authority_is_down_is_503_and_changes_nothing(paired, post, api_as):
    data = projection()
    assert deliver(post, paired, data).status_code == 201
    copy = Referral.objects.get(pk=data["referral"]["id"])
    client = api_as(copy.to_institution, [Scope.REFERRALS_READ, Scope.REFERRALS_WRITE])
    response = client.post(f"/api/v1/referrals/{copy.pk}/accept/", {}, format="json", HTTP_IF_MATCH='"2"')
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("peer-unavailable")
    copy.refresh_from_db()
    assert (copy.status, copy.version) == ("requested", 2)


def test_the_web_says_the_authority_cannot_be_reached_and_changes_nothing(paired, post, make_user):
    data = projection()
    assert deliver(post, paired, data).status_code == 201
    copy = Referral.objects.get(pk=data["referral"]["id"])
    browser = logged_in_client(make_user(copy.to_institution))
    response = browser.post(f"/referrals/{copy.pk}/actions/accept/", {}, follow=True)
    assert response.status_code == 200
    assert "No se puede contactar ahora con el sistema de la institución" in response.content.decode()
    copy.refresh_from_db()
    assert (copy.status, copy.version) == ("requested", 2)


def test_erasing_the_person_destroys_the_bodies_of_the_messages_about_them(paired, post):
    data = projection()
    assert deliver(post, paired, data, referral=data["referral"]["id"]).status_code == 201
    copy = Referral.objects.get(pk=data["referral"]["id"])
    kept = Message.objects.get(direction="received", type="referral.deliver", referral_id=copy.pk)
    assert kept.request_body is not None
    subject_erase(case=copy.case)
    kept.refresh_from_db()
    assert kept.request_body is None and kept.response_body is None and kept.body_destroyed_at is not None
    # what remains still proves what crossed: the peer's signature over the body's digest
    line = services.evidence_line(kept, HERE)
    assert verify_line(line, paired.card)["request"] == "verified"


def test_a_repeated_state_adds_its_events_and_notes_once_each_by_kind(paired, post):
    """``apply_state`` finds what the copy has of a state's events and notes in one query, by kind: a note
    whose id is also an event's is still a note the copy lacks."""
    data = projection()
    assert deliver(post, paired, data).status_code == 201
    rid = data["referral"]["id"]
    event_id = data["state"]["events"][0]["id"]
    now = timezone.now().isoformat()
    newer = dict(data["state"], version=3)
    newer["notes"] = [
        {"id": str(uuid.uuid4()), "at": now, "institution": "DP", "body": "Llamar por la tarde"},
        {"id": event_id, "at": now, "institution": "DP", "body": "Nota con el id de un evento"},
    ]
    for _ in range(2):  # the same state again changes nothing
        assert _state_message(post, paired, rid, newer).status_code == 200
        copy = Referral.objects.get(pk=rid)
        assert (copy.version, copy.events.count(), copy.notes.count()) == (3, 1, 2)
    assert sorted(note.body for note in copy.notes.all()) == [
        "Llamar por la tarde",
        "Nota con el id de un evento",
    ]


def test_the_authority_refuses_a_note_once_the_receivers_access_is_revoked(sent_to_peer, paired, post):
    """The authority's side of a refused note: the sender cancelled (the receiver's access revoked there)
    before the note written on the copy arrived — a 4xx problem, final (a repeat gets the same answer)."""
    from referrals.services import referral_transition

    sender = actor_for_user(Referral.objects.get(pk=sent_to_peer.pk).created_by)
    referral_transition(actor=sender, referral_id=sent_to_peer.pk, action="cancel", reason="Duplicado")
    payload = {"id": str(uuid.uuid4()), "body": "Cita el lunes", "by": {"type": "user", "id": "7"}}
    envelope, message_id = sealed(paired, "referral.note", payload, referral=str(sent_to_peer.pk))
    body, headers = paired.request(envelope, message_id=message_id)
    response = post(body, headers)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/permission-denied")
    assert not sent_to_peer.notes.exists()
    again = post(body, headers)  # the same message again: its first answer
    assert (again.status_code, again.content) == (response.status_code, response.content)


def test_a_note_the_authority_refuses_is_marked_on_the_copy_and_its_author_told(
    paired, post, make_user, api_as, monkeypatch
):
    """The receiver's side: the note written on the copy stays there, marked refused with the authority's
    problem slug (API and web), audited ``note.refused``, its author notified in the app — once."""
    from federation import delivery, transport
    from notifications.models import Notification
    from referrals.services import note_create

    from .conftest import signed_answer

    data = projection()
    assert deliver(post, paired, data).status_code == 201
    copy = Referral.objects.get(pk=data["referral"]["id"])
    author = make_user(copy.to_institution)
    note = note_create(actor=actor_for_user(author), referral_id=copy.pk, body="Cita el lunes a las 9")
    row = Outgoing.objects.get(type="referral.note")
    assert (row.object_id, row.referral_id) == (note.pk, copy.pk)
    problem = {
        "type": "/problems/permission-denied",
        "title": "Forbidden",
        "status": 403,
        "detail": "Your institution no longer has access to this referral.",
    }
    answered = []

    def authority(url, *, data, headers):
        answered.append(url)
        return signed_answer(paired, headers, 403, json.dumps(problem).encode())

    monkeypatch.setattr(transport, "post", authority)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert len(answered) == 1
    note.refresh_from_db()
    assert note.refused_reason == "permission-denied" and note.refused_at is not None
    event = AuditEvent.objects.get(action="note.refused")
    assert event.detail == {"referral_id": str(copy.pk), "node": paired.url, "problem": "permission-denied"}
    assert (event.object_id, event.actor_institution) == (str(note.pk), "DP")
    told = Notification.objects.get(event_type="referral.note_refused")
    assert told.user_id == author.pk and told.data["note_id"] == str(note.pk)
    assert "Cita" not in json.dumps(told.data) + json.dumps(event.detail)  # no free text

    notes = api_as(copy.to_institution, [Scope.REFERRALS_READ]).get(f"/api/v1/referrals/{copy.pk}/notes/")
    assert notes.status_code == 200
    shown = notes.json()["results"][0]
    assert shown["body"] == "Cita el lunes a las 9"
    assert shown["refused"]["reason"] == "permission-denied" and shown["refused"]["at"].endswith("Z")
    page = logged_in_client(author).get(f"/referrals/{copy.pk}/").content.decode()
    assert "No aceptada por la institución que envió la remisión" in page

    # The same refusal again (an answer lost, the message posted twice): nothing more.
    from referrals import federated

    assert federated.note_refused(node=paired.url, referral_id=copy.pk, note_id=note.pk, reason="x") is None
    assert AuditEvent.objects.filter(action="note.refused").count() == 1
    assert Notification.objects.filter(event_type="referral.note_refused").count() == 1


def test_an_accepted_note_is_not_marked(paired, post, make_user, monkeypatch):
    from federation import delivery, transport
    from referrals.services import note_create

    from .conftest import signed_answer

    data = projection()
    assert deliver(post, paired, data).status_code == 201
    copy = Referral.objects.get(pk=data["referral"]["id"])
    note = note_create(actor=actor_for_user(make_user(copy.to_institution)), referral_id=copy.pk, body="Hola")
    answer = json.dumps({"payload": {"note": str(note.pk)}}).encode()
    monkeypatch.setattr(
        transport, "post", lambda url, *, data, headers: signed_answer(paired, headers, 201, answer)
    )
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    note.refresh_from_db()
    assert note.refused_at is None and not AuditEvent.objects.filter(action="note.refused").exists()
