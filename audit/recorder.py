"""Recording audit events. Services call ``record`` inside their own transaction; the event is queued
there and sealed into the chain by the sequencer (``audit.sequencer``)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from contextlib import contextmanager

from django.utils import timezone

from . import sequencer
from .models import AuditEvent

logger = logging.getLogger(__name__)

_FORBIDDEN_DETAIL_KEYS = {
    "given_name",
    "family_name",
    "date_of_birth",
    "document_number",
    "phone",
    "email",
    "current_location",
    "protection_needs",
    "summary",
    "reason",
    "status_reason",
    "outcome",
    "body",
    "password",
    "token",
}


def _codes(institutions: Iterable) -> str:
    codes = sorted({getattr(i, "code", i) for i in institutions if i})
    return "," + ",".join(codes) + "," if codes else ""


def _check_detail(detail: dict) -> dict:
    bad = _FORBIDDEN_DETAIL_KEYS.intersection(detail)
    if bad:
        raise ValueError("audit details must not carry personal data: " + ", ".join(sorted(bad)))
    return detail


_batching = threading.local()


@contextmanager
def batch():
    """Events recorded inside are queued together when the block ends: one multi-row INSERT, whatever
    their number. Use it inside the transaction of
    the work the events describe (a service), so that they commit or roll back with it. Nested batches
    join the outermost one; an exception discards the batch (its transaction rolls back anyway)."""
    if getattr(_batching, "events", None) is not None:
        yield
        return
    _batching.events = []
    try:
        yield
        events = _batching.events
    finally:
        _batching.events = None
    if events:
        _append(events)


def record(
    *,
    actor=None,
    action: str,
    object_type: str = "",
    object_id="",
    case_id="",
    institutions: Iterable = (),
    outcome: str = "success",
    detail: dict | None = None,
    ip: str | None = None,
    request_id: str | None = None,
    actor_type: str | None = None,
    actor_id: str = "",
    actor_label: str = "",
    actor_institution: str = "",
) -> AuditEvent:
    """Queue one event for the chain (joins the caller's transaction if there is one: it commits or rolls
    back with the work it describes). The sequencer seals it — gives it its ``sequence`` and ``hash`` —
    within a second of the commit (at once, in the same transaction, when ``AUDIT_SEAL_INLINE``)."""
    if actor is not None:
        actor_type = actor.kind
        actor_id = str(actor.id)
        actor_label = actor.label
        actor_institution = getattr(actor, "audit_institution_code", None)
        if actor_institution is None:
            actor_institution = actor.institution.code
        ip = ip if ip is not None else actor.ip
        request_id = request_id if request_id is not None else actor.request_id
        if getattr(actor, "operator", False):
            # A superuser in the Django admin: the door is named (besides Django's own admin history).
            detail = {"via": "django-admin", **(detail or {})}
    institutions = list(institutions)
    if actor_institution:
        institutions.append(actor_institution)
    # Positional, in the model's field order (as ``Model.from_db`` builds instances; the order is the chain's
    # ``ROW_FIELDS``, pinned by tests/audit/test_append_path.py): a third of the cost of keyword arguments,
    # on every audited request.
    event = AuditEvent(
        uuid.uuid4(),  # id
        None,  # sequence: the sequencer's
        timezone.now(),  # at
        actor_type or "system",
        actor_id,
        actor_label[:160],
        actor_institution,
        action,
        object_type,
        str(object_id or ""),
        str(case_id or ""),
        _codes(institutions),
        (ip or "")[:64],
        (request_id or "")[:64],
        outcome,
        _check_detail(detail or {}),
        "",  # prev_hash: the sequencer's
        "",  # hash: the sequencer's
    )
    pending = getattr(_batching, "events", None)
    if pending is not None:
        pending.append(event)
    else:
        _append([event])
    return event


def _append(events: list[AuditEvent]) -> None:
    """Queue ``events`` inside the caller's transaction (no lock shared with any other request); the
    sequencer gives them their sequence and hashes (``audit.sequencer``)."""
    sequencer.enqueue(events)


def record_refused_token(*, request, reason: str, client=None) -> None:
    """A refused bearer token (never the token itself)."""
    record(
        action="auth.token_refused",
        actor_type="api_client" if client else "anonymous",
        actor_id=str(client.pk) if client else "",
        actor_label=f"api:{client.name}" if client else "",
        actor_institution=client.institution.code if client else "",
        outcome="denied",
        detail={"cause": reason, "path": request.path[:200]},
        ip=request.META.get("REMOTE_ADDR"),
        request_id=getattr(request, "request_id", ""),
    )
