"""The auditors' API (contract §4, Audit): events visible to the caller's institution, and a CSV export."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, renderers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actor import actor_from_request
from accounts.choices import Scope
from accounts.permissions import HasScope
from plumbing.pagination import CursorPagination
from plumbing.problems import ProblemError
from plumbing.query import StrictQuery, parse_aware_datetime

from .. import proofs
from ..checkpoints import as_served, cosignatures_of, public_key_document
from ..exports import CSV_COLUMNS, export_csv
from ..selectors import EventFilters, checkpoints, events_filtered, latest_checkpoint
from .serializers import (
    AuditCheckpointKeyOutput,
    AuditCheckpointOutput,
    AuditConsistencyProofOutput,
    AuditCosignatureInput,
    AuditCosignatureOutput,
    AuditEventOutput,
    AuditInclusionProofOutput,
)

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


def parse_filters(params) -> EventFilters:
    """Validated filter values (400 problem+json for any malformed one)."""
    values = {}
    if "object_id" in params:
        value = params["object_id"]
        if not _OBJECT_ID.match(value):
            raise _invalid("object_id", "An id: 1 to 64 letters, digits or _ . : -")
        values["object_ids"] = (value,)
    if "actor" in params:
        try:
            values["actor_id"] = str(uuid.UUID(params["actor"][:64]))
        except ValueError:
            raise _invalid("actor", "The id (a UUID) of a user or API client.") from None
    if "actor_institution" in params:
        value = params["actor_institution"]
        if not _CODE.match(value):
            raise _invalid("actor_institution", "An institution CODE: 2 to 16 of A-Z, 0-9, _.")
        values["actor_institution"] = value
    if "action" in params:
        value = params["action"]
        if len(value) > 64 or not _ACTION.match(value):
            raise _invalid("action", "An action code such as referral.viewed.")
        values["actions"] = (value,)
    if "since" in params:
        since = parse_aware_datetime(params["since"])
        if since is None:
            raise _invalid("since", "An RFC 3339 date-time with a time zone.")
        values["since"] = since
    return EventFilters(**values)


def _safe_filters(filters: EventFilters) -> dict:
    """The filters, for the export's own audit event: codes and ids only, never free text."""
    safe = {}
    if filters.object_ids:
        value = filters.object_ids[0]
        safe["object_id"] = value if _looks_like_id(value) else "(other)"
    if filters.actor_id:
        safe["actor_id"] = filters.actor_id
    if filters.actor_institution:
        safe["actor_institution"] = filters.actor_institution
    if filters.actions:
        safe["action"] = filters.actions[0]
    if filters.since is not None:
        safe["since"] = filters.since.isoformat()
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


class AuditView(StrictQuery, APIView):
    permission_classes = [HasScope]
    read_scope = Scope.AUDIT_READ
    query_parameters = frozenset()

    @property
    def actor(self):
        return actor_from_request(self.request)

    def filtered_events(self):
        return events_filtered(self.actor, parse_filters(self.request.query_params))


@extend_schema(tags=["audit"])
class AuditEventList(AuditView, generics.GenericAPIView):
    """Audit events the caller's institution may read, oldest first (scope ``audit:read``).

    Visible: events whose actor belongs to the caller's institution, and events on a case or referral
    the institution owns, sent or received.
    """

    pagination_class = AuditPagination
    query_parameters = frozenset({"object_id", "actor", "actor_institution", "action", "since"})

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


@extend_schema(tags=["audit"])
class AuditEventExport(AuditView):
    """The same events as the list (same filters and visibility), as one streamed CSV file, oldest first.

    The export is itself recorded (``audit.exported``) before the first row is sent.
    """

    renderer_classes = [CsvRenderer]
    query_parameters = frozenset({"object_id", "actor", "actor_institution", "action", "since"})

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
        filters = parse_filters(request.query_params)
        events = events_filtered(self.actor, filters)
        return export_csv(actor=self.actor, events=events, filters=_safe_filters(filters))


class CheckpointPagination(AuditPagination):
    """Oldest first, by creation (the id; unique, so the cursor is exact)."""

    ordering = ("id",)


@extend_schema(tags=["audit"])
class AuditCheckpointList(AuditView, generics.GenericAPIView):
    """Every signed checkpoint of the audit chain, oldest first (scope ``audit:read``; contract §6.3).

    Checkpoints reveal only the log's length: every institution's auditors see all of them. Keep a copy:
    ``manage.py verify_audit --checkpoints FILE`` proves with it that the log was not cut or rewritten.
    """

    pagination_class = CheckpointPagination
    query_parameters = frozenset()

    @extend_schema(
        operation_id="audit_checkpoints_list",
        parameters=[OpenApiParameter("page_size", int, description="1 to 100 (default 50).")],
        responses={200: AuditCheckpointOutput(many=True)},
    )
    def get(self, request):
        page = self.paginate_queryset(checkpoints())
        cosigned = cosignatures_of(c.sequence for c in page)
        return self.get_paginated_response([as_served(c, cosigned.get(c.sequence, [])) for c in page])


def _answer(ask, *args, status: int = 200) -> Response:
    """The core's answer, or its refusal as problem+json (400 naming the parameters, 404, 503 when the
    stored tree no longer covers a signed size)."""
    try:
        return Response(ask(*args), status=status)
    except proofs.InvalidRequest as exc:
        raise ProblemError("validation-error", 400, exc.detail, exc.errors) from None
    except proofs.NotFound as exc:
        raise ProblemError("not-found", 404, str(exc)) from None
    except proofs.TreeUnavailable as exc:
        raise ProblemError("audit-tree-unavailable", 503, str(exc)) from None


@extend_schema(tags=["audit"])
class AuditCheckpointLatest(AuditView):
    """The latest signed checkpoint (what a witness cosigns; scope ``audit:read``); 404 before the first."""

    @extend_schema(operation_id="audit_checkpoints_latest", responses={200: AuditCheckpointOutput})
    def get(self, request):
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise ProblemError("not-found", 404, "No checkpoint has been signed yet.")
        return Response(as_served(checkpoint))


@extend_schema(tags=["audit"])
class AuditCosignatureCreate(AuditView):
    """A witness's C2SP tlog-cosignature of the checkpoint of this tree size (scope ``audit:read``;
    contract §7.3): verified, then stored and carried in the checkpoint's note. 400 when it does not
    verify, 404 when no checkpoint has that tree size."""

    write_scope = Scope.AUDIT_READ

    @extend_schema(
        operation_id="audit_checkpoint_cosign",
        request=AuditCosignatureInput,
        responses={201: AuditCosignatureOutput},
    )
    def post(self, request, tree_size: int):
        return _answer(proofs.cosign, tree_size, request.data, status=201)


@extend_schema(tags=["audit"])
class AuditInclusionProof(AuditView):
    """RFC 9162 inclusion proof of an event the caller may see in the tree of ``tree_size`` leaves (at
    most the latest checkpoint's); leaf *i* is the event with sequence *i + 1*."""

    query_parameters = frozenset({"event", "tree_size"})

    @extend_schema(
        operation_id="audit_proofs_inclusion",
        parameters=[
            OpenApiParameter("event", OpenApiTypes.UUID, required=True, description="The event's id."),
            OpenApiParameter("tree_size", int, required=True, description="A signed tree size."),
        ],
        responses={200: AuditInclusionProofOutput},
    )
    def get(self, request):
        return _answer(proofs.inclusion, self.actor, request.query_params)


@extend_schema(tags=["audit"])
class AuditConsistencyProof(AuditView):
    """RFC 9162 consistency proof between the trees of ``from`` and ``to`` leaves (``to`` at most the latest
    checkpoint's tree size)."""

    query_parameters = frozenset({"from", "to"})

    @extend_schema(
        operation_id="audit_proofs_consistency",
        parameters=[
            OpenApiParameter("from", int, required=True, description="The older tree size."),
            OpenApiParameter("to", int, required=True, description="The newer tree size."),
        ],
        responses={200: AuditConsistencyProofOutput},
    )
    def get(self, request):
        return _answer(proofs.consistency, request.query_params)


@extend_schema(tags=["audit"])
class AuditCheckpointKey(AuditView):
    """The public key that verifies the checkpoints' signatures (Ed25519; scope ``audit:read``)."""

    query_parameters = frozenset()

    @extend_schema(operation_id="audit_checkpoints_key", responses={200: AuditCheckpointKeyOutput})
    def get(self, request):
        return Response(public_key_document())
