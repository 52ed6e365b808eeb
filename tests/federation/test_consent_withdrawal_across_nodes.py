"""Consent withdrawal across nodes (contract §7.4, ``federation.withdrawals``): the sender queues
``referral.withdraw``; the receiver's node crypto-shreds its copy, destroys the evidence bodies and answers a
signed receipt; the sender records ``consent.withdrawal_confirmed`` and destroys its own evidence bodies."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from audit.models import AuditEvent
from federation import delivery, evidence, services, transport
from federation.models import Direction, Message, Outgoing
from referrals import data_rights, permissions, reads
from referrals import services as referral_services
from referrals.models import Case, Note, Referral, Subject

from .conftest import HERE, new_remote
from .copies import (
    Peers,
    envelope,
    federate,
    host_elsewhere,
    institutions_and_staff,
    opened_answer,
    sent_referral,
)

IOM_NODE = "https://iom.node.example"
THIRD_NODE = "https://unhcr.node.example"
WITHDRAW_ID = "3c1d2e4f-1111-4aaa-8bbb-0123456789ab"


# --- At the receiver's node (this process hosts DP; IOM's node sent the referral) -------------------------


@pytest.fixture
def at_dp(settings, db):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP")
    copy = sent_referral(
        staff["IOM"][1],
        staff["DP"][0],
        categories=("identity", "contact"),
        path=[(staff["DP"][1], "accept")],
    )
    referral_services.note_create(actor=staff["DP"][1], referral_id=copy.pk, body="Nota con datos personales")
    iom = new_remote(IOM_NODE, ("IOM",))
    peer = host_elsewhere(iom, "IOM")
    return SimpleNamespace(copy=Referral.objects.get(pk=copy.pk), reader=staff["DP"][1], iom=iom, peer=peer)


def _send(remote, post, kind, payload, *, message_id, referral, sealed=False):
    body, headers = remote.request(
        envelope(remote, kind, payload, message_id=message_id, referral=referral, sealed=sealed),
        message_id=message_id,
    )
    return post(body, headers)


def _withdraw(remote, post, referral, message_id=WITHDRAW_ID):
    return _send(remote, post, "referral.withdraw", {}, message_id=message_id, referral=referral.pk)


def test_a_withdrawal_shreds_the_copy_revokes_the_grants_and_keeps_only_signed_headers(at_dp, post):
    copy = at_dp.copy
    # A message about the referral kept as evidence, with its (sealed) bodies.
    ping = _send(
        at_dp.iom,
        post,
        "ping",
        {"echo": "María"},
        message_id="4c1d2e4f-1111-4aaa-8bbb-0123456789ab",
        referral=copy.pk,
        sealed=True,
    )
    assert ping.status_code == 200
    assert reads.referral_read(actor=at_dp.reader, referral_id=copy.pk).personal

    response = _withdraw(at_dp.iom, post, copy)
    assert response.status_code == 200
    answer = opened_answer(at_dp.iom, response, WITHDRAW_ID)
    assert set(answer) == {"referral", "shredded_at"} and answer["referral"] == str(copy.pk)

    # The person is unreadable: the case's data key is gone, and so are the ciphertexts.
    case = Case.objects.get(pk=copy.case_id)
    assert case.wrapped_data_key is None and case.erased_at is not None
    subject = Subject.objects.get(case=case)
    assert subject.given_name is None and subject.phone is None and subject.document_number_index == ""
    shredded = Referral.objects.get(pk=copy.pk)
    assert shredded.reason is None and shredded.consent.withdrawn_at is not None
    assert Note.objects.get(referral=copy).body is None
    # The receiving institution keeps the metadata only.
    assert shredded.receiver_access_revoked_at is not None
    assert not permissions.receiver_holds_personal(shredded)
    view = reads.referral_read(actor=at_dp.reader, referral_id=copy.pk)
    assert not view.personal and view.subject is None
    event = AuditEvent.objects.get(action="referral.copy_shredded")
    assert event.object_id == str(copy.pk) and event.detail["node"] == IOM_NODE
    assert event.detail["case_erased"] is True and event.detail["notes"] == 1

    # Evidence: the bodies are gone, the signatures still verify with each node's card alone.
    kept = Message.objects.get(direction=Direction.RECEIVED, type="ping")
    assert kept.request_body is None and kept.response_body is None and kept.body_destroyed_at is not None
    line = services.evidence_line(kept, HERE)
    own = services.own_card().line()
    assert evidence.verify_line(line, at_dp.iom.card) == {"request": "verified"}
    assert evidence.verify_line(line, own) == {"response": "verified"}
    # The withdrawal itself keeps its bodies: the signed receipt is the proof of the shredding.
    receipt = Message.objects.get(direction=Direction.RECEIVED, type="referral.withdraw")
    assert receipt.response_body is not None and receipt.body_destroyed_at is None
    line = services.evidence_line(receipt, HERE)
    assert evidence.verify_line(line, own) == {"response": "verified"}
    assert json.loads(bytes(receipt.response_body))["payload"] == answer


def test_a_withdrawal_again_gets_the_same_receipt_and_destroys_nothing_more(at_dp, post):
    first = _withdraw(at_dp.iom, post, at_dp.copy)
    replay = _withdraw(at_dp.iom, post, at_dp.copy)  # the same message id and body
    assert (replay.status_code, replay.content) == (first.status_code, first.content)
    again = _withdraw(at_dp.iom, post, at_dp.copy, message_id="5c1d2e4f-1111-4aaa-8bbb-0123456789ab")
    assert again.status_code == 200
    assert opened_answer(at_dp.iom, again, "5c1d2e4f-1111-4aaa-8bbb-0123456789ab") == opened_answer(
        at_dp.iom, first, WITHDRAW_ID
    )
    assert AuditEvent.objects.filter(action="referral.copy_shredded").count() == 1


def test_the_authoritys_later_state_still_applies_to_a_shredded_copy(at_dp, post):
    """The copy's version stays the authority's: a void after the withdrawal reaches the copy, and its
    reason (a free text) is not stored on the shredded copy."""
    from referrals import federated

    before = Referral.objects.get(pk=at_dp.copy.pk)
    assert _withdraw(at_dp.iom, post, at_dp.copy).status_code == 200
    shredded = Referral.objects.get(pk=at_dp.copy.pk)
    assert shredded.version == before.version and shredded.etag == before.etag
    state = {
        "version": before.version + 1,
        "status": "entered-in-error",
        "status_reason": "ANULACION-SECRETA",
        "outcome": "",
        "sent_at": before.sent_at.isoformat(),
        "response_due_at": before.response_due_at.isoformat(),
        "answered_at": None,
        "receiver_access_revoked_at": shredded.receiver_access_revoked_at.isoformat(),
        "updated_at": before.updated_at.isoformat(),
        "events": [],
        "notes": [],
    }
    federated.copy_state(node=IOM_NODE, referral_id=at_dp.copy.pk, data=state)
    voided = Referral.objects.get(pk=at_dp.copy.pk)
    assert voided.status == "entered-in-error" and voided.version == before.version + 1
    assert voided.status_reason is None


def test_only_the_sending_node_withdraws_its_copy(at_dp, post):
    third = new_remote(THIRD_NODE, ("UNHCR",))
    host_elsewhere(third, "UNHCR")
    response = _withdraw(third, post, at_dp.copy)
    assert response.status_code == 404
    unknown = SimpleNamespace(pk="00000000-0000-4000-8000-000000000000")
    response = _withdraw(at_dp.iom, post, unknown, message_id="6c1d2e4f-1111-4aaa-8bbb-0123456789ab")
    assert response.status_code == 404
    assert response.json()["type"].endswith("not-found")
    # Nothing changed: the receiver still reads the person.
    view = reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk)
    assert view.personal and view.subject["given_name"] == "María José"
    assert not AuditEvent.objects.filter(action="referral.copy_shredded").exists()
    with pytest.raises(data_rights.NotACopy):
        data_rights.copy_shred(referral_id=at_dp.copy.pk, node=THIRD_NODE)


def test_a_case_shared_with_a_live_copy_keeps_only_what_that_copy_was_consented(settings, db, post):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP")
    wide = sent_referral(staff["IOM"][1], staff["DP"][0], categories=("identity", "contact"))
    narrow = sent_referral(staff["IOM"][1], staff["DP"][0], case=wide.case, categories=("identity",))
    iom = new_remote(IOM_NODE, ("IOM",))
    host_elsewhere(iom, "IOM")

    assert _withdraw(iom, post, wide).status_code == 200
    case = Case.objects.get(pk=wide.case_id)
    assert case.wrapped_data_key is not None and case.erased_at is None
    subject = Subject.objects.get(case=case)
    assert subject.given_name == "María José"  # identity: the other copy's consent
    assert subject.phone is None and subject.email is None  # contact: no live copy's consent any more
    view = reads.referral_read(actor=staff["DP"][1], referral_id=narrow.pk)
    assert view.personal and view.subject["family_name"] == "Pérez Rondón"
    assert not reads.referral_read(actor=staff["DP"][1], referral_id=wide.pk).personal


# --- At the sender's node (this process hosts IOM; DP's node holds the copy) ------------------------------


@pytest.fixture
def at_iom(settings, db):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP", "UNHCR")
    referral = sent_referral(staff["IOM"][1], staff["DP"][0])
    dp = new_remote()  # https://dp.node.example, hosting DP
    peer = host_elsewhere(dp, "DP")
    return SimpleNamespace(referral=referral, dp=dp, peer=peer, staff=staff, sender=staff["IOM"][1])


def _withdraw_consent(actor, referral):
    return referral_services.consent_withdraw(
        actor=actor, referral_id=referral.pk, reason="La persona retiró su consentimiento"
    )


def _receipt_answer(shredded_at="2026-12-02T17:00:00+00:00"):
    def answer(remote, kind, referral, payload):
        if kind == "referral.withdraw":
            return 200, {"referral": referral, "shredded_at": shredded_at}
        return 200, {"ok": True}

    return answer


def test_a_withdrawal_for_a_remote_receiver_queues_referral_withdraw_with_ids_only(at_iom):
    _withdraw_consent(at_iom.sender, at_iom.referral)
    queued = Outgoing.objects.get(type="referral.withdraw")
    assert queued.peer == at_iom.peer and queued.referral_id == at_iom.referral.pk and not queued.sealed
    assert json.loads(bytes(queued.body)) == {
        "type": "referral.withdraw",
        "referral": str(at_iom.referral.pk),
        "payload": {},
    }
    # A referral to an institution hosted here: nothing for any peer.
    local = sent_referral(at_iom.sender, at_iom.staff["UNHCR"][0])
    _withdraw_consent(at_iom.sender, local)
    assert Outgoing.objects.filter(type="referral.withdraw").count() == 1


def test_the_receivers_receipt_is_recorded_as_withdrawal_confirmed_and_the_bodies_go(at_iom, monkeypatch):
    referral = at_iom.referral
    peers = Peers(at_iom.dp, answer=_receipt_answer())
    monkeypatch.setattr(transport, "post", peers)
    services.send(at_iom.peer, "ping", {"echo": "María"}, referral_id=str(referral.pk), sealed=True)
    _withdraw_consent(at_iom.sender, referral)

    # The cancellation's state first (the lead's referral.state), then the withdrawal: first in, first out.
    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}
    kinds = [kind for _url, kind, _referral, _payload in peers.seen]
    assert kinds == ["ping", "referral.state", "referral.withdraw"]
    confirmed = AuditEvent.objects.get(action="consent.withdrawal_confirmed")
    assert (confirmed.object_type, confirmed.object_id) == ("referral", str(referral.pk))
    assert confirmed.detail == {"node": at_iom.dp.url, "shredded_at": "2026-12-02T17:00:00+00:00"}
    assert set(confirmed.institutions.strip(",").split(",")) == {"IOM", "DP"}

    ping = Message.objects.get(direction=Direction.SENT, type="ping")
    assert ping.request_body is None and ping.response_body is None and ping.body_destroyed_at is not None
    line = services.evidence_line(ping, HERE)
    assert evidence.verify_line(line, services.own_card().line()) == {"request": "verified"}
    assert evidence.verify_line(line, at_iom.dp.card) == {"response": "verified"}
    withdraw = Message.objects.get(direction=Direction.SENT, type="referral.withdraw")
    assert withdraw.response_body is not None  # the signed receipt stays readable
    assert evidence.verify_line(services.evidence_line(withdraw, HERE), at_iom.dp.card) == {
        "response": "verified"
    }


def test_an_answer_other_than_the_receipt_confirms_nothing(at_iom, monkeypatch):
    def refuse(remote, kind, referral, payload):
        return 404, {"type": "not-found"}

    monkeypatch.setattr(transport, "post", Peers(at_iom.dp, answer=refuse))
    _withdraw_consent(at_iom.sender, at_iom.referral)
    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}
    assert Outgoing.objects.get(type="referral.withdraw").response_status == 404  # final, and counted
    assert not AuditEvent.objects.filter(action="consent.withdrawal_confirmed").exists()

    monkeypatch.setattr(transport, "post", Peers(at_iom.dp, answer=_receipt_answer(shredded_at="yesterday")))
    other = sent_referral(at_iom.sender, at_iom.staff["DP"][0])
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}  # its delivery (else dropped then)
    _withdraw_consent(at_iom.sender, other)
    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}  # its state, withdrawal
    assert not AuditEvent.objects.filter(action="consent.withdrawal_confirmed").exists()


def test_a_failed_confirmation_leaves_the_message_waiting_and_the_next_pass_records_it(at_iom, monkeypatch):
    monkeypatch.setattr(transport, "post", Peers(at_iom.dp, answer=_receipt_answer()))
    _withdraw_consent(at_iom.sender, at_iom.referral)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(data_rights, "withdrawal_confirmed", broken)
        assert delivery.deliver_outbox() == {"delivered": 1, "failed": 1}  # the state, then the withdrawal
    waiting = Outgoing.objects.get(type="referral.withdraw")
    assert waiting.state == Outgoing.State.WAITING and waiting.last_error == "answered-RuntimeError"
    Outgoing.objects.update(next_attempt_at=None)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert AuditEvent.objects.filter(action="consent.withdrawal_confirmed").count() == 1
