"""How long federation keeps what crossed, and what goes with a person's data (contract §7.4).

* **The outbox** (``Outgoing``) holds a message only until the peer answers it: at delivery its body is
  cleared (``federation.delivery``; the evidence keeps the one copy), and :func:`purge` — the daily job
  ``federation-purge`` (beat, or the embedded relay without Redis) — deletes delivered rows
  ``FEDERATION_OUTBOX_DELIVERED_DAYS`` (30) after their delivery, and clears the body of any delivered row
  that still holds one.
* **The evidence** (``Message``: every message sent and received, as signed, with its answer) is kept for the
  audit retention period, ``FEDERATION_EVIDENCE_RETENTION_DAYS`` (by default ``RETENTION_DAYS``), counted
  from the message's time; :func:`purge` then deletes it whole. Received messages are also the door's replay
  store: a replay of a message that old is refused as stale long before (5 minutes).
* **Waiting messages go with the person's data** (:func:`drop_waiting`): when a referral's personal data is
  destroyed here — its copy crypto-shredded (``referral.withdraw`` at the receiver's node), the withdrawal
  confirmed (at the sender's), its case erased (``subject_erased``: retention, the right to erasure) — the
  sealed messages still waiting in the outbox for that referral are deleted, and the bodies of their sent
  evidence (an attempt the peer never answered) destroyed. When consent is withdrawn at the sender's node
  before the referral's delivery left it, the delivery and everything queued behind it for the referral are
  dropped the same way (:func:`drop_undelivered`): the projection never leaves — and when it was never even
  attempted (:func:`drop_unsent`), no withdrawal is sent either: nothing of the referral reached the peer.
  Otherwise ``referral.withdraw`` (ids only, in clear) is never dropped: it still travels. A message a
  delivering process holds right now (its lease) is left to it: it is already on its way, and what is queued
  behind it keeps its order.

Everything here works on ids and times; nothing is logged but counts and ids.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import Direction, Message, Outgoing

logger = logging.getLogger(__name__)

#: Never dropped: the withdrawal itself (ids only) must still reach the peer.
WITHDRAW = "referral.withdraw"
DELIVER = "referral.deliver"


def _droppable(referral_ids, now):
    return (
        Outgoing.objects.filter(referral_id__in=referral_ids, state=Outgoing.State.WAITING, sealed=True)
        .exclude(type=WITHDRAW)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
    )


def drop_waiting(referral_ids) -> int:
    """Delete the sealed messages waiting in the outbox for these referrals (not ``referral.withdraw``, not
    one a delivering process holds now) and destroy the bodies of their sent evidence (attempts not
    answered); returns how many messages were dropped. Call it in the transaction that destroys the data."""
    referral_ids = [str(value) for value in referral_ids]
    if not referral_ids:
        return 0
    now = timezone.now()
    message_ids = list(_droppable(referral_ids, now).values_list("message_id", flat=True))
    if not message_ids:
        return 0
    dropped, _ = Outgoing.objects.filter(message_id__in=message_ids, state=Outgoing.State.WAITING).delete()
    Message.objects.filter(
        direction=Direction.SENT, message_id__in=message_ids, body_destroyed_at__isnull=True
    ).update(request_body=None, response_body=None, body_destroyed_at=now)
    logger.info("federation: %d waiting message(s) dropped with the data of %s", dropped, referral_ids)
    return dropped


def drop_unsent(referral_id) -> bool:
    """Consent withdrawn at the sender's node before anything of the referral left it: its delivery is still
    waiting, never attempted, not on its way. It is deleted in one statement (a delivering process that
    claims it first wins, and then nothing is deleted), with every sealed message queued behind it; True
    when nothing about the referral was ever posted to a peer — no copy can exist, no withdrawal to send."""
    now = timezone.now()
    deleted, _ = _droppable([str(referral_id)], now).filter(type=DELIVER, attempts=0).delete()
    if not deleted:
        return False
    drop_waiting([referral_id])
    return not Message.objects.filter(direction=Direction.SENT, referral_id=referral_id).exists()


def drop_undelivered(referral_id) -> int:
    """Consent withdrawn at the sender's node: when the referral's delivery (``referral.deliver``) is still
    waiting — not delivered, not on its way now — it and every sealed message queued for the referral are
    dropped (:func:`drop_waiting`); returns how many. Once the delivery is delivered (or on its way) nothing
    is dropped here: the states queued behind it still bring the copy to the authority's status, and the
    withdrawal behind them shreds the copy (the rest goes when the peer confirms, ``withdrawal_answered``)."""
    now = timezone.now()
    if not _droppable([str(referral_id)], now).filter(type=DELIVER).exists():
        return 0
    return drop_waiting([referral_id])


def purge(now=None) -> dict:
    """The daily job: delivered outbox rows past ``FEDERATION_OUTBOX_DELIVERED_DAYS`` deleted (a delivered
    row still holding a body cleared), evidence past ``FEDERATION_EVIDENCE_RETENTION_DAYS`` deleted. Returns
    the counts ``{"outbox_deleted", "outbox_bodies_cleared", "evidence_deleted"}``; idempotent."""
    now = now or timezone.now()
    delivered = Outgoing.objects.filter(state=Outgoing.State.DELIVERED)
    cleared = delivered.filter(body__isnull=False).update(body=None)
    outbox_cutoff = now - timedelta(days=settings.FEDERATION_OUTBOX_DELIVERED_DAYS)
    outbox_deleted, _ = delivered.filter(delivered_at__lt=outbox_cutoff).delete()
    evidence_cutoff = now - timedelta(days=settings.FEDERATION_EVIDENCE_RETENTION_DAYS)
    evidence_deleted, _ = Message.objects.filter(created_at__lt=evidence_cutoff).delete()
    result = {
        "outbox_deleted": outbox_deleted,
        "outbox_bodies_cleared": cleared,
        "evidence_deleted": evidence_deleted,
    }
    if any(result.values()):
        logger.info("federation retention: %s", result)
    return result
