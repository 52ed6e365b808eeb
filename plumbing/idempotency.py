"""``Idempotency-Key`` on creating POSTs (contract §3).

A key is scoped to the calling API client or user and kept 24 h. The claim is a database row with a
unique constraint, inserted in its own (committed) transaction *before* the work, so duplicates racing
in other threads or processes fail on the constraint. The work and the claim's completion commit in
one transaction: either the object exists and the claim says so, or neither (and a claim left behind
by a crashed process is taken over after ``LEASE``, which is safe because nothing was created).

Nothing of the response is stored but its status code and the created object's type and id; a repeat
is re-rendered from the database (through the caller's selectors, so visibility still applies).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import IdempotencyKey
from plumbing.problems import ProblemError

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
#: An in-flight claim older than this belongs to a request that died: its work was rolled back.
LEASE = timedelta(minutes=5)
_KEY_FORMAT = re.compile(r"^[\x21-\x7e]{1,255}$")
#: One claim in this many also purges expired keys (cheap, bounded, no scheduler needed).
_PURGE_ONE_IN = 200


class KeyReused(ProblemError):
    def __init__(self):
        super().__init__(
            "idempotency-key-reused", 422, "This Idempotency-Key was used with a different request."
        )


class KeyInFlight(ProblemError):
    def __init__(self):
        super().__init__(
            "idempotency-key-in-flight", 409, "A request with this Idempotency-Key is still running."
        )


def principal_of(actor) -> str:
    """``client:<uuid>`` or ``user:<uuid>``: the scope of a key (ids only)."""
    return f"{actor.kind.replace('api_', '')}:{actor.id}"


def _fingerprint_key() -> bytes:
    """A key of its own for request fingerprints, derived from ``SECRET_KEY`` (HKDF-SHA256, a fixed label).

    Derived rather than configured: no new secret to manage, and rotating ``SECRET_KEY`` only makes the
    keys of the last 24 h look "reused with another body" (422) — never a wrong replay.
    """
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rcm idempotency request fingerprint v1"
    ).derive(settings.SECRET_KEY.encode())


def request_hash(method: str, path: str, data) -> str:
    """HMAC-SHA256, under a server key, of the method, the path and the canonical JSON of the parsed body
    (equal JSON = equal fingerprint).

    Keyed on purpose: the body holds personal data, and a plain hash kept 24 h would let anyone holding
    the database confirm a guessed name or document number by hashing candidates.
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    message = f"{method} {path}\n{canonical}".encode()
    return hmac.new(_fingerprint_key(), message, hashlib.sha256).hexdigest()


def key_from(request) -> str | None:
    """The request's Idempotency-Key, or None; a malformed key is a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY_FORMAT.match(key):
        raise ProblemError(
            "validation-error",
            400,
            "The Idempotency-Key header is invalid.",
            {HEADER: ["1 to 255 visible ASCII characters."]},
        )
    return key


def purge_expired(now=None) -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def _claim(principal: str, key: str, digest: str) -> tuple[IdempotencyKey, bool]:
    """Insert the claim (committed at once). Returns (row, True) if ours, (existing row, False) if not."""
    now = timezone.now()
    for _attempt in range(3):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    principal=principal, key=key, request_hash=digest, created_at=now, expires_at=now + TTL
                )
            return row, True
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(principal=principal, key=key).first()
            if existing is None:
                continue  # it expired and was purged in between: try again
            abandoned = existing.state == IdempotencyKey.State.IN_FLIGHT and existing.created_at < now - LEASE
            if existing.expires_at <= now or abandoned:
                # Take over an expired key or a dead request's claim, only if nobody else did first.
                IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
                continue
            return existing, False
    raise KeyInFlight()


def run_idempotent(
    request,
    *,
    actor,
    object_type: str,
    perform: Callable[[], tuple[object, int]],
    render: Callable[[object, int], object],
    replay: Callable[[object, int], object],
    unit_of_work: Callable[[], AbstractContextManager] = nullcontext,
):
    """Run ``perform`` at most once per (caller, key).

    ``perform()`` does the work and returns ``(created object, status code)``; it runs in the same
    transaction as the claim's completion. ``render(obj, status)`` builds the response of the first
    request, in the same ``unit_of_work()`` (the core's: one transaction, one append of audit events);
    ``replay(object_id, status)`` re-renders it from the database for a repeat.
    """
    key = key_from(request)
    if key is None:
        with unit_of_work():
            obj, code = perform()
            return render(obj, code)
    digest = request_hash(request.method, request.path, request.data)
    principal = principal_of(actor)
    if random.randrange(_PURGE_ONE_IN) == 0:  # noqa: S311 - load spreading, not security
        purge_expired()
    row, ours = _claim(principal, key, digest)
    if not ours:
        if row.request_hash != digest:
            raise KeyReused()
        if row.state != IdempotencyKey.State.DONE:
            raise KeyInFlight()
        return replay(row.object_id, row.status_code)
    try:
        with transaction.atomic(), unit_of_work():
            obj, code = perform()
            IdempotencyKey.objects.filter(pk=row.pk).update(
                state=IdempotencyKey.State.DONE, status_code=code, object_type=object_type, object_id=obj.pk
            )
            return render(obj, code)
    except BaseException:
        # Errors are not remembered: the work was rolled back, so a retry may run it again.
        IdempotencyKey.objects.filter(pk=row.pk, state=IdempotencyKey.State.IN_FLIGHT).delete()
        raise
