"""Recording audit events. Services call ``record`` inside their own transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from .chain import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent

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


def _advance_head(count: int = 1) -> tuple[int, str]:
    """Take the chain's lock (an UPDATE on the head row), move it ``count`` events on, and return the new
    last sequence and the previous hash."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        sql = f"UPDATE {table} SET sequence = sequence + %s WHERE id = 1 RETURNING sequence, last_hash"  # noqa: S608
        cursor.execute(sql, [count])
        row = cursor.fetchone()
    if row is None:
        AuditChainHead.objects.get_or_create(id=1, defaults={"sequence": 0, "last_hash": GENESIS_HASH})
        return _advance_head(count)
    return int(row[0]), row[1]


_batching = threading.local()
#: Rows per INSERT: well under SQLite's limit of bound parameters, whatever its build.
_ROWS_PER_INSERT = 40


@contextmanager
def batch():
    """Events recorded inside are appended together when the block ends: one lock of the head, one
    multi-row INSERT, one update of the head — whatever their number. Use it inside the transaction of
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
    """Append one event to the chain (atomically; joins the caller's transaction if there is one)."""
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
    event = AuditEvent(
        at=timezone.now(),
        actor_type=actor_type or "system",
        actor_id=actor_id,
        actor_label=actor_label[:160],
        actor_institution=actor_institution,
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        case_id=str(case_id or ""),
        institutions=_codes(institutions),
        ip=(ip or "")[:64],
        request_id=(request_id or "")[:64],
        outcome=outcome,
        detail=_check_detail(detail or {}),
    )
    pending = getattr(_batching, "events", None)
    if pending is not None:
        pending.append(event)
    else:
        _append([event])
    return event


def _append(events: list[AuditEvent]) -> None:
    """Chain ``events`` after the head and write them: 3 statements for any number of events, inside the
    caller's transaction (no savepoint of its own), or in one of their own."""
    with transaction.atomic(savepoint=False):
        last, prev_hash = _advance_head(len(events))
        for sequence, event in enumerate(events, start=last - len(events) + 1):
            event.sequence = sequence
            event.prev_hash = prev_hash
            event.hash = prev_hash = event_hash(event)
        _insert(events)


def _insert(events: list[AuditEvent]) -> None:
    """INSERT the events and move the head's hash, in plain SQL: the ORM's compiler would double the cost
    of auditing a read (each field is still adapted by its own ``get_db_prep_save``)."""
    fields = AuditEvent._meta.concrete_fields
    ops = connection.ops
    table = ops.quote_name(AuditEvent._meta.db_table)
    head = ops.quote_name(AuditChainHead._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    move_head = f"UPDATE {head} SET last_hash = %s WHERE id = 1"  # noqa: S608
    # PostgreSQL runs the last INSERT and the head's move as one statement (a data-modifying WITH: one
    # round trip less on every audited request); SQLite has no such statement and takes two.
    together = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        starts = range(0, len(events), _ROWS_PER_INSERT)
        for start in starts:
            chunk = events[start : start + _ROWS_PER_INSERT]
            values = [f.get_db_prep_save(getattr(e, f.attname), connection) for e in chunk for f in fields]
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))}"  # noqa: S608
            if together and start == starts[-1]:
                cursor.execute(f"WITH inserted AS ({sql}) {move_head}", [*values, events[-1].hash])
                break
            cursor.execute(sql, values)
        else:
            cursor.execute(move_head, [events[-1].hash])
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias


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
