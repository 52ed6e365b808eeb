"""Witnessing through the door in this process (contract §7.3/§7.4): the ``checkpoint.*`` messages a peer
sends to witness this node's log, and what a refused (forked) checkpoint of a peer does here. The whole
round trip between two real nodes is in ``test_two_nodes_witnessing``."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core import mail

from accounts.choices import Role
from audit import notes
from audit.checkpoints import public_key_document
from audit.models import AuditCosignature, AuditEvent
from audit.tasks import verify_and_checkpoint
from federation import services, witnessing
from federation.cards import raw_public
from federation.models import Peer
from notifications.models import Notification

from .conftest import new_remote


@pytest.fixture
def pinned(node, remote):
    services.pin_peer(remote.card)
    return remote


def _ask(post, remote, message_type, payload):
    body, headers = remote.request({"type": message_type, "payload": payload})
    response = post(body, headers)
    return response.status_code, json.loads(response.content)


def _witness_vkey(remote) -> str:
    return notes.vkey(witnessing.witness_name(remote.url), notes.COSIGNATURE_V1, raw_public(remote.signing))


def test_a_peer_fetches_the_latest_checkpoint_a_proof_and_cosigns(pinned, post):
    remote = pinned
    status, answer = _ask(post, remote, "checkpoint.latest", {})
    assert status == 200 and answer["payload"] == {"vkey": public_key_document()["vkey"], "checkpoint": None}

    _result, made = verify_and_checkpoint()
    size = made.sequence
    status, answer = _ask(post, remote, "checkpoint.latest", {})
    served = answer["payload"]["checkpoint"]
    assert status == 200 and served["tree_size"] == size and served["cosignatures"] == []
    verifier = notes.parse_vkey(answer["payload"]["vkey"], notes.ED25519)
    checkpoint = notes.open_note(served["note"], verifier)

    status, answer = _ask(post, remote, "checkpoint.consistency", {"from": 0, "to": size})
    assert status == 200 and answer["payload"]["from"] == 0 and answer["payload"]["to"] == size
    bad_requests = ({"from": 0, "to": size + 1}, {"from": "0", "to": size}, {"to": size}, {"to": 1, "x": 1})
    for bad in bad_requests:
        status, answer = _ask(post, remote, "checkpoint.consistency", bad)
        assert status == 400 and answer["type"] == "/problems/validation-error", bad

    signature = base64.b64encode(notes.cosign(checkpoint.body, remote.signing)).decode()
    good = {"tree_size": size, "vkey": _witness_vkey(remote), "signature": signature}
    # Another key than the sending node's own witness key: refused (a node cosigns for itself only).
    other = new_remote("https://other.example")
    forged = base64.b64encode(notes.cosign(checkpoint.body, other.signing)).decode()
    other_cosignature = {**good, "vkey": _witness_vkey(other), "signature": forged}
    status, answer = _ask(post, remote, "checkpoint.cosign", other_cosignature)
    assert status == 400 and "vkey" in answer["errors"]
    status, answer = _ask(post, remote, "checkpoint.cosign", {**good, "signature": forged})
    assert status == 400 and "signature" in answer["errors"]
    status, _answer = _ask(post, remote, "checkpoint.cosign", {**good, "tree_size": size + 7})
    assert status == 404
    assert not AuditCosignature.objects.exists()

    status, answer = _ask(post, remote, "checkpoint.cosign", good)
    assert status == 201 and answer["payload"]["vkey"] == good["vkey"]
    # Stored as the API's endpoint stores one: served with the checkpoint, its line in the note.
    status, answer = _ask(post, remote, "checkpoint.latest", {})
    served = answer["payload"]["checkpoint"]
    assert [c["vkey"] for c in served["cosignatures"]] == [good["vkey"]]
    assert f"\u2014 {witnessing.witness_name(remote.url)} " in served["note"]


def test_a_refused_checkpoint_is_recorded_and_every_supervisor_alerted(
    pinned, django_capture_on_commit_callbacks
):
    from tests.factories import InstitutionFactory, UserFactory

    iom = InstitutionFactory._meta.model.objects.get(code="IOM")
    supervisors = [
        UserFactory(institution=iom, role=Role.SUPERVISOR),
        UserFactory(institution=InstitutionFactory(code="DP2"), role=Role.SUPERVISOR),
    ]
    UserFactory(institution=iom, role=Role.CASEWORKER)
    UserFactory(institution=iom, role=Role.SUPERVISOR, is_active=False)
    peer = Peer.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = witnessing.record_conflict(peer, "fork", 12, 9)
    assert outcome.as_dict() == {
        "peer": peer.url, "result": "conflict", "tree_size": 12, "previous_tree_size": 9, "cause": "fork"
    }  # fmt: skip
    event = AuditEvent.objects.get(action="federation.checkpoint_conflict")
    assert event.detail == {"node": peer.url, "cause": "fork", "tree_size": 12, "previous_tree_size": 9}
    assert event.outcome == "failure" and event.actor_type == "system"
    alerted = Notification.objects.filter(event_type="federation.checkpoint_conflict")
    assert sorted(n.user_id for n in alerted) == sorted(u.pk for u in supervisors)
    # One e-mail per supervisor; codes and facts only.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in supervisors)
    assert all(peer.url in m.body and "@" not in m.body for m in mail.outbox)
    peer.refresh_from_db()
    assert peer.checkpoint_conflict_at is not None and peer.witnessed_tree_size is None


def test_a_conflict_that_keeps_coming_back_is_recorded_every_time_but_alerted_once_a_day(
    pinned, django_capture_on_commit_callbacks
):
    from tests.factories import InstitutionFactory, UserFactory

    iom = InstitutionFactory._meta.model.objects.get(code="IOM")
    supervisor = UserFactory(institution=iom, role=Role.SUPERVISOR)
    peer = Peer.objects.get()

    def refuse(cause, size, previous):
        with django_capture_on_commit_callbacks(execute=True):
            witnessing.record_conflict(peer, cause, size, previous)

    def alerts():
        return [(n.data["cause"], n.data["tree_size"]) for n in Notification.objects.order_by("created_at")]

    refuse("fork", 12, 9)
    refuse("fork", 12, 9)  # the next hourly pass: the same conflict
    refuse("fork", 12, 9)
    assert alerts() == [("fork", 12)] and len(mail.outbox) == 1
    refuse("fork", 13, 9)  # the log moved on, still forked: a new conflict, alerted
    refuse("shrank", 8, 9)  # another cause: alerted
    assert alerts() == [("fork", 12), ("fork", 13), ("shrank", 8)] and len(mail.outbox) == 3
    events = AuditEvent.objects.filter(action="federation.checkpoint_conflict").order_by("sequence")
    assert [(e.detail["cause"], e.detail["tree_size"]) for e in events] == [
        ("fork", 12), ("fork", 12), ("fork", 12), ("fork", 13), ("shrank", 8)
    ]  # fmt: skip
    # A day later the same conflict alerts again.
    Notification.objects.update(created_at=Notification.objects.first().created_at - witnessing.ALERT_EVERY)
    refuse("fork", 12, 9)
    assert alerts()[-1] == ("fork", 12) and len(mail.outbox) == 4
    assert Notification.objects.filter(user=supervisor).count() == 4


def test_each_new_checkpoint_is_announced_to_every_peer_through_the_outbox(pinned):
    from django.db import transaction

    from federation.models import Outgoing

    other = new_remote("https://other.node.example", institutions=("OTHER",))
    services.pin_peer(other.card)
    _result, made = verify_and_checkpoint()
    rows = Outgoing.objects.filter(type="checkpoint.announce").select_related("peer").order_by("peer__url")
    assert [r.peer.url for r in rows] == sorted([pinned.url, other.url])
    for row in rows:
        envelope = json.loads(bytes(row.body))
        announce = {"type": "checkpoint.announce", "referral": None, "payload": {"tree_size": made.sequence}}
        assert envelope == announce
        assert row.sealed is False and row.state == Outgoing.State.WAITING

    # Written with the checkpoint: a checkpoint rolled back announces nothing.
    before = Outgoing.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record_refused(cause="stale", path="/federation/v1/messages/")  # the log grows
        assert verify_and_checkpoint()[1].sequence > made.sequence
        assert Outgoing.objects.count() == before + 2
        raise RuntimeError("rolled back")
    assert Outgoing.objects.count() == before


def test_a_single_node_announces_nothing(db):
    from audit.recorder import record
    from federation.models import Outgoing
    from tests.factories import InstitutionFactory

    InstitutionFactory(code="IOM")
    Peer.objects.create(url="https://dp.node.example", signing_key="x", encryption_key="y", fingerprint="z")
    record(action="federation.peer_added", actor_type="system", institutions=["IOM"], detail={})
    assert verify_and_checkpoint()[1].sequence >= 1
    assert not Outgoing.objects.exists()


def test_an_announcement_is_answered_at_once_and_witnessing_runs_after_its_commit(
    pinned, post, django_capture_on_commit_callbacks, monkeypatch
):
    asked = []
    monkeypatch.setattr(witnessing, "request_pass", asked.append)
    with django_capture_on_commit_callbacks(execute=True):
        status, answer = _ask(post, pinned, "checkpoint.announce", {"tree_size": 5})
    assert status == 202 and answer["payload"] == {"witnessing": True}
    assert asked == [str(Peer.objects.get().pk)]
    for bad in ({}, {"tree_size": "5"}, {"tree_size": -1}, {"tree_size": True}, {"tree_size": 5, "x": 1}):
        with django_capture_on_commit_callbacks(execute=True):
            status, answer = _ask(post, pinned, "checkpoint.announce", bad)
        assert status == 400 and answer["type"] == "/problems/validation-error", bad
    assert len(asked) == 1  # a refused announcement starts nothing


def test_replacing_a_peers_card_keeps_its_pinned_audit_key(pinned):
    """Node keys and the audit log's key are separate (§7.3/§7.4): a new card does not vouch for a new log
    key, so ``--replace`` keeps the pin — a key change is still refused as ``key-changed``."""
    Peer.objects.update(audit_vkey="iom.example/audit+01020304+AQID")
    rotated = new_remote(pinned.url)
    assert services.pin_peer(rotated.card, replace=True)[0] == "replaced"
    assert Peer.objects.get().audit_vkey == "iom.example/audit+01020304+AQID"


def test_an_operator_pins_a_peers_new_audit_key_and_the_reference_checkpoint_stays(pinned):
    """``federation_peer_audit_key`` (a peer that really rotated its log key): the key compared by phone is
    pinned and audited; the last checkpoint cosigned stays the reference the next pass checks against."""
    import secrets

    from django.core.management import CommandError, call_command

    old = notes.vkey("iom.example/audit", notes.ED25519, secrets.token_bytes(32))
    new = notes.vkey("iom.example/audit", notes.ED25519, secrets.token_bytes(32))
    Peer.objects.update(audit_vkey=old, witnessed_tree_size=7, witnessed_root_hash="AAAA")
    call_command("federation_peer_audit_key", pinned.url, new, stdout=(out := io.StringIO()))
    assert out.getvalue().startswith(f"pinned: {pinned.url}  audit key {new}")
    peer = Peer.objects.get()
    assert (peer.audit_vkey, peer.witnessed_tree_size, peer.witnessed_root_hash) == (new, 7, "AAAA")
    event = AuditEvent.objects.get(action="federation.peer_audit_key_pinned")
    assert event.detail == {"node": pinned.url, "previous_vkey": old, "vkey": new}
    assert event.actor_type == "system" and event.actor_label == "manage.py federation_peer_audit_key"

    call_command("federation_peer_audit_key", pinned.url, new, stdout=(out := io.StringIO()))
    assert out.getvalue().startswith("unchanged:")  # the same key again: exit 0, nothing recorded
    assert AuditEvent.objects.filter(action="federation.peer_audit_key_pinned").count() == 1

    flipped = new[:-1] + ("A" if new[-1] != "A" else "B")  # the key no longer matches its key id
    own = notes.vkey(notes.origin(), notes.ED25519, secrets.token_bytes(32))
    witness = _witness_vkey(pinned)  # a witness key (0x04), not a log key (0x01)
    refused = {
        ("https://unknown.example", new): "no peer is pinned",
        (pinned.url, "not a key"): "not an audit log verifier key",
        (pinned.url, flipped): "the key id does not match the key",
        (pinned.url, witness): "not an Ed25519 key of the expected algorithm",
        (pinned.url, own): "this node's own log",
    }
    for (url, vkey), message in refused.items():
        with pytest.raises(CommandError, match=message):
            call_command("federation_peer_audit_key", url, vkey)
    assert Peer.objects.get().audit_vkey == new
    assert AuditEvent.objects.filter(action="federation.peer_audit_key_pinned").count() == 1
