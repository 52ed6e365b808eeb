"""Signed checkpoints of the audit chain (contract §6.3): Ed25519 over ``"{sequence}.{hash}.{at}"``.

A checkpoint states "the log held ``sequence`` events and the last one's hash was ``hash`` at ``at``". It is
signed with ``AUDIT_SIGNING_KEY`` (kept out of the database), served to every institution's auditors and
sent to partners' webhooks: a copy held outside this database is what proves that nothing was cut off the
end of the log, even by someone who can rewrite every table and holds the chain's HMAC key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .chain import GENESIS_HASH
from .hooks import checkpoint_made
from .models import AuditCheckpoint

ALGORITHM = "ed25519"
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class MalformedCheckpoint(ValueError):
    """A checkpoint that is not ``{sequence, hash, at, signature}`` as served (the message names no value)."""


def format_at(moment: datetime) -> str:
    """RFC 3339 UTC with whole seconds and a ``Z``: exactly the text that is signed and served."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_message(sequence: int, hash_: str, at: str) -> bytes:
    return f"{sequence}.{hash_}.{at}".encode()


@functools.lru_cache(maxsize=4)
def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key() -> Ed25519PrivateKey:
    seed = settings.AUDIT_SIGNING_KEY
    if not seed or len(seed) != 32:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY is missing or not a 32-byte key")
    return _private_key(bytes(seed))


def public_key_bytes() -> bytes:
    return private_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_document() -> dict:
    """``{"algorithm": "ed25519", "public_key": <standard base64 of the 32 raw bytes>}``."""
    return {"algorithm": ALGORITHM, "public_key": base64.b64encode(public_key_bytes()).decode("ascii")}


def sign(sequence: int, hash_: str, at: str) -> str:
    return base64.b64encode(private_key().sign(signed_message(sequence, hash_, at))).decode("ascii")


def as_served(checkpoint: AuditCheckpoint) -> dict:
    """The checkpoint as the API, the webhook and ``audit_checkpoint`` give it."""
    return {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "at": format_at(checkpoint.at),
        "signature": checkpoint.signature,
    }


def parse(data) -> dict:
    """A served checkpoint, checked for shape (not yet for its signature); raises ``MalformedCheckpoint``."""
    if not isinstance(data, dict) or set(data) != {"sequence", "hash", "at", "signature"}:
        raise MalformedCheckpoint("a checkpoint is an object with exactly sequence, hash, at and signature")
    sequence, hash_, at, signature = data["sequence"], data["hash"], data["at"], data["signature"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise MalformedCheckpoint("sequence must be a non-negative integer")
    if not isinstance(hash_, str) or not _HASH.match(hash_):
        raise MalformedCheckpoint("hash must be 64 lower-case hex digits")
    if not isinstance(at, str) or not _AT.match(at):
        raise MalformedCheckpoint("at must be an RFC 3339 UTC time ending in Z")
    if not isinstance(signature, str) or len(signature) > 128:
        raise MalformedCheckpoint("signature must be standard base64")
    return {"sequence": sequence, "hash": hash_, "at": at, "signature": signature}


def signature_valid(checkpoint: dict, public_key: bytes | None = None) -> bool:
    """Whether ``signature`` is an Ed25519 signature of ``"{sequence}.{hash}.{at}"`` under the key."""
    try:
        raw = base64.b64decode(checkpoint["signature"], validate=True)
    except (binascii.Error, ValueError):
        return False
    key = Ed25519PublicKey.from_public_bytes(public_key or public_key_bytes())
    try:
        key.verify(raw, signed_message(checkpoint["sequence"], checkpoint["hash"], checkpoint["at"]))
    except InvalidSignature:
        return False
    return True


def latest() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-id").first()


def create(*, sequence: int, hash_: str, verified: bool) -> AuditCheckpoint:
    """Sign and store a checkpoint of the chain's head ``(sequence, hash_)``; tell the receivers of
    ``audit.hooks.checkpoint_made`` inside the same transaction (their outbox row commits with it)."""
    if sequence == 0:
        hash_ = GENESIS_HASH
    now = timezone.now().replace(microsecond=0)
    at = format_at(now)
    with transaction.atomic():
        checkpoint = AuditCheckpoint.objects.create(
            sequence=sequence,
            hash=hash_,
            at=now,
            signature=sign(sequence, hash_, at),
            verified_at=timezone.now() if verified else None,
        )
        checkpoint_made.send(sender=AuditCheckpoint, checkpoint=as_served(checkpoint))
    return checkpoint
