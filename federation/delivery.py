"""Delivering the outbox (``federation.models.Outgoing``): first in, first out per peer, retried with
exponential backoff and jitter while the peer is down, never given up (contract §7.4: nothing lost). A
referral's messages go in order, one after the other; different referrals' messages go together — up to
``FEDERATION_BATCH_SIZE`` in one request (``/federation/v1/batch/``: each still signed, answered and kept on
its own) and up to ``FEDERATION_DELIVERY_CONCURRENCY`` requests at once (a peer catching up).

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
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
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
    now = timezone.now()
    try:
        answered = services.post_message(
            row.peer,
            message_id=str(row.message_id),
            message_type=row.type,
            referral_id=str(row.referral_id) if row.referral_id else None,
            body=bytes(row.body),
        )
    except services.PeerUnavailable as exc:
        return _failed(row, now, exc.cause, exc.retry_after)
    except Exception as exc:  # noqa: BLE001 — anything else (keys, database): retried; its class is logged
        return _failed(row, now, type(exc).__name__[:64])
    return _answered(row, now, answered)


def _delivered_fields(row: Outgoing, now, answered) -> dict:
    return {
        "state": Outgoing.State.DELIVERED,
        "attempts": row.attempts + 1,
        "last_attempt_at": now,
        "delivered_at": timezone.now(),
        "response_status": answered.response_status,
        "next_attempt_at": None,
        "leased_until": None,
        "last_error": "",
        "body": None,  # the evidence keeps it (Message); one copy is enough
    }


def _answered(row: Outgoing, now, answered) -> str:
    """The peer's verified answer to ``row``: delivered, with its type's ``on_answered`` hook in the same
    transaction (a hook that fails leaves it waiting)."""
    try:
        with transaction.atomic():
            Outgoing.objects.filter(pk=row.pk).update(**_delivered_fields(row, now, answered))
            hook = ANSWERED.get(row.type)
            if hook is not None:
                hook(row, services.open_reply(row.peer, answered, bytes(answered.response_body)))
    except services.PeerUnavailable as exc:
        return _failed(row, now, exc.cause)
    except Exception as exc:  # noqa: BLE001 — the answer's hook failed: retried; its class is logged
        return _failed(row, now, f"answered-{type(exc).__name__}"[:64])
    return "delivered"


def retry_after_cap() -> float:
    """The longest a peer's ``Retry-After`` is honoured: a minute, or the backoff's cap when longer."""
    return max(60.0, float(settings.FEDERATION_RETRY_MAX_SECONDS))


def _failed(row: Outgoing, now, cause: str, wait: float = 0.0) -> str:
    """Not delivered: retried after a backoff — and, after a peer's 429, at least its ``Retry-After``
    (``wait``; bounded: a peer cannot park its queue for long)."""
    attempts = row.attempts + 1
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
        row.peer.url,
        cause,
        attempts,
        delay,
    )
    return "failed"


#: Peers whose messages go one by one for now, by id → until when (``time.monotonic()``): a peer that
#: answered a batch with a verified 404 (a node without batches) for an hour; a peer that answered a batch
#: 429 for five minutes (a batch counts each of its messages towards the peer's rate limit, so a batch
#: larger than what the limit lets through would be refused again and again). Then a batch is tried again.
ONE_BY_ONE_UNTIL: dict = {}
NO_BATCHES_SECONDS = 3600.0
THROTTLED_SECONDS = 300.0


def batch_size() -> int:
    """How many messages one request may carry to a peer that takes batches (``FEDERATION_BATCH_SIZE``; 1:
    one message per request)."""
    return max(1, min(services.BATCH_MAX_MESSAGES, int(getattr(settings, "FEDERATION_BATCH_SIZE", 20))))


def _takes_batches(peer_id) -> bool:
    until = ONE_BY_ONE_UNTIL.get(peer_id)
    if until is None:
        return True
    if time.monotonic() >= until:
        ONE_BY_ONE_UNTIL.pop(peer_id, None)
        return True
    return False


def deliver_together(rows: list[Outgoing]) -> list[str]:
    """Post claimed messages of one peer in one request (``services.post_batch``); each is settled as
    :func:`deliver_one` settles it, by its own verified answer. A peer without batches (a verified 404) is
    remembered, and these messages go one by one now."""
    peer = rows[0].peer
    now = timezone.now()
    postings = [
        services.Posting(
            str(row.message_id), row.type, str(row.referral_id) if row.referral_id else None, bytes(row.body)
        )
        for row in rows
    ]
    try:
        results = services.post_batch(peer, postings)
    except services.BatchUnsupported:
        ONE_BY_ONE_UNTIL[peer.pk] = time.monotonic() + NO_BATCHES_SECONDS
        return [deliver_one(row) for row in rows]
    except services.PeerUnavailable as exc:
        if exc.cause == "throttled":
            ONE_BY_ONE_UNTIL[peer.pk] = time.monotonic() + THROTTLED_SECONDS
        return [_failed(row, now, exc.cause, exc.retry_after) for row in rows]
    except Exception as exc:  # noqa: BLE001 — anything else (keys, database): retried; its class is logged
        return [_failed(row, now, type(exc).__name__[:64]) for row in rows]
    outcomes: dict[int, str] = {}
    plain = []  # delivered, with no hook: marked in one statement
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, services.PeerUnavailable):
            outcomes[row.pk] = _failed(row, now, result.cause, result.retry_after)
        elif row.type in ANSWERED:
            outcomes[row.pk] = _answered(row, now, result)
        else:
            plain.append((row, result))
    by_status: dict[int, list[int]] = {}
    for row, result in plain:
        by_status.setdefault(result.response_status, []).append(row.pk)
        outcomes[row.pk] = "delivered"
    with transaction.atomic():
        for status, ids in by_status.items():
            Outgoing.objects.filter(pk__in=ids).update(
                state=Outgoing.State.DELIVERED,
                attempts=F("attempts") + 1,
                last_attempt_at=now,
                delivered_at=timezone.now(),
                response_status=status,
                next_attempt_at=None,
                leased_until=None,
                last_error="",
                body=None,
            )
    return [outcomes[row.pk] for row in rows]


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
        if delivered + failed >= limit:
            break
        outcomes = _deliver_queue(pid, width, limit - delivered - failed)
        delivered += outcomes.count("delivered")
        failed += len(outcomes) - outcomes.count("delivered")
    if delivered + failed >= limit:
        services.deliver_soon(peer_id)  # more may be waiting: another pass now, not at the next period
    return {"delivered": delivered, "failed": failed}


def _deliver_queue(peer_id, width: int, budget: int) -> list[str]:
    """Deliver a peer's queue until it is empty, a message fails (the peer is down: the rest waits behind
    it) or ``budget`` messages were tried; → the outcomes.

    The head of the queue goes alone first: a peer that is down costs one attempt per pass. Then up to
    ``width`` requests are in flight at once, each of up to ``batch_size()`` messages (one per referral), a
    new one claimed as soon as one is answered — a referral with a message in flight is skipped until it is
    answered, so its messages still go one after the other, in order."""
    per_request = batch_size() if _takes_batches(peer_id) else 1
    pool = (
        ThreadPoolExecutor(max_workers=width, thread_name_prefix="federation-delivery") if width > 1 else None
    )
    flying: dict[Future, list[Outgoing]] = {}
    busy: set = set()  # the ids of the messages in flight
    outcomes: list[str] = []
    probing, stop = True, False
    try:
        while True:
            while not stop and budget > 0 and len(flying) < (1 if probing else width):
                group = _next_batch(peer_id, min(1 if probing else per_request, budget), busy=busy)
                if not group:
                    stop = not flying  # nothing due now; with messages in flight, look again after them
                    break
                budget -= len(group)
                busy.update(row.pk for row in group)
                flying[_start(None if probing else pool, group)] = group  # the head: in this thread
            if not flying:
                return outcomes
            done, _pending = wait(flying, return_when=FIRST_COMPLETED)
            for future in done:
                group = flying.pop(future)
                busy.difference_update(row.pk for row in group)
                result = future.result()
                outcomes += result
                if "failed" in result:
                    stop = True  # the peer is down: the rest of its queue waits behind the failed message
                probing = False
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _start(pool: ThreadPoolExecutor | None, group: list[Outgoing]) -> Future:
    """Post a group in the pool's thread, or here when there is no pool (one request at a time)."""
    if pool is not None:
        return pool.submit(_deliver_group_in_thread, group)
    future: Future = Future()
    future.set_result(_deliver_group(group))
    return future


def concurrency() -> int:
    """How many of a peer's messages one pass posts at once (``FEDERATION_DELIVERY_CONCURRENCY``)."""
    return max(1, int(getattr(settings, "FEDERATION_DELIVERY_CONCURRENCY", 4)))


def _next_batch(peer_id, size: int, *, busy: set = frozenset()) -> list[Outgoing]:
    """The next messages of the peer's queue that may travel together, claimed: in queue order, at most one
    per referral — a referral's messages (its delivery, then its states, notes, withdrawal) go one after the
    other, in order; different referrals' messages, and messages about no referral, are independent. The
    oldest waiting message comes first, and when it is not due yet (the peer was down) nothing goes.
    ``busy``: the ids of this process's messages in flight — skipped, and their referrals' later messages
    too."""
    now = timezone.now()
    window = (
        Outgoing.objects.filter(peer_id=peer_id, state=Outgoing.State.WAITING)
        .select_related("peer")
        .order_by("id")[: size * 4 + len(busy)]
    )
    batch: list[Outgoing] = []
    streams: set = set()
    for row in window:
        if row.pk in busy:
            if row.referral_id is not None:
                streams.add(row.referral_id)
            continue
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


def _deliver_group(rows: list[Outgoing]) -> list[str]:
    """A message alone, or several together: one request (a batch), or more when their bodies would make
    it too large for the peer's door (``services.BATCH_MAX_BODY_BYTES``)."""
    outcomes: list[str] = []
    chunk: list[Outgoing] = []
    size = 0
    for row in rows:
        if chunk and size + len(row.body) > services.BATCH_MAX_BODY_BYTES:
            outcomes += _deliver_chunk(chunk)
            chunk, size = [], 0
        chunk.append(row)
        size += len(row.body)
    return outcomes + _deliver_chunk(chunk)


def _deliver_chunk(rows: list[Outgoing]) -> list[str]:
    return [deliver_one(rows[0])] if len(rows) == 1 else deliver_together(rows)


def _deliver_group_in_thread(rows: list[Outgoing]) -> list[str]:
    from django.db import connection

    try:
        return _deliver_group(rows)
    finally:
        connection.close()  # this worker thread's own connection


def retry_now(peer: Peer) -> int:
    """An operator's nudge (the peer is back): its waiting messages are due at once."""
    return Outgoing.objects.filter(peer=peer, state=Outgoing.State.WAITING).update(next_attempt_at=None)
