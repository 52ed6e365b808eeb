"""Signed checkpoints of the audit chain (contract §6.3, §7.3): Ed25519 over ``"{sequence}.{hash}.{at}"``,
and the Merkle root of the first ``tree_size`` events as a C2SP signed note (``audit.notes``).

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

from . import merkle, notes, tree
from .chain import GENESIS_HASH
from .hooks import checkpoint_made
from .models import AuditCheckpoint, AuditCosignature

ALGORITHM = "ed25519"
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class MalformedCheckpoint(ValueError):
    """A checkpoint that is not ``{sequence, hash, at, signature}`` as served (the message names no value)."""


class Inconsistent(RuntimeError):
    """The new tree's root is not consistent with the previous checkpoint's: nothing is signed."""


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


def log_verifier() -> notes.Verifier:
    return notes.Verifier(notes.origin(), notes.ED25519, public_key_bytes())


def public_key_document() -> dict:
    """``{"algorithm": "ed25519", "public_key": <standard base64 of the 32 raw bytes>, "origin", "vkey"}``."""
    verifier = log_verifier()
    return {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(public_key_bytes()).decode("ascii"),
        "origin": verifier.name,
        "vkey": verifier.text,
    }


def sign(sequence: int, hash_: str, at: str) -> str:
    return base64.b64encode(private_key().sign(signed_message(sequence, hash_, at))).decode("ascii")


def cosignatures_of(tree_sizes) -> dict[int, list[AuditCosignature]]:
    """The witnesses' cosignatures of these tree sizes (one query), oldest first."""
    found: dict[int, list[AuditCosignature]] = {}
    for cosignature in AuditCosignature.objects.filter(tree_size__in=list(set(tree_sizes))).order_by("id"):
        found.setdefault(cosignature.tree_size, []).append(cosignature)
    return found


def cosignature_as_served(cosignature: AuditCosignature) -> dict:
    return {"vkey": cosignature.vkey, "signature": cosignature.signature, "at": format_at(cosignature.at)}


def witnesses(served: dict) -> list[dict]:
    """Who cosigned a served checkpoint and when: ``[{"name", "at"}]`` (the name is the vkey's key name)."""
    return [{"name": c["vkey"].split("+", 1)[0], "at": c["at"]} for c in served.get("cosignatures") or ()]


def as_served(checkpoint: AuditCheckpoint, cosignatures: list[AuditCosignature] | None = None) -> dict:
    """The checkpoint as the API, the webhook and ``audit_checkpoint`` give it. A checkpoint signed
    before the tree existed has ``root_hash`` and ``note`` null (its §6.3 signature still verifies)."""
    if cosignatures is None:
        cosignatures = cosignatures_of([checkpoint.sequence]).get(checkpoint.sequence, [])
    if not checkpoint.root_hash:
        cosignatures = []
    return {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "at": format_at(checkpoint.at),
        "signature": checkpoint.signature,
        "tree_size": checkpoint.sequence,
        "root_hash": checkpoint.root_hash or None,
        "note": notes.with_cosignatures(checkpoint.note, cosignatures) if checkpoint.note else None,
        "cosignatures": [cosignature_as_served(c) for c in cosignatures],
    }


def as_checked(checkpoint: AuditCheckpoint) -> dict:
    """What verification reads of a stored checkpoint (``parse``'s shape; no query for cosignatures)."""
    return {
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "at": format_at(checkpoint.at),
        "signature": checkpoint.signature,
        "root_hash": checkpoint.root_hash or None,
        "note": checkpoint.note,
    }


_LEGACY_FIELDS = {"sequence", "hash", "at", "signature"}
_FIELDS = _LEGACY_FIELDS | {"tree_size", "root_hash", "note", "cosignatures"}


def parse(data) -> dict:
    """A served checkpoint, checked for shape (not yet for its signatures); raises ``MalformedCheckpoint``.
    Both shapes are accepted: §6.3's four fields, and §7.3's (``root_hash`` and ``note`` null or not)."""
    if not isinstance(data, dict) or set(data) not in (_LEGACY_FIELDS, _FIELDS):
        raise MalformedCheckpoint("a checkpoint is an object with sequence, hash, at and signature (§6.3)")
    sequence, hash_, at, signature = data["sequence"], data["hash"], data["at"], data["signature"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise MalformedCheckpoint("sequence must be a non-negative integer")
    if not isinstance(hash_, str) or not _HASH.match(hash_):
        raise MalformedCheckpoint("hash must be 64 lower-case hex digits")
    if not isinstance(at, str) or not _AT.match(at):
        raise MalformedCheckpoint("at must be an RFC 3339 UTC time ending in Z")
    if not isinstance(signature, str) or len(signature) > 128:
        raise MalformedCheckpoint("signature must be standard base64")
    parsed = {"sequence": sequence, "hash": hash_, "at": at, "signature": signature, "root_hash": None}
    if "tree_size" in data:
        tree_size = data["tree_size"]
        if not isinstance(tree_size, int) or isinstance(tree_size, bool):
            raise MalformedCheckpoint("tree_size must be an integer")
        parsed["tree_size"] = tree_size
        root_hash, note = data["root_hash"], data["note"]
        if root_hash is not None:
            try:
                root = base64.b64decode(root_hash, validate=True) if isinstance(root_hash, str) else b""
            except (binascii.Error, ValueError):
                root = b""
            if len(root) != 32:
                raise MalformedCheckpoint("root_hash must be the standard base64 of 32 bytes")
            if not isinstance(note, str) or len(note) > 100_000:
                raise MalformedCheckpoint("note must be the checkpoint's signed note")
            parsed["root_hash"], parsed["note"] = root_hash, note
    return parsed


def note_valid(checkpoint: dict, verifier: notes.Verifier | None = None) -> bool:
    """Whether the checkpoint's note carries the log's valid signature over exactly its size and root."""
    if checkpoint.get("root_hash") is None:
        return True
    try:
        opened = notes.open_note(checkpoint["note"], verifier or log_verifier())
    except notes.NoteError:
        return False
    sizes = {opened.tree_size, checkpoint["sequence"], checkpoint.get("tree_size", checkpoint["sequence"])}
    return len(sizes) == 1 and opened.root == base64.b64decode(checkpoint["root_hash"])


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


def _check_consistent(size: int, root: bytes) -> None:
    """Refuse (``Inconsistent``) a root that does not extend the previous checkpoint's (or, for a smaller
    size, that the previous one does not extend): checked with a consistency proof from the stored tree."""
    previous = AuditCheckpoint.objects.exclude(root_hash="").order_by("-id").first()
    if previous is None:
        return
    previous_root = base64.b64decode(previous.root_hash)
    old, new = sorted((previous.sequence, size))
    old_root, new_root = (previous_root, root) if previous.sequence <= size else (root, previous_root)
    try:
        merkle.consistent(old, new, old_root, new_root, tree.consistency_proof(old, new))
    except (merkle.ProofError, tree.TreeError):
        raise Inconsistent("the new root is not consistent with the previous checkpoint") from None


def create(
    *, sequence: int, hash_: str, verified: bool, extension: tree.Extension | None = None
) -> AuditCheckpoint:
    """Sign and store a checkpoint of the chain's head ``(sequence, hash_)`` and of the Merkle root of its
    first ``sequence`` events; tell the receivers of ``audit.hooks.checkpoint_made`` inside the same
    transaction (their outbox row commits with it). Raises ``Inconsistent`` (nothing signed) when the
    root is not consistent with the previous checkpoint's, ``tree.TreeError`` when the events have a gap.
    ``extension``: the tree's new nodes as the verification that precedes it computed them (see
    ``tree.extend``)."""
    if sequence == 0:
        hash_ = GENESIS_HASH
    now = timezone.now().replace(microsecond=0)
    at = format_at(now)
    with transaction.atomic():
        tree.extend(sequence, extension)
        root = tree.root(sequence)
        _check_consistent(sequence, root)
        origin = notes.origin()
        checkpoint = AuditCheckpoint.objects.create(
            sequence=sequence,
            hash=hash_,
            at=now,
            signature=sign(sequence, hash_, at),
            verified_at=timezone.now() if verified else None,
            root_hash=base64.b64encode(root).decode("ascii"),
            note=notes.sign_note(notes.checkpoint_body(origin, sequence, root), private_key(), origin),
        )
        checkpoint_made.send(sender=AuditCheckpoint, checkpoint=as_served(checkpoint, []))
    return checkpoint


def add_cosignature(tree_size: int, vkey: str, signature: str) -> AuditCosignature:
    """Verify a witness's cosignature of the checkpoint of ``tree_size`` and store it (one per witness and
    size: a newer one replaces the older). Raises ``AuditCheckpoint.DoesNotExist`` when no checkpoint has
    that size, ``notes.NoteError`` when it does not verify."""
    checkpoint = AuditCheckpoint.objects.exclude(note="").filter(sequence=tree_size).latest("id")
    body = checkpoint.note.partition("\n\n")[0] + "\n"
    witness, timestamp = notes.verify_cosignature(body, vkey, signature)
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    cosignature, _ = AuditCosignature.objects.update_or_create(
        tree_size=tree_size,
        vkey=witness.text,
        defaults={"signature": signature, "at": moment, "received_at": timezone.now()},
    )
    return cosignature
