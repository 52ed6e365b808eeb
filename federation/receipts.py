"""Read receipts (contract §7.4): every read of personal data about a referral copy at this node is
reported to the node that sent the referral, batched, through the outbox.

* **At the receiver's node.** The core sends ``referrals.signals.personal_read`` wherever it records a read
  of a referral's personal data (``referrals.reads``: ``referral.viewed``, ``note.viewed``,
  ``referral.list_viewed``, ``referral.printed``). :func:`queue_receipt` keeps a :class:`PendingReceipt` —
  in the read's transaction, ids and the reader only — when the referral is a copy (its ``from_institution``
  is hosted by a peer). :func:`flush`, run at the start of every outbox pass (``delivery.deliver_outbox``),
  turns each peer's oldest pending receipts (at most :data:`BATCH`) into one sealed ``referral.reads``
  message and deletes them, in one transaction: a receipt is either pending or in the outbox, never both and
  never neither. The outbox then delivers it like any other message (nothing lost, nothing twice).
* **At the sender's node.** The handler of ``referral.reads`` checks the message's shape (a malformed
  message → 400, nothing recorded) and hands the receipts to the core
  (``referrals.remote_reads.remote_reads_record``), which records each as an audit event with the reader as
  actor, or skips it with a cause. → 200 ``{"recorded": n, "skipped": [{"index", "cause"}]}``: a receipt
  about a referral that was not sent by this node to that peer is skipped, not recorded, and the rest of the
  batch still is (a 400 would be final for the whole batch, and one stale receipt would lose the others).
"""

from __future__ import annotations

import datetime
import logging
import uuid

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from plumbing.problems import ProblemError
from referrals import remote_reads
from referrals.signals import personal_read

from . import keys, services
from .handlers import Incoming, Outcome, handles
from .models import Peer, PendingReceipt
from .referrals import AUTHORITY_PEER

logger = logging.getLogger(__name__)

MESSAGE = "referral.reads"
#: Receipts per ``referral.reads`` message (and per peer per outbox pass).
BATCH = 500
RECEIPT_FIELDS = {
    "referral",
    "action",
    "actor_type",
    "actor_id",
    "actor_label",
    "actor_institution",
    "request_id",
    "read_at",
    "detail",
}
#: What of a read's audit detail travels: a count of notes, a list's or a page's name (never a value).
DETAIL_KEYS = {"count": int, "list": str, "page": str}
_LIMITS = {"actor_id": 64, "actor_label": 160, "actor_institution": 16, "request_id": 64}


def _detail(detail: dict | None) -> dict:
    kept = {}
    for name, kind in DETAIL_KEYS.items():
        value = (detail or {}).get(name)
        if isinstance(value, kind) and not isinstance(value, bool) and (kind is int or len(value) <= 64):
            kept[name] = value
    return kept


@receiver(personal_read, dispatch_uid="federation.queue_receipt")
def queue_receipt(sender, referral, actor, action: str, detail: dict | None = None, **kwargs) -> bool:
    """Keep a pending receipt of this read when ``referral`` is a copy of a peer's referral; returns whether
    one was kept. A single node (no ``NODE_URL``) does nothing and queries nothing."""
    if not keys.enabled() or action not in remote_reads.READ_ACTIONS or getattr(actor, "node", ""):
        return False  # off, not a read of personal data, or the sender's own node acting here
    node = referral.from_institution.node
    if not node:
        return False
    peer = referral.__dict__.get(AUTHORITY_PEER)  # a forwarded action's answer: its peer was just read
    if peer is None or peer.url != node:
        peer = Peer.objects.filter(url=node).first()
    if peer is None:
        return False  # the institution's node is no longer pinned: there is nobody to tell
    institution = getattr(actor, "audit_institution_code", None)
    PendingReceipt.objects.create(
        peer=peer,
        referral_id=referral.pk,
        action=action,
        actor_type=actor.kind,
        actor_id=str(actor.id)[:64],
        actor_label=actor.label[:160],
        actor_institution=(actor.institution.code if institution is None else institution)[:16],
        request_id=(actor.request_id or "")[:64],
        detail=_detail(detail),
    )
    return True


def _payload(row: PendingReceipt) -> dict:
    return {
        "referral": str(row.referral_id),
        "action": row.action,
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "actor_label": row.actor_label,
        "actor_institution": row.actor_institution,
        "request_id": row.request_id,
        "read_at": row.read_at.isoformat(),
        "detail": row.detail,
    }


def flush(peer_id: str | None = None) -> int:
    """Turn each peer's oldest pending receipts (at most :data:`BATCH`; only ``peer_id``'s if given) into one
    sealed ``referral.reads`` message in the outbox, and delete them — one transaction. Returns how many
    messages were queued. Receipts another process is flushing are left to it."""
    if not keys.enabled():
        return 0
    pending = PendingReceipt.objects.all()
    if peer_id is not None:
        pending = pending.filter(peer_id=peer_id)
    queued = 0
    for pid in list(pending.order_by().values_list("peer_id", flat=True).distinct()):
        with transaction.atomic():
            rows = list(
                PendingReceipt.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(peer_id=pid)
                .select_related("peer")
                .order_by("id")[:BATCH]
            )
            if not rows:
                continue
            deleted, _kinds = PendingReceipt.objects.filter(pk__in=[row.pk for row in rows]).delete()
            if deleted != len(rows):
                transaction.set_rollback(True)  # another process took some of them meanwhile
                continue
            batch = {"receipts": [_payload(row) for row in rows]}
            services.enqueue(rows[0].peer, MESSAGE, batch, sealed=True)
            queued += 1
    return queued


# --- At the sender's node --------------------------------------------------------------------------------


def _invalid(errors: dict) -> ProblemError:
    return ProblemError("validation-error", 400, "Invalid read receipts.", errors)


def _receipt(index: int, item) -> remote_reads.RemoteRead:
    where = f"receipts[{index}]"
    if not isinstance(item, dict) or set(item) != RECEIPT_FIELDS:
        raise _invalid({where: [f"An object with exactly the fields {', '.join(sorted(RECEIPT_FIELDS))}."]})
    for name in ("referral", "action", "actor_type", "read_at", *_LIMITS):
        if not isinstance(item[name], str) or len(item[name]) > _LIMITS.get(name, 64):
            raise _invalid({f"{where}.{name}": ["A text of the right length."]})
    try:
        referral_id = uuid.UUID(item["referral"])
    except ValueError:
        raise _invalid({f"{where}.referral": ["Not a UUID."]}) from None
    if item["action"] not in remote_reads.READ_ACTIONS:
        raise _invalid({f"{where}.action": ["Not a read of personal data."]})
    if item["actor_type"] not in remote_reads.ACTOR_TYPES:
        raise _invalid({f"{where}.actor_type": ["Unknown actor type."]})
    read_at = parse_datetime(item["read_at"])
    if read_at is None or read_at.tzinfo is None:
        raise _invalid({f"{where}.read_at": ["A date-time with a time zone."]})
    detail = item["detail"]
    if not isinstance(detail, dict) or detail != _detail(detail):
        raise _invalid({f"{where}.detail": ["Only count, list and page."]})
    return remote_reads.RemoteRead(
        referral_id=referral_id,
        action=item["action"],
        actor_type=item["actor_type"],
        actor_id=item["actor_id"],
        actor_label=item["actor_label"],
        actor_institution=item["actor_institution"],
        request_id=item["request_id"],
        read_at=read_at.astimezone(datetime.UTC),
        detail=detail,
    )


@handles(MESSAGE)
def receive_reads(message: Incoming) -> Outcome:
    """``{"receipts": [≤ 500 receipts]}`` (sealed) → 200 ``{"recorded", "skipped": [{"index", "cause"}]}``;
    a malformed message → 400, nothing recorded."""
    if set(message.payload) != {"receipts"}:
        raise _invalid({"receipts": ["The only field."]})
    items = message.payload["receipts"]
    if not isinstance(items, list) or not 0 < len(items) <= BATCH:
        raise _invalid({"receipts": [f"A list of 1 to {BATCH} receipts."]})
    reads = [_receipt(index, item) for index, item in enumerate(items)]
    skipped = remote_reads.remote_reads_record(node=message.peer.url, reads=reads)
    if skipped:
        logger.warning(
            "federation: %s of %s read receipts from %s skipped", len(skipped), len(reads), message.peer.url
        )
    return Outcome(
        200,
        {
            "recorded": len(reads) - len(skipped),
            "skipped": [{"index": index, "cause": cause} for index, cause in skipped],
            "at": timezone.now().isoformat(),
        },
        sealed=message.sealed,
    )
