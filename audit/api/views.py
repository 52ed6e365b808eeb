"""The auditors' API (contract §4, Audit): events visible to the caller's institution, and a CSV export."""

from __future__ import annotations

import csv
import datetime
import json
import re
import uuid

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, renderers
from rest_framework.views import APIView

from accounts.actor import actor_from_request
from accounts.choices import Scope
from accounts.permissions import HasScope
from plumbing.pagination import CursorPagination
from plumbing.problems import ProblemError
from plumbing.query import parse_aware_datetime

from ..recorder import record
from ..selectors import events_visible_to
from .serializers import AuditEventOutput

_OBJECT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CODE = re.compile(r"^[A-Z0-9_]{2,16}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_POSITION = re.compile(r"^[0-9]{1,18}$")

FILTERS = [
    OpenApiParameter(
        "object_id",
        {"type": "string", "pattern": _OBJECT_ID.pattern, "maxLength": 64},
        description="Events on this object (a case's, referral's, note's... id).",
    ),
    OpenApiParameter("actor", OpenApiTypes.UUID, description="Events by this user or API client (its id)."),
    OpenApiParameter(
        "actor_institution",
        {"type": "string", "pattern": _CODE.pattern},
        description="Events whose actor belongs to this institution (its CODE).",
    ),
    OpenApiParameter(
        "action",
        {"type": "string", "pattern": _ACTION.pattern, "maxLength": 64},
        description="One action code, e.g. referral.viewed.",
    ),
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME, description="Events at or after this RFC 3339 time (inclusive)."
    ),
]


def _invalid(name: str, message: str) -> ProblemError:
    return ProblemError("validation-error", 400, "Invalid filter.", {name: [message]})


def parse_filters(params) -> dict:
    """Validated filter values (400 problem+json for any malformed one), as ORM lookups."""
    lookups = {}
    if "object_id" in params:
        value = params["object_id"]
        if not _OBJECT_ID.match(value):
            raise _invalid("object_id", "An id: 1 to 64 letters, digits or _ . : -")
        lookups["object_id"] = value
    if "actor" in params:
        try:
            lookups["actor_id"] = str(uuid.UUID(params["actor"][:64]))
        except ValueError:
            raise _invalid("actor", "The id (a UUID) of a user or API client.") from None
    if "actor_institution" in params:
        value = params["actor_institution"]
        if not _CODE.match(value):
            raise _invalid("actor_institution", "An institution CODE: 2 to 16 of A-Z, 0-9, _.")
        lookups["actor_institution"] = value
    if "action" in params:
        value = params["action"]
        if len(value) > 64 or not _ACTION.match(value):
            raise _invalid("action", "An action code such as referral.viewed.")
        lookups["action"] = value
    if "since" in params:
        since = parse_aware_datetime(params["since"])
        if since is None:
            raise _invalid("since", "An RFC 3339 date-time with a time zone.")
        lookups["at__gte"] = since
    return lookups


def _safe_filters(lookups: dict) -> dict:
    """The filters, for the export's own audit event: codes and ids only, never free text."""
    safe = {}
    for name, value in lookups.items():
        if name == "at__gte":
            safe["since"] = value.isoformat()
        elif name == "object_id" and not _looks_like_id(value):
            safe[name] = "(other)"
        else:
            safe[name] = value
    return safe


def _looks_like_id(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AuditPagination(CursorPagination):
    """Oldest first, by chain position (unique, so the cursor is exact)."""

    ordering = ("sequence",)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not _POSITION.match(cursor.position):
            raise self._invalid()
        return cursor


class AuditView(APIView):
    permission_classes = [HasScope]
    read_scope = Scope.AUDIT_READ

    @property
    def actor(self):
        return actor_from_request(self.request)

    def filtered_events(self):
        return events_visible_to(self.actor).filter(**parse_filters(self.request.query_params))


@extend_schema(tags=["audit"])
class AuditEventList(AuditView, generics.GenericAPIView):
    """Audit events the caller's institution may read, oldest first (scope ``audit:read``).

    Visible: events whose actor belongs to the caller's institution, and events on a case or referral
    the institution owns, sent or received.
    """

    pagination_class = AuditPagination

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[*FILTERS, OpenApiParameter("page_size", int, description="1 to 100 (default 50).")],
        responses={200: AuditEventOutput(many=True)},
    )
    def get(self, request):
        page = self.paginate_queryset(self.filtered_events())
        return self.get_paginated_response(AuditEventOutput(page, many=True).data)


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


CSV_COLUMNS = (
    "id",
    "sequence",
    "at",
    "actor_type",
    "actor_id",
    "actor_institution",
    "action",
    "object_type",
    "object_id",
    "ip",
    "request_id",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
)


class _Echo:
    """A file-like object whose ``write`` returns the line: csv.writer then yields text to stream."""

    def write(self, value):
        return value


def _csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in queryset.iterator(chunk_size=2000):
        yield writer.writerow(
            (
                event.id,
                event.sequence,
                event.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                event.actor_type,
                event.actor_id,
                event.actor_institution,
                event.action,
                event.object_type,
                event.object_id,
                event.ip,
                event.request_id,
                event.outcome,
                json.dumps(event.detail or {}, sort_keys=True, separators=(",", ":")),
                event.hash,
                event.prev_hash,
            )
        )


@extend_schema(tags=["audit"])
class AuditEventExport(AuditView):
    """The same events as the list (same filters and visibility), as one streamed CSV file, oldest first.

    The export is itself recorded (``audit.exported``) before the first row is sent.
    """

    renderer_classes = [CsvRenderer]

    @extend_schema(
        operation_id="audit_events_export",
        parameters=FILTERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV with a header row: " + ", ".join(CSV_COLUMNS) + " (detail as JSON).",
            )
        },
    )
    def get(self, request):
        lookups = parse_filters(request.query_params)
        events = events_visible_to(self.actor).filter(**lookups).order_by("sequence")
        record(
            actor=self.actor,
            action="audit.exported",
            object_type="audit_log",
            institutions=[self.actor.institution],
            detail={"format": "csv", "filters": _safe_filters(lookups)},
        )
        stamp = timezone.now().astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv; charset=utf-8")
        filename = f"audit-events-{self.actor.institution.code}-{stamp}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response
