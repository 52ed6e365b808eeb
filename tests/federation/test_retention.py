"""Retention of what crossed (``federation.retention``): delivered outbox rows and old evidence purged by the
daily job, and sealed messages still waiting in the outbox dropped with the person's data (consent withdrawn,
a copy shredded, a case erased) — the withdrawal itself still travels."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from celery import current_app
from django.utils import timezone

from audit.models import AuditEvent
from federation import delivery, retention, services, transport
from federation.models import Direction, Message, Outgoing
from referrals import data_rights
from referrals import services as referral_services
from referrals.models import Case, Referral

from .conftest import new_remote
from .copies import Peers, envelope, federate, host_elsewhere, institutions_and_staff, sent_referral
from .test_consent_withdrawal_across_nodes import IOM_NODE, _receipt_answer, _withdraw_consent

DAY = timedelta(days=1)


@pytest.fixture
def at_iom(settings, db):
    """This process hosts IOM; DP is hosted by a peer. ``referral``: sent to DP, its delivery waiting."""
    federate(settings)
    staff = institutions_and_staff("IOM", "DP")
    dp = new_remote()
    peer = host_elsewhere(dp, "DP")
    referral = sent_referral(staff["IOM"][1], staff["DP"][0])
    return SimpleNamespace(referral=referral, dp=dp, peer=peer, staff=staff, sender=staff["IOM"][1])


def _down(url, *, data, headers):
    raise requests.ConnectionError("down")


def _types(**filters) -> list[str]:
    return list(Outgoing.objects.filter(**filters).order_by("id").values_list("type", flat=True))


# --- The daily job ------------------------------------------------------------------------------------


def test_the_daily_job_deletes_delivered_rows_and_evidence_past_their_periods(at_iom, monkeypatch, settings):
    settings.FEDERATION_OUTBOX_DELIVERED_DAYS = 30
    settings.FEDERATION_EVIDENCE_RETENTION_DAYS = 400
    monkeypatch.setattr(transport, "post", Peers(at_iom.dp))
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}  # the referral's delivery
    services.enqueue(at_iom.peer, "ping", {"echo": "hola"})
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    waiting = services.enqueue(at_iom.peer, "ping", {"echo": "espera"}, sealed=True)
    old_row, recent_row = Outgoing.objects.filter(state=Outgoing.State.DELIVERED).order_by("id")
    assert old_row.body is None and recent_row.body is None  # cleared at delivery: the evidence keeps it
    now = timezone.now()
    Outgoing.objects.filter(pk=old_row.pk).update(delivered_at=now - 31 * DAY)
    # A delivered row that still holds a body (delivered by an older version): the job clears it.
    Outgoing.objects.filter(pk=recent_row.pk).update(body=b"{}")
    old_evidence = Message.objects.get(message_id=old_row.message_id)
    Message.objects.filter(pk=old_evidence.pk).update(created_at=now - 401 * DAY)

    task = current_app.tasks[current_app.conf.beat_schedule["federation-purge"]["task"]]
    assert task.apply().get() == {"outbox_deleted": 1, "outbox_bodies_cleared": 1, "evidence_deleted": 1}
    assert set(Outgoing.objects.values_list("pk", flat=True)) == {recent_row.pk, waiting.pk}
    assert Outgoing.objects.get(pk=recent_row.pk).body is None
    assert Outgoing.objects.get(pk=waiting.pk).body is not None  # a waiting message keeps its body
    assert not Message.objects.filter(pk=old_evidence.pk).exists()
    assert Message.objects.filter(message_id=recent_row.message_id).exists()
    # Idempotent.
    assert retention.purge() == {"outbox_deleted": 0, "outbox_bodies_cleared": 0, "evidence_deleted": 0}


def test_the_evidence_period_follows_retention_days_by_default():
    from config.settings import base

    assert max(1, base.RETENTION_DAYS) == base.FEDERATION_EVIDENCE_RETENTION_DAYS
    assert base.FEDERATION_OUTBOX_DELIVERED_DAYS == 30


def test_the_embedded_relay_runs_the_purge_as_housekeeping(at_iom, monkeypatch, settings):
    from notifications import apps as notification_apps

    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)
    settings.FEDERATION_EVIDENCE_RETENTION_DAYS = 1
    monkeypatch.setattr(transport, "post", Peers(at_iom.dp))
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    Message.objects.update(created_at=timezone.now() - 2 * DAY)
    notification_apps.relay_once(housekeeping=["federation-purge"])
    assert not Message.objects.exists()


# --- Waiting messages go with the person's data -------------------------------------------------------


def test_consent_withdrawn_before_delivery_drops_the_waiting_projection_but_the_withdrawal_travels(
    at_iom, monkeypatch
):
    referral = at_iom.referral
    monkeypatch.setattr(transport, "post", _down)
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 1}  # tried once: its evidence has a body
    attempted = Message.objects.get(direction=Direction.SENT, type="referral.deliver")
    assert attempted.request_body is not None and attempted.response_status is None
    # Another referral's delivery waits too: it is not touched.
    other = sent_referral(at_iom.sender, at_iom.staff["DP"][0])

    _withdraw_consent(at_iom.sender, referral)
    assert _types(referral_id=referral.pk) == ["referral.withdraw"]  # delivery and cancellation dropped
    assert _types(referral_id=other.pk) == ["referral.deliver"]
    attempted.refresh_from_db()
    assert attempted.request_body is None and attempted.body_destroyed_at is not None

    peers = Peers(at_iom.dp, answer=lambda remote, kind, ref, payload: (404, {"type": "not-found"}))
    monkeypatch.setattr(transport, "post", peers)
    Outgoing.objects.update(next_attempt_at=None)
    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}
    # The withdrawal travelled (ids only); the peer never had the referral, so it confirms nothing.
    assert [(kind, ref) for _url, kind, ref, _payload in peers.seen] == [
        ("referral.deliver", str(other.pk)),
        ("referral.withdraw", str(referral.pk)),
    ]
    assert not AuditEvent.objects.filter(action="consent.withdrawal_confirmed").exists()


def test_consent_withdrawn_before_the_delivery_was_even_tried_sends_nothing_at_all(at_iom, monkeypatch):
    referral = at_iom.referral
    assert _types(referral_id=referral.pk) == ["referral.deliver"]  # queued, never attempted
    _withdraw_consent(at_iom.sender, referral)
    # Nothing of the referral ever left: no delivery, no cancellation's state, no withdrawal to send.
    assert _types(referral_id=referral.pk) == []
    assert not Message.objects.filter(referral_id=referral.pk).exists()
    peers = Peers(at_iom.dp)
    monkeypatch.setattr(transport, "post", peers)
    assert delivery.deliver_outbox() == {"delivered": 0, "failed": 0}
    assert peers.seen == []
    # A delivery a process holds right now (its lease) is on its way: the withdrawal must follow it.
    other = sent_referral(at_iom.sender, at_iom.staff["DP"][0])
    Outgoing.objects.filter(referral_id=other.pk).update(leased_until=timezone.now() + timedelta(minutes=1))
    _withdraw_consent(at_iom.sender, other)
    assert _types(referral_id=other.pk) == ["referral.deliver", "referral.state", "referral.withdraw"]


def test_consent_withdrawn_after_delivery_keeps_the_states_and_the_confirmation_drops_what_is_behind(
    at_iom, monkeypatch
):
    referral = at_iom.referral
    peers = Peers(at_iom.dp, answer=_receipt_answer())
    monkeypatch.setattr(transport, "post", peers)
    assert delivery.deliver_outbox() == {"delivered": 1, "failed": 0}
    _withdraw_consent(at_iom.sender, referral)
    # The copy must still reach the authority's status: the cancellation's state stays, the withdrawal after.
    assert _types(state="waiting") == ["referral.state", "referral.withdraw"]
    # Something sealed queued behind the withdrawal for the referral: dropped once the peer confirms.
    services.enqueue(at_iom.peer, "ping", {"echo": "María"}, referral_id=str(referral.pk), sealed=True)
    assert delivery.deliver_outbox() == {"delivered": 2, "failed": 0}
    assert [kind for _url, kind, _ref, _payload in peers.seen] == [
        "referral.deliver",
        "referral.state",
        "referral.withdraw",
    ]
    assert AuditEvent.objects.filter(action="consent.withdrawal_confirmed").count() == 1
    assert not Outgoing.objects.filter(state="waiting").exists()


def test_an_erased_case_drops_its_waiting_messages_but_not_one_on_its_way(at_iom, monkeypatch):
    referral = at_iom.referral
    in_flight = services.enqueue(
        at_iom.peer, "ping", {"echo": "en camino"}, referral_id=str(referral.pk), sealed=True
    )
    Outgoing.objects.filter(pk=in_flight.pk).update(leased_until=timezone.now() + timedelta(minutes=1))
    clear = services.enqueue(at_iom.peer, "ping", {"echo": "ids"}, referral_id=str(referral.pk))
    data_rights.subject_erase(case=Case.objects.get(pk=referral.case_id), operator="test")
    left = set(Outgoing.objects.filter(referral_id=referral.pk).values_list("pk", flat=True))
    assert left == {in_flight.pk, clear.pk}  # the delivery (sealed) dropped; in clear and on its way: kept
    assert Case.objects.get(pk=referral.case_id).erased_at is not None


def test_a_shredded_copy_drops_the_notes_still_waiting_for_the_authority(settings, db, post):
    federate(settings)
    staff = institutions_and_staff("IOM", "DP")
    copy = sent_referral(staff["IOM"][1], staff["DP"][0], categories=("identity",))
    iom = new_remote(IOM_NODE, ("IOM",))
    peer = host_elsewhere(iom, "IOM")
    referral_services.note_create(actor=staff["DP"][1], referral_id=copy.pk, body="Nota de Rosa Díaz")
    assert _types(referral_id=copy.pk) == ["referral.note"]
    other = services.enqueue(peer, "ping", {"echo": "x"}, referral_id=None, sealed=True)

    message_id = "5c1d2e4f-1111-4aaa-8bbb-0123456789ab"
    body, headers = iom.request(
        envelope(iom, "referral.withdraw", {}, message_id=message_id, referral=copy.pk, sealed=False),
        message_id=message_id,
    )
    assert post(body, headers).status_code == 200
    assert not Outgoing.objects.filter(referral_id=copy.pk).exists()
    assert Outgoing.objects.filter(pk=other.pk).exists()
    assert Referral.objects.get(pk=copy.pk).consent.withdrawn_at is not None
