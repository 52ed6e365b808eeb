"""The canonical, length-prefixed encoding and the HMAC of an audit event.

Two versions of the encoding exist. Version 1 (the events written before the event ``id`` was covered)
hashes ``HASHED_FIELDS``; version 2 (every event written since) hashes a version marker, the ``id`` and
the same fields. A version-2 encoding can never equal a version-1 one (it starts with another field name),
so a hash says which version made it; the verifier accepts version 1 only until the first version-2 event
(see ``audit.verification`` and docs/audit.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings

GENESIS_HASH = "0" * 64
CURRENT_VERSION = 2
HASHED_FIELDS = (
    "sequence",
    "at",
    "actor_type",
    "actor_id",
    "actor_label",
    "actor_institution",
    "action",
    "object_type",
    "object_id",
    "case_id",
    "institutions",
    "ip",
    "request_id",
    "outcome",
    "detail",
    "prev_hash",
)
#: Every column a verifier reads (the hashed ones, the id and the stored hash).
ROW_FIELDS = ("id", *HASHED_FIELDS, "hash")


def _text(name: str, value) -> str:
    if name == "at":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name == "detail":
        if isinstance(value, str):  # a JSON text (an archived segment, a raw row)
            value = json.loads(value)
        return json.dumps(value or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value if value is not None else "")


def _part(name: str, text: str) -> bytes:
    data = text.encode()
    return len(name).to_bytes(2, "big") + name.encode() + len(data).to_bytes(4, "big") + data


def canonical_values(values: dict, version: int = CURRENT_VERSION) -> bytes:
    """The encoding of an event given as a mapping of column name → value."""
    parts = [_part("hash_version", "2"), _part("id", str(values["id"]))] if version >= 2 else []
    parts += [_part(name, _text(name, values[name])) for name in HASHED_FIELDS]
    return b"".join(parts)


def canonical(event, version: int = CURRENT_VERSION) -> bytes:
    """The encoding of an ``AuditEvent`` (or any object with its attributes)."""
    names = ("id", *HASHED_FIELDS)
    return canonical_values({name: getattr(event, name) for name in names}, version)


def values_hash(values: dict, version: int = CURRENT_VERSION) -> str:
    return hmac.new(settings.AUDIT_HMAC_KEY, canonical_values(values, version), hashlib.sha256).hexdigest()


def event_hash(event, version: int = CURRENT_VERSION) -> str:
    return hmac.new(settings.AUDIT_HMAC_KEY, canonical(event, version), hashlib.sha256).hexdigest()
