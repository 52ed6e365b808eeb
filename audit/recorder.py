"""Recording audit events. Services call ``record`` inside their own transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable

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


def _advance_head() -> tuple[int, str]:
    """Take the chain's lock (an UPDATE on the head row) and return the new sequence and previous hash."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    with connection.cursor() as cursor:
        sql = f"UPDATE {table} SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence, last_hash"  # noqa: S608
        cursor.execute(sql)
        row = cursor.fetchone()
    if row is None:
        AuditChainHead.objects.get_or_create(id=1, defaults={"sequence": 0, "last_hash": GENESIS_HASH})
        return _advance_head()
    return int(row[0]), row[1]


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
        actor_institution = actor.institution.code
        ip = ip if ip is not None else actor.ip
        request_id = request_id if request_id is not None else actor.request_id
    institutions = list(institutions)
    if actor_institution:
        institutions.append(actor_institution)
    with transaction.atomic():
        sequence, prev_hash = _advance_head()
        event = AuditEvent(
            sequence=sequence,
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
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event)
        _insert(event)
    return event


def _insert(event: AuditEvent) -> None:
    """INSERT the event and move the head's hash, in plain SQL: the ORM's compiler would double the cost
    of auditing a read (each field is still adapted by its own ``get_db_prep_save``)."""
    fields = AuditEvent._meta.concrete_fields
    ops = connection.ops
    events = ops.quote_name(AuditEvent._meta.db_table)
    head = ops.quote_name(AuditChainHead._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {events} ({columns}) VALUES ({placeholders})", values)  # noqa: S608
        cursor.execute(f"UPDATE {head} SET last_hash = %s WHERE id = 1", [event.hash])  # noqa: S608
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
