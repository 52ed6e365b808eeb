"""Read receipts (contract §7.4, ``federation.receipts``): a read of personal data about a referral copy at
the receiver's node is kept as a pending receipt, flushed into one sealed ``referral.reads`` message per peer
per outbox pass (≤ 500 receipts), and recorded at the sender's node in its audit log with the reader as
actor."""

from __future__ import annotations

import dataclasses
import datetime
import json
from types import SimpleNamespace

import pytest

from accounts.actor import actor_for_api_client
from audit.models import AuditEvent
from federation import delivery, transport
from federation.models import Direction, Message, Outgoing, PendingReceipt
from federation.receipts import BATCH
from referrals import reads
from referrals.models import Referral
from tests.factories import api_client_row

from .conftest import new_remote
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
ELSEWHERE = SimpleNamespace(pk="6f1c2d3e-0000-4000-8000-000000000001")  # a referral id, in a malformed batch


# --- At the receiver's node (this process hosts DP; IOM's node sent the referral) -------------------------


@pytest.fixture
def at_dp(settings, db):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP", "UNHCR")
    copy = sent_referral(staff["IOM"][1], staff["DP"][0])
    local = sent_referral(staff["UNHCR"][1], staff["DP"][0])  # from an institution hosted here
    iom = new_remote(IOM_NODE, ("IOM",))
    peer = host_elsewhere(iom, "IOM")
    reader = dataclasses.replace(staff["DP"][1], request_id="req-dp-1")
    return SimpleNamespace(
        copy=Referral.objects.get(pk=copy.pk), local=local, reader=reader, peer=peer, iom=iom, staff=staff
    )


def _receipts():
    return list(PendingReceipt.objects.order_by("id"))


def test_every_read_of_a_copys_personal_data_queues_a_receipt_of_the_reader_only(at_dp):
    view = reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk, detail={"page": "detail"})
    assert view.personal and view.subject["given_name"] == "María José"
    reads.notes_read(actor=at_dp.reader, referral_id=at_dp.copy.pk)
    listed = Referral.objects.filter(pk=at_dp.copy.pk).select_related("case__subject", "consent")
    rows = reads.referral_rows_read(at_dp.reader, listed, list_name="home.team_queue")
    assert rows[0].person is not None

    receipts = _receipts()
    assert [r.action for r in receipts] == ["referral.viewed", "note.viewed", "referral.list_viewed"]
    user = at_dp.reader.user
    for receipt in receipts:
        assert receipt.peer == at_dp.peer and receipt.referral_id == at_dp.copy.pk
        assert (receipt.actor_type, receipt.actor_id, receipt.actor_label) == ("user", str(user.pk), "dp.cw")
        assert (receipt.actor_institution, receipt.request_id) == ("DP", "req-dp-1")
        assert receipt.read_at is not None
    assert [r.detail for r in receipts] == [{"page": "detail"}, {"count": 0}, {"list": "home.team_queue"}]
    stored = json.dumps(list(PendingReceipt.objects.values()), default=str)
    assert "María" not in stored and "Pérez" not in stored


def test_no_receipt_for_a_local_referral_a_metadata_read_or_a_single_node(at_dp, settings):
    reads.referral_read(actor=at_dp.reader, referral_id=at_dp.local.pk)  # sent by UNHCR, hosted here
    client, _token = api_client_row(at_dp.staff["DP"][0], ["referrals:write"], name="write-only")
    view = reads.referral_read(actor=actor_for_api_client(client), referral_id=at_dp.copy.pk)
    assert not view.personal  # metadata only: no read of personal data to report
    assert _receipts() == []

    settings.NODE_URL = ""
    assert reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk).personal
    assert _receipts() == []


def test_a_receipt_commits_and_rolls_back_with_its_read(at_dp):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk)
        raise RuntimeError("the request failed")
    assert _receipts() == []


def test_each_pass_sends_one_sealed_message_of_at_most_500_receipts_per_peer(at_dp, monkeypatch):
    third = new_remote(THIRD_NODE, ("OTHER",))
    third_peer = host_elsewhere(third, "OTHER")
    start = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)
    rows = [
        PendingReceipt(
            peer=at_dp.peer,
            referral_id=at_dp.copy.pk,
            action="referral.viewed",
            actor_type="user",
            actor_id=str(n),
            actor_label=f"dp.user{n}",
            actor_institution="DP",
            request_id=f"req-{n}",
            detail={"page": "detail"},
            read_at=start + datetime.timedelta(seconds=n),
        )
        for n in range(BATCH + 1)
    ]
    rows += [
        PendingReceipt(
            peer=third_peer,
            referral_id=at_dp.copy.pk,
            action="note.viewed",
            actor_type="api_client",
            actor_id="7",
            actor_label="api:dp-system",
            actor_institution="DP",
            request_id="",
            detail={"count": 2},
            read_at=start,
        )
        for _ in range(2)
    ]
    PendingReceipt.objects.bulk_create(rows)
    peers = Peers(at_dp.iom, third)
    monkeypatch.setattr(transport, "post", peers)

    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}
    assert sorted((url, kind, referral) for url, kind, referral, _ in peers.seen) == [
        (IOM_NODE, "referral.reads", None),
        (THIRD_NODE, "referral.reads", None),
    ]
    batches = {url: payload["receipts"] for url, _kind, _referral, payload in peers.seen}
    first = batches[IOM_NODE]
    assert len(first) == BATCH and [r["actor_id"] for r in first] == [str(n) for n in range(BATCH)]
    assert first[0] == {
        "referral": str(at_dp.copy.pk),
        "action": "referral.viewed",
        "actor_type": "user",
        "actor_id": "0",
        "actor_label": "dp.user0",
        "actor_institution": "DP",
        "request_id": "req-0",
        "read_at": "2026-12-02T12:00:00+00:00",
        "detail": {"page": "detail"},
    }
    assert len(batches[THIRD_NODE]) == 2
    # Sealed: the outbox's evidence holds ciphertext, not the readers.
    sent = Message.objects.filter(direction=Direction.SENT, type="referral.reads")
    assert sent.count() == 2 and all(b"dp.user0" not in bytes(m.request_body) for m in sent)
    assert all("sealed" in json.loads(bytes(m.request_body)) for m in sent)
    assert [r.actor_id for r in _receipts()] == [str(BATCH)]  # the newest waits for the next pass

    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert [r["actor_id"] for r in peers.seen[2][3]["receipts"]] == [str(BATCH)]
    assert _receipts() == []
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0} and len(peers.seen) == 3


def test_receipts_wait_in_the_outbox_while_the_sender_is_down(at_dp, monkeypatch):
    import requests

    reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk)

    def down(url, *, data, headers):
        raise requests.ConnectionError("down")

    monkeypatch.setattr(transport, "post", down)
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 1}
    assert _receipts() == []  # moved into the outbox, where nothing is lost
    waiting = Outgoing.objects.get(type="referral.reads")
    assert waiting.state == Outgoing.State.WAITING and waiting.sealed


# --- At the sender's node (this process hosts IOM; DP's node reports the reads) ---------------------------


@pytest.fixture
def at_iom(settings, db):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP", "UNHCR")
    referral = sent_referral(staff["IOM"][1], staff["DP"][0])
    dp = new_remote()  # https://dp.node.example, hosting DP
    peer = host_elsewhere(dp, "DP")
    return SimpleNamespace(referral=referral, dp=dp, peer=peer, staff=staff)


def _receipt(referral, **overrides) -> dict:
    receipt = {
        "referral": str(referral.pk),
        "action": "referral.viewed",
        "actor_type": "user",
        "actor_id": "42",
        "actor_label": "dp.cw",
        "actor_institution": "DP",
        "request_id": "req-dp-1",
        "read_at": "2026-12-02T12:00:00+00:00",
        "detail": {"page": "detail"},
    }
    receipt.update(overrides)
    return receipt


def _report(remote, post, receipts, message_id="1b7e9a52-5d1f-4c39-9d43-6a0f38a1b2c3"):
    body, headers = remote.request(
        envelope(remote, "referral.reads", {"receipts": receipts}, message_id=message_id),
        message_id=message_id,
    )
    response = post(body, headers)
    return response, opened_answer(remote, response, message_id)


def _remote_reads():
    return AuditEvent.objects.filter(detail__has_key="node", action__in=["referral.viewed", "note.viewed"])


def test_reported_reads_are_recorded_with_the_reader_as_actor_and_seen_by_the_senders_auditors(
    at_iom, post, api_as
):
    referral = at_iom.referral
    receipts = [
        _receipt(referral),
        _receipt(referral, action="note.viewed", detail={"count": 3}, request_id="req-dp-2"),
    ]
    response, answer = _report(at_iom.dp, post, receipts)
    assert response.status_code == 200
    assert answer["recorded"] == 2 and answer["skipped"] == []

    viewed = AuditEvent.objects.get(action="referral.viewed", detail__node=at_iom.dp.url)
    # The reader's label as for every act of a remote institution's user here (remote.node_actor).
    assert (viewed.actor_type, viewed.actor_id) == ("user", "42")
    assert viewed.actor_label == "dp.cw @ https://dp.node.example"
    assert (viewed.actor_institution, viewed.request_id) == ("DP", "req-dp-1")
    assert (viewed.object_type, viewed.object_id, viewed.case_id) == (
        "referral",
        str(referral.pk),
        str(referral.case_id),
    )
    assert viewed.detail == {"page": "detail", "node": at_iom.dp.url, "read_at": "2026-12-02T12:00:00+00:00"}
    assert set(viewed.institutions.strip(",").split(",")) == {"IOM", "DP"}

    # IOM's auditors see them through the partner API, as they would on one node.
    api = api_as(at_iom.staff["IOM"][0], ["audit:read"])
    listed = api.get("/api/v1/audit/events/", {"object_id": str(referral.pk), "actor_institution": "DP"})
    assert listed.status_code == 200
    events = {e["action"]: e for e in listed.json()["results"]}
    assert set(events) == {"referral.viewed", "note.viewed"}
    assert events["referral.viewed"]["actor"] == {"type": "user", "id": "42", "institution": "DP"}
    assert events["note.viewed"]["request_id"] == "req-dp-2"
    assert events["note.viewed"]["detail"]["node"] == at_iom.dp.url
    assert events["note.viewed"]["detail"]["count"] == 3


def test_receipts_about_a_referral_not_sent_to_that_node_are_skipped_not_recorded(at_iom, post):
    referral = at_iom.referral
    third = new_remote(THIRD_NODE, ("UNHCR",))
    host_elsewhere(third, "UNHCR")
    local = sent_referral(at_iom.staff["IOM"][1], at_iom.staff["UNHCR"][0])
    # Another node reporting reads of IOM → DP: refused whatever it claims.
    claimed = [_receipt(referral), _receipt(referral, actor_institution="UNHCR")]
    response, answer = _report(third, post, claimed)
    assert response.status_code == 200 and answer["recorded"] == 0
    assert answer["skipped"] == [
        {"index": 0, "cause": "not-sent-to-node"},
        {"index": 1, "cause": "not-sent-to-node"},
    ]
    # DP's node: a referral that does not exist, one sent elsewhere, a reader of another institution:
    # skipped; the good receipt of the same batch is recorded.
    response, answer = _report(
        at_iom.dp,
        post,
        [
            _receipt(SimpleNamespace(pk="00000000-0000-4000-8000-000000000000")),
            _receipt(local),
            _receipt(referral, actor_institution="IOM"),
            _receipt(referral, actor_id="43"),
        ],
        message_id="2b7e9a52-5d1f-4c39-9d43-6a0f38a1b2c3",
    )
    assert response.status_code == 200 and answer["recorded"] == 1
    assert answer["skipped"] == [
        {"index": 0, "cause": "not-sent-to-node"},
        {"index": 1, "cause": "not-sent-to-node"},
        {"index": 2, "cause": "not-the-receiving-institution"},
    ]
    assert list(_remote_reads().values_list("actor_id", flat=True)) == ["43"]


@pytest.mark.parametrize(
    "receipts",
    [
        [{"referral": "x"}],
        [_receipt(ELSEWHERE, action="consent.withdrawn")],
        [_receipt(ELSEWHERE, read_at="2026-12-02T12:00:00")],
        [_receipt(ELSEWHERE, detail={"given_name": "María"})],
        [_receipt(ELSEWHERE, actor_type="anonymous")],
        [],
        [_receipt(ELSEWHERE)] * (BATCH + 1),
    ],
    ids=["shape", "not-a-read", "naive-time", "personal-detail", "actor-type", "empty", "too-many"],
)
def test_a_malformed_batch_is_refused_whole_and_nothing_recorded(at_iom, post, receipts):
    good = _receipt(at_iom.referral)
    response, answer = _report(at_iom.dp, post, [good, *receipts] if receipts else [])
    assert response.status_code == 400
    assert response.json()["type"].endswith("validation-error")
    assert not _remote_reads().exists()
    # The answer is signed and kept: the same message again gets it.
    assert Message.objects.get(direction=Direction.RECEIVED).response_status == 400


def test_a_flush_that_fails_holds_back_no_other_message(at_dp, monkeypatch):
    from federation import receipts, services

    reads.referral_read(actor=at_dp.reader, referral_id=at_dp.copy.pk)
    services.enqueue(at_dp.peer, "ping", {"echo": "still goes"})
    peers = Peers(at_dp.iom)
    monkeypatch.setattr(transport, "post", peers)

    def broken(peer_id=None):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(receipts, "flush", broken)
        assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert [kind for _url, kind, _referral, _payload in peers.seen] == ["ping"]
    assert len(_receipts()) == 1  # kept for the next pass
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    assert [kind for _url, kind, _referral, _payload in peers.seen] == ["ping", "referral.reads"]
