"""Delivering the outbox (``federation.models.Outgoing``): first in, first out per peer, retried with
exponential backoff and jitter while the peer is down, never given up (contract §7.4: nothing lost). A
referral's messages go in order, one after the other; different referrals' messages go side by side, up to
``FEDERATION_DELIVERY_CONCURRENCY`` at once (a peer catching up after it was down).

Each pass first turns the pending read receipts into ``referral.reads`` messages (``federation.receipts``);
a message type may act on its peer's verified answer (``on_answered``: ``referral.withdraw``'s confirmation).

Run by the periodic machinery like the notifications' sweep: beat's ``federation-deliver-outbox`` with a
worker (and a task handed over after each commit), the embedded relay's housekeeping without Redis. No
transaction is held while a peer is called: a message is claimed by a lease (a conditional UPDATE, so two
processes never post it at once on SQLite or PostgreSQL), and a process that dies mid-delivery only lets the
lease run out — the next try posts the same message id and body, which the peer answers with its first
answer. Everything logged is ids, URLs of peers and error classes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import keys, receipts, services
from .models import Outgoing, Peer

logger = logging.getLogger(__name__)

#: What a message type does with the peer's verified answer, by type (``on_answered``).
ANSWERED: dict[str, Callable[[Outgoing, services.Reply], object]] = {}


def on_answered(message_type: str):
    """Register ``function(row, reply)``: called with the outbox's row and the peer's verified, opened answer
    (``services.Reply``, whatever its status) when a message of ``message_type`` is delivered — in the
    transaction that marks it delivered, so that if it fails the message stays waiting and is posted again
    (the peer answers with its first answer, and the function runs again)."""

    def register(function):
        ANSWERED[message_type] = function
        return function

    return register


def backoff_seconds(attempts: int) -> float:
    """``base·2^(n−1)``, capped, times a random factor in [0.5, 1] (full jitter's milder form)."""
    base = float(settings.FEDERATION_RETRY_BASE_SECONDS)
    cap = float(settings.FEDERATION_RETRY_MAX_SECONDS)
    delay = min(cap, base * (2 ** max(0, min(attempts, 32) - 1)))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 — jitter, not a secret


def retry_after_cap() -> float:
    """The longest a peer's ``Retry-After`` is honoured: a minute, or the backoff's cap when longer."""
    return max(60.0, float(settings.FEDERATION_RETRY_MAX_SECONDS))


def lease_seconds() -> float:
    """Longer than any one post can take (the transport's connect and read timeouts)."""
    return float(settings.FEDERATION_TIMEOUT_SECONDS) * 2 + 30


def _claim(row: Outgoing, now) -> bool:
    claimed = (
        Outgoing.objects.filter(pk=row.pk, state=Outgoing.State.WAITING)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=now + timedelta(seconds=lease_seconds()))
    )
    return claimed == 1


def deliver_one(row: Outgoing) -> str:
    """Post one claimed message: ``delivered`` (the peer's verified answer, whatever its status, is final —
    the peer gives the same one to every copy) or ``failed`` (unreachable, an answer that does not verify,
    or the peer's rate limit — a 429, never final: retried after a backoff, at least its ``Retry-After``)."""
    peer = row.peer
    now = timezone.now()
    wait = 0.0
    try:
        answered = services.post_message(
            peer,
            message_id=str(row.message_id),
            message_type=row.type,
            referral_id=str(row.referral_id) if row.referral_id else None,
            body=bytes(row.body),
        )
    except services.PeerUnavailable as exc:
        cause, wait = exc.cause, exc.retry_after
    except Exception as exc:  # noqa: BLE001 — anything else (keys, database): retried; its class is logged
        cause = type(exc).__name__[:64]
    else:
        try:
            with transaction.atomic():
                Outgoing.objects.filter(pk=row.pk).update(
                    state=Outgoing.State.DELIVERED,
                    attempts=row.attempts + 1,
                    last_attempt_at=now,
                    delivered_at=timezone.now(),
                    response_status=answered.response_status,
                    next_attempt_at=None,
                    leased_until=None,
                    last_error="",
                    body=None,  # the evidence keeps it (Message); one copy is enough
                )
                hook = ANSWERED.get(row.type)
                if hook is not None:
                    hook(row, services.open_reply(peer, answered, bytes(answered.response_body)))
        except services.PeerUnavailable as exc:
            cause = exc.cause
        except Exception as exc:  # noqa: BLE001 — the answer's hook failed: retried; its class is logged
            cause = f"answered-{type(exc).__name__}"[:64]
        else:
            return "delivered"
    attempts = row.attempts + 1
    # A peer's 429 asks for at least Retry-After (bounded: a peer cannot park its queue for long).
    delay = max(backoff_seconds(attempts), min(wait, retry_after_cap()))
    Outgoing.objects.filter(pk=row.pk).update(
        attempts=attempts,
        last_attempt_at=now,
        next_attempt_at=now + timedelta(seconds=delay),
        leased_until=None,
        last_error=cause,
    )
    logger.info(
        "federation outbox: message %s to %s failed (%s, attempt %s); retry in %.0f s",
        row.message_id,
        peer.url,
        cause,
        attempts,
        delay,
    )
    return "failed"


def deliver_outbox(peer_id: str | None = None, limit: int = 500) -> dict:
    """One pass: for each peer with messages waiting (or only ``peer_id``), post them oldest first until one
    fails, is not yet due, or another process holds it; at most ``limit`` posts. A single node (no
    ``NODE_URL``) does nothing."""
    if not keys.enabled():
        return {"delivered": 0, "failed": 0}
    try:
        receipts.flush(peer_id)  # the reads waiting to be reported join the outbox first (§7.4)
    except Exception as exc:  # noqa: BLE001 — the receipts wait for the next pass; the messages go now
        logger.warning("federation outbox: read receipts not flushed (%s)", type(exc).__name__)
    waiting = Outgoing.objects.filter(state=Outgoing.State.WAITING)
    if peer_id is not None:
        waiting = waiting.filter(peer_id=peer_id)
    # ``order_by()``: the model's ordering (by id) would make DISTINCT return a peer once per message.
    peer_ids = list(waiting.order_by().values_list("peer_id", flat=True).distinct())
    width = concurrency()
    delivered = failed = 0
    for pid in peer_ids:
        size = 1  # the head alone first: a peer that is down costs one attempt per pass, not a batch
        while delivered + failed < limit:
            batch = _next_batch(pid, min(size, limit - delivered - failed))
            size = width
            if not batch:
                break  # nothing due (the peer is down: its queue waits), or another process has it
            outcomes = _deliver_batch(batch)
            delivered += outcomes.count("delivered")
            failed += len(outcomes) - outcomes.count("delivered")
            if "failed" in outcomes:
                break  # the peer is down: the rest of its queue waits behind the failed message
    return {"delivered": delivered, "failed": failed}


def concurrency() -> int:
    """How many of a peer's messages one pass posts at once (``FEDERATION_DELIVERY_CONCURRENCY``)."""
    return max(1, int(getattr(settings, "FEDERATION_DELIVERY_CONCURRENCY", 4)))


def _next_batch(peer_id, size: int) -> list[Outgoing]:
    """The next messages of the peer's queue that may travel together, claimed: in queue order, at most one
    per referral — a referral's messages (its delivery, then its states, notes, withdrawal) go one after the
    other, in order; different referrals' messages, and messages about no referral, are independent. The
    oldest waiting message comes first, and when it is not due yet (the peer was down) nothing goes."""
    now = timezone.now()
    window = (
        Outgoing.objects.filter(peer_id=peer_id, state=Outgoing.State.WAITING)
        .select_related("peer")
        .order_by("id")[: size * 4]
    )
    batch: list[Outgoing] = []
    streams: set = set()
    for row in window:
        due = row.next_attempt_at is None or row.next_attempt_at <= now
        if not due and not batch:
            return []
        stream = row.referral_id
        if stream is not None and stream in streams:
            continue  # behind an earlier message of the same referral
        if stream is not None:
            streams.add(stream)
        if not due:
            continue
        if not _claim(row, now):
            break  # another process is delivering this peer's queue
        batch.append(row)
        if len(batch) >= size:
            break
    return batch


def _deliver_one_in_thread(row: Outgoing) -> str:
    from django.db import connection

    try:
        return deliver_one(row)
    finally:
        connection.close()  # this worker thread's own connection


def _deliver_batch(batch: list[Outgoing]) -> list[str]:
    """Post the batch: one by one for a single message, else at once, each in a thread of its own (with
    its own database connection); the outcomes in the batch's order."""
    if len(batch) == 1:
        return [deliver_one(batch[0])]
    with ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="federation-delivery") as pool:
        return list(pool.map(_deliver_one_in_thread, batch))


def retry_now(peer: Peer) -> int:
    """An operator's nudge (the peer is back): its waiting messages are due at once."""
    return Outgoing.objects.filter(peer=peer, state=Outgoing.State.WAITING).update(next_attempt_at=None)
