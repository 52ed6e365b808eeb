"""What a forwarded receiver action costs in queries at each node (issue 23: "a forwarded receiver action
≤ 2× a local one"; docs/performance.md, "Referrals across nodes"): a guard against the duplicate work that
was cut — the door reading the peer again, the referral read twice at the authority, the evidence row written
in two steps, the copy's known events and notes in two queries.

The counts include the savepoints, not the audit log's own queries (this test settings' inline sealing,
which a server's sequencer does after the commit)."""

from __future__ import annotations

import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Scope
from federation import transport
from federation.models import Direction, Message, Outgoing, Peer
from referrals import remote
from referrals.models import Referral, ReferralEvent
from referrals.services import note_create

from .conftest import new_remote
from .copies import Peers, envelope, federate, host_elsewhere, institutions_and_staff, sent_referral

BY = {"type": "user", "id": "7", "label": "ana.dp", "request_id": "req-7"}


def _without_audit(queries) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if '"audit_audit' not in query["sql"] and "pg_advisory" not in query["sql"]
    ]


def _accepted(state: dict) -> dict:
    """The authority's answer to ``accept``: the next version, with its event."""
    event = {
        "id": str(uuid.uuid4()),
        "at": state["sent_at"],
        "institution": "DP",
        "action": "accept",
        "from": "requested",
        "to": "accepted",
        "sequence": state["version"],
    }
    return dict(state, version=state["version"] + 1, status="accepted", events=[*state["events"], event])


def test_a_forwarded_accept_at_the_authoritys_door(settings, db, post):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP", "UNHCR")
    referral = sent_referral(staff["IOM"][1], staff["DP"][0], categories=("identity", "contact"))
    warm_up = sent_referral(staff["IOM"][1], staff["DP"][0])
    dp = new_remote("https://dp.node.example", ("DP",))
    host_elsewhere(dp, "DP")

    def accept(referral_id):
        message_id = str(uuid.uuid4())
        payload = {"action": "accept", "by": BY}
        body, headers = dp.request(
            envelope(dp, "referral.action", payload, message_id=message_id, referral=referral_id),
            message_id=message_id,
        )
        return post(body, headers), message_id

    assert accept(warm_up.pk)[0].status_code == 200  # the process's caches (permissions), the peer's contact
    with CaptureQueriesContext(connection) as queries:
        response, message_id = accept(referral.pk)
    assert response.status_code == 200, response.content
    assert Referral.objects.get(pk=referral.pk).status == "accepted"
    assert Outgoing.objects.filter(type="referral.state", referral_id=referral.pk).count() == 1  # the echo
    kept = Message.objects.get(direction=Direction.RECEIVED, message_id=message_id)
    assert kept.response_status == 200 and kept.type == "referral.action"
    sql = _without_audit(queries)
    # The peer is read once (its signature), the referral once (locked, by referral_transition).
    assert sum('FROM "federation_peer"' in q for q in sql) == 1
    assert sum(q.startswith("SELECT") and 'FROM "referrals_referral"' in q for q in sql) == 1
    # The new state (the answer, and the echo queued for the peer): its timeline in one query, no notes read.
    assert sum('"referrals_referralevent"' in q and q.lstrip("(").startswith("SELECT") for q in sql) == 1
    assert not any(q.startswith('SELECT "referrals_note"') for q in sql)
    assert len(sql) <= 17, "\n".join(sql)


def test_a_forwarded_accept_at_the_receivers_node(settings, db, api_as, monkeypatch):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP")
    copy = sent_referral(staff["IOM"][1], staff["DP"][0], categories=("identity", "contact"))
    iom = new_remote("https://iom.node.example", ("IOM",))
    host_elsewhere(iom, "IOM")
    state = remote.state(Referral.objects.get(pk=copy.pk))
    Peer.objects.update(last_contact_at=timezone.now())  # a peer in contact: no write of it within the second
    peers = Peers(iom, answer=lambda peer, kind, referral, payload: (200, _accepted(state)))
    monkeypatch.setattr(transport, "post", peers)
    client = api_as(staff["DP"][0], [Scope.REFERRALS_READ, Scope.REFERRALS_WRITE])
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/api/v1/referrals/{copy.pk}/accept/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted" and response["ETag"] == f'"{state["version"] + 1}"'
    assert [kind for _url, kind, _referral, _payload in peers.seen] == ["referral.action"]
    sent = Message.objects.get(direction=Direction.SENT)
    assert sent.response_status == 200 and sent.request_body and sent.response_body
    sql = _without_audit(queries)
    # The evidence of the message sent: one INSERT, once answered (no SELECT, no UPDATE of it).
    assert [q.split(" ")[0] for q in sql if '"federation_message"' in q] == ["INSERT"]
    # The authority's peer: read once (for the message, and for the read receipt of the answer shown).
    assert sum('FROM "federation_peer"' in q for q in sql) == 1
    assert sum('INSERT INTO "federation_pendingreceipt"' in q for q in sql) == 1
    # The copy's known events and notes: one query.
    assert sum(q.lstrip("(").startswith("SELECT") and '"referrals_referralevent"' in q for q in sql) == 1
    # The copy takes what the authority changed: its texts, unchanged, are not encrypted and written again.
    (update,) = [q for q in sql if q.startswith('UPDATE "referrals_referral"')]
    assert '"status" = ' in update and '"status_reason"' not in update and '"outcome"' not in update
    assert len(sql) <= 16, "\n".join(sql)


def test_the_state_reads_its_timeline_in_one_query_and_notes_only_when_there_are(settings, db):
    """``remote.state``: the events and which notes there are in one query (``UNION ALL``), then the notes
    (their bodies sealed with the case's key) only when there are any; each in its order."""
    staff = institutions_and_staff("IOM", "DP")
    sender = staff["IOM"][1]
    sent = sent_referral(sender, staff["DP"][0])

    def state_of() -> tuple[dict, list[str]]:
        referral = Referral.objects.select_related("case").get(pk=sent.pk)  # as the lifecycle reads it
        with CaptureQueriesContext(connection) as queries:
            data = remote.state(referral)
        return data, _without_audit(queries)

    data, sql = state_of()
    assert len(sql) == 1, sql
    assert [(e["action"], e["to"]) for e in data["events"]] == [("send", "requested")]
    assert data["notes"] == []
    first = note_create(actor=sender, referral_id=sent.pk, body="Primera nota")
    second = note_create(actor=sender, referral_id=sent.pk, body="Segunda nota")
    data, sql = state_of()
    assert len(sql) == 2, sql
    assert [(n["id"], n["institution"], n["body"]) for n in data["notes"]] == [
        (str(first.pk), "IOM", "Primera nota"),
        (str(second.pk), "IOM", "Segunda nota"),
    ]
    expected = list(
        ReferralEvent.objects.filter(referral=sent)
        .exclude(to_status="draft")
        .order_by("at", "sequence")
        .values_list("pk", flat=True)
    )
    assert [e["id"] for e in data["events"]] == [str(pk) for pk in expected]
