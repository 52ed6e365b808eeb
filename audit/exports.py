"""The one audit CSV export, shared by the API (``/api/v1/audit/events/export/``) and the web
(``/audit/export.csv``): same columns, same recorded ``audit.exported`` event, the project's one CSV writer
(formula cells neutralised)."""

from __future__ import annotations

import datetime
import json

from plumbing.csv_writer import csv_response

from .recorder import record

CSV_COLUMNS = (
    "id",
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
    "ip",
    "request_id",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
)
EXPORT_OBJECT_TYPE = "audit_log"


def _row(event) -> tuple:
    return (
        event.id,
        event.sequence,
        event.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        event.actor_type,
        event.actor_id,
        event.actor_label,
        event.actor_institution,
        event.action,
        event.object_type,
        event.object_id,
        event.case_id,
        event.ip,
        event.request_id,
        event.outcome,
        json.dumps(event.detail or {}, sort_keys=True, separators=(",", ":")),
        event.hash,
        event.prev_hash,
    )


def export_csv(*, actor, events, filters: dict):
    """Record ``audit.exported`` (with the filters: codes and ids only), then stream ``events`` oldest first.

    The event is recorded before the first row is read, so the export lists itself when it matches.
    """
    record(
        actor=actor,
        action="audit.exported",
        object_type=EXPORT_OBJECT_TYPE,
        institutions=[actor.institution],
        detail={"format": "csv", "filters": filters},
    )
    rows = (_row(event) for event in events.order_by("sequence").iterator(chunk_size=2000))
    return csv_response(f"audit-events-{actor.institution.code}", CSV_COLUMNS, rows)
