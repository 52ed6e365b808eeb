"""The canonical, length-prefixed encoding and the HMAC of an audit event."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings

GENESIS_HASH = "0" * 64
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


def _text(event, name: str) -> str:
    value = getattr(event, name)
    if name == "at":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name == "detail":
        return json.dumps(value or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value if value is not None else "")


def canonical(event) -> bytes:
    parts = []
    for name in HASHED_FIELDS:
        data = _text(event, name).encode()
        parts.append(len(name).to_bytes(2, "big") + name.encode() + len(data).to_bytes(4, "big") + data)
    return b"".join(parts)


def event_hash(event) -> str:
    return hmac.new(settings.AUDIT_HMAC_KEY, canonical(event), hashlib.sha256).hexdigest()
