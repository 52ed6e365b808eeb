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
import struct
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

#: PostgreSQL's expressions giving a column as the text this encoding takes it (``_text`` accepts both):
#: ``at`` formatted by ``to_char`` as ``_text`` formats it — years 1000–9999; any other is read as a datetime,
#: in the extra last column of :func:`pg_text_columns`, and formatted here — and ``detail``'s JSON text
#: (parsed and re-encoded here: key order and spacing are the encoding's, not jsonb's). Read this way, rows
#: that are only hashed build no UUID, datetime or dict (the verifier's events, the sequencer's queue).
_PG_TEXT = {
    "at": "CASE WHEN at >= '1000-01-01' AND at < '10000-01-01' THEN "
    "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END",
    "detail": "detail::text",
}
_PG_AT_OTHERWISE = "CASE WHEN at < '1000-01-01' OR at >= '10000-01-01' THEN at END"


def pg_text_columns(names, *, id_column: str = "id") -> str:
    """The select list reading ``names`` as this encoding's text (``id`` from ``id_column``, as text), then
    ``at`` itself when ``to_char`` does not give its text; :func:`pg_text_values` reads a row of it."""
    expressions = {"id": f"{id_column}::text", **_PG_TEXT}
    return ", ".join([*(expressions.get(name, name) for name in names), _PG_AT_OTHERWISE])


def pg_text_values(names, row) -> dict:
    """A row selected by :func:`pg_text_columns` → the values by name, ready for this encoding."""
    width = len(names)
    values = dict(zip(names, row[:width], strict=True))
    if values["at"] is None:
        values["at"] = row[width]
    return values


def _text(name: str, value) -> str:
    if name == "at":
        if isinstance(value, str):  # already the text below, formatted by the database (verification)
            return value
        if value.utcoffset():
            value = value.astimezone(UTC)
        if value.year >= 1000:
            # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") (the date, the time, always six digits
            # of microseconds), several times faster: a verification formats every event's time.
            return value.isoformat(timespec="microseconds")[:26] + "Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name == "detail":
        if isinstance(value, str):  # a JSON text (an archived segment, a raw row)
            if value == "{}":  # most events: no detail
                return value
            value = json.loads(value)
        if not value:
            return "{}"
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value if value is not None else "")


def _label(name: str) -> bytes:
    return len(name).to_bytes(2, "big") + name.encode()


#: The length-prefixed names, computed once (the encoding is verified millions of times).
_LABELS = {name: _label(name) for name in ("hash_version", "id", *HASHED_FIELDS)}
_VERSION_2 = _LABELS["hash_version"] + (1).to_bytes(4, "big") + b"2"


#: The columns between ``at`` and ``detail``: plain text, encoded as they are.
_TEXT_FIELDS = HASHED_FIELDS[2:-2]
assert HASHED_FIELDS[:2] == ("sequence", "at") and HASHED_FIELDS[-2:] == ("detail", "prev_hash")
_TEXT_LABELS = tuple((name, _LABELS[name]) for name in _TEXT_FIELDS)
_pack = struct.Struct(">I").pack


def canonical_values(values: dict, version: int = CURRENT_VERSION) -> bytes:
    """The encoding of an event given as a mapping of column name → value: for each field, its name's
    length (2 bytes), its name, its value's length (4 bytes) and its value (UTF-8); version 2 starts with
    the version marker and the id. Written out field by field: it runs millions of times per verification."""
    parts = []
    if version >= 2:
        parts.append(_VERSION_2)
        data = str(values["id"]).encode()
        parts += (_LABELS["id"], _pack(len(data)), data)
    data = str(values["sequence"]).encode()
    parts += (_LABELS["sequence"], _pack(len(data)), data)
    data = _text("at", values["at"]).encode()
    parts += (_LABELS["at"], _pack(len(data)), data)
    for name, label in _TEXT_LABELS:
        value = values[name]
        data = (value if isinstance(value, str) else str(value if value is not None else "")).encode()
        parts += (label, _pack(len(data)), data)
    data = _text("detail", values["detail"]).encode()
    parts += (_LABELS["detail"], _pack(len(data)), data)
    data = str(values["prev_hash"] or "").encode()
    parts += (_LABELS["prev_hash"], _pack(len(data)), data)
    return b"".join(parts)


def canonical(event, version: int = CURRENT_VERSION) -> bytes:
    """The encoding of an ``AuditEvent`` (or any object with its attributes)."""
    names = ("id", *HASHED_FIELDS)
    return canonical_values({name: getattr(event, name) for name in names}, version)


def values_hash(values: dict, version: int = CURRENT_VERSION) -> str:
    # hmac.digest: the one-shot (OpenSSL) HMAC, the same value as hmac.new(...).digest() without the
    # HMAC object; a verification computes it once per event.
    return hmac.digest(settings.AUDIT_HMAC_KEY, canonical_values(values, version), "sha256").hex()


def event_hash(event, version: int = CURRENT_VERSION) -> str:
    return hmac.new(settings.AUDIT_HMAC_KEY, canonical(event, version), hashlib.sha256).hexdigest()
