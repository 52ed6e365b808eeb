"""Partner API views (contract §3–4): thin — parse, call a selector or service, render."""

from __future__ import annotations

import re

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import directory, hsds
from accounts.actor import actor_from_request
from accounts.choices import Province, Scope, Service
from accounts.models import Institution
from accounts.permissions import HasScope, IsActor
from plumbing.idempotency import run_idempotent
from plumbing.pagination import CursorPagination, OldestFirstCursorPagination
from plumbing.query import StrictQuery, bad_parameter, parse_aware_datetime

from .. import reads, selectors, services, worklists
from ..choices import Status
from ..errors import InvalidInput, NotVisible
from ..lifecycle import TRANSITIONS
from ..models import Case, Note, Referral
from . import serializers as s

PROBLEM = OpenApiResponse(description="RFC 9457 problem details (application/problem+json)")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe creation: the same key and body within 24 h return the first response.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description='The referral\'s ETag (e.g. "3") or *; a stale value → 412 precondition-failed.',
)
ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}


def _validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ApiView(StrictQuery, APIView):
    permission_classes = [HasScope]
    read_scope = Scope.REFERRALS_READ
    write_scope = Scope.REFERRALS_WRITE

    @property
    def actor(self):
        return actor_from_request(self.request)


class InstitutionList(ApiView, generics.ListAPIView):
    """The directory of institutions in the network (any valid token)."""

    permission_classes = [IsActor]
    serializer_class = s.InstitutionOutput
    queryset = Institution.objects.all()

    class pagination_class(CursorPagination):
        ordering = "code"


class OfficeList(ApiView, generics.GenericAPIView):
    """The service directory (contract §7.2): every institution's offices (any valid token)."""

    permission_classes = [IsActor]
    query_parameters = frozenset({"institution", "service", "province", "accepting"})

    class pagination_class(CursorPagination):
        ordering = "id"

    @extend_schema(
        tags=["directory"],
        parameters=[
            OpenApiParameter("institution", str, description="an institution's CODE"),
            OpenApiParameter("service", str, enum=list(Service.values), description="offices offering it"),
            OpenApiParameter("province", str, enum=list(Province.values), description="ISO 3166-2:PA"),
            OpenApiParameter(
                "accepting", str, enum=["true", "false"], description="accepting referrals now (or not)"
            ),
            OpenApiParameter("page_size", int),
        ],
        responses={200: s.OfficeOutput(many=True), 400: PROBLEM, 401: PROBLEM},
    )
    def get(self, request):
        params = request.query_params
        institution = params.get("institution")
        if institution is not None and not re.fullmatch(r"[A-Z0-9_]{2,16}", institution):
            raise bad_parameter("institution", "An institution code (2–16 characters A–Z, 0–9 or _).")
        service = params.get("service")
        if service is not None and service not in Service.values:
            raise bad_parameter("service", "A service code of the contract (§4).")
        province = params.get("province")
        if province is not None and province not in Province.values:
            raise bad_parameter("province", "One of " + ", ".join(Province.values) + ".")
        accepting = params.get("accepting")
        if accepting is not None and accepting not in ("true", "false"):
            raise bad_parameter("accepting", "true or false.")
        today = timezone.localdate()
        queryset = directory.offices(
            institution=institution,
            service=service,
            province=province,
            accepting=None if accepting is None else accepting == "true",
            today=today,
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.OfficeOutput(page, many=True, context={"today": today}).data)


def _objects(description: str, required: list[str]) -> dict:
    return {
        "type": "array",
        "description": description,
        "items": {"type": "object", "required": required, "additionalProperties": True},
    }


#: The shape of the HSDS export; each object is an HSDS 3.0 one (the specification's schemas say the rest).
HSDS_DIRECTORY_SCHEMA = {
    "type": "object",
    "required": ["organizations", "services", "locations", "service_at_locations"],
    "properties": {
        "organizations": _objects("HSDS `organization`: one per institution.", ["id", "name", "description"]),
        "services": _objects(
            "HSDS `service`: one per service an office offers; `temporarily closed` while the office is "
            "not accepting referrals.",
            ["id", "name", "status"],
        ),
        "locations": _objects("HSDS `location`: one per office.", ["id", "location_type"]),
        "service_at_locations": _objects("HSDS `service_at_location`: a service at its office.", ["id"]),
    },
}


class DirectoryHsds(ApiView):
    """The service directory as Open Referral HSDS 3.0 JSON (contract §7.2; any valid token)."""

    permission_classes = [IsActor]
    query_parameters = frozenset()

    @extend_schema(
        tags=["directory"],
        operation_id="directory_hsds",
        responses={200: HSDS_DIRECTORY_SCHEMA, 400: PROBLEM, 401: PROBLEM},
    )
    def get(self, request):
        return Response(hsds.directory())


@extend_schema(tags=["cases"])
class CaseListCreate(ApiView, generics.GenericAPIView):
    """Cases of the caller's institution visible to the caller; exact search by document number."""

    pagination_class = CursorPagination
    query_parameters = frozenset({"document_number"})

    @extend_schema(
        parameters=[
            OpenApiParameter("document_number", str, description="exact, normalized; blind-index search"),
            OpenApiParameter("page_size", int),
        ],
        responses={200: s.CaseListItemOutput(many=True), **ERRORS},
    )
    def get(self, request):
        number = request.query_params.get("document_number")
        if number is not None:
            if len(number) > 64:
                raise bad_parameter("document_number", "At most 64 characters.")
            matches = reads.cases_by_document_number(actor=self.actor, document_number=number)
            queryset = Case.objects.filter(pk__in=[c.pk for c in matches])
        else:
            queryset = selectors.cases_visible_to(self.actor)
        page = self.paginate_queryset(queryset.select_related("institution"))
        return self.get_paginated_response(s.CaseListItemOutput(page, many=True).data)

    @extend_schema(
        request=s.CaseInput, responses={201: s.CaseCreatedOutput, **ERRORS}, parameters=[IDEMPOTENCY_KEY]
    )
    def post(self, request):
        actor = self.actor

        def perform():
            data = _validated(s.CaseInput, request)
            case = services.case_create(actor=actor, subject=data["subject"], summary=data.get("summary", ""))
            return case, status.HTTP_201_CREATED

        def render(case, code, detail=None):
            view = reads.case_read(actor=actor, case=case, detail=detail)
            return Response(_case_created_body(actor, view), status=code)

        def replay(case_id, code):
            return render(reads.fetch_case(actor, case_id), code, {"idempotent_replay": True})

        return run_idempotent(
            request,
            actor=actor,
            object_type="case",
            perform=perform,
            render=render,
            replay=replay,
            unit_of_work=services.unit_of_work,
        )


def _case_created_body(actor, view) -> dict:
    duplicates = []
    if view.subject is not None:
        duplicates = reads.possible_duplicates(
            actor, terms=view.subject, by="possible_duplicates", exclude=view.case.pk
        )
    return s.CaseCreatedOutput(view, context={"possible_duplicates": [m.reference for m in duplicates]}).data


@extend_schema(tags=["cases"])
class CaseDetail(ApiView):
    """One case with its subject (the owner institution only; a read of personal data, audited)."""

    @extend_schema(responses={200: s.CaseOutput, **ERRORS})
    def get(self, request, pk):
        return Response(s.CaseOutput(reads.case_read(actor=self.actor, case_id=pk)).data)


class ReferralPagination(CursorPagination):
    ORDERINGS = {"created_at", "-created_at", "updated_at", "-updated_at"}

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get("ordering", "-created_at")
        if value not in self.ORDERINGS:
            raise bad_parameter("ordering", "One of created_at, -created_at, updated_at, -updated_at.")
        return (value,)


def _referral_response(actor, view, *, code=status.HTTP_200_OK) -> Response:
    response = Response(s.ReferralOutput(view, context={"actor": actor}).data, status=code)
    response["ETag"] = view.referral.etag
    return response


@extend_schema(tags=["referrals"])
class ReferralListCreate(ApiView, generics.GenericAPIView):
    pagination_class = ReferralPagination
    query_parameters = frozenset({"direction", "status", "updated_since", "ordering", "office"})

    @extend_schema(
        parameters=[
            OpenApiParameter("direction", str, enum=["inbound", "outbound"]),
            OpenApiParameter("status", str, description="comma-separated status codes"),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME, description="inclusive"),
            OpenApiParameter(
                "office",
                str,
                description="received referrals held by this office of the caller's institution (its CODE), "
                "or `none`: at the national intake (contract §7.2)",
            ),
            OpenApiParameter(
                "ordering", str, enum=["created_at", "-created_at", "updated_at", "-updated_at"]
            ),
            OpenApiParameter("page_size", int),
        ],
        responses={200: s.ReferralListItemOutput(many=True), **ERRORS},
    )
    def get(self, request):
        actor = self.actor
        params = request.query_params
        direction = params.get("direction")
        if direction is not None and direction not in ("inbound", "outbound"):
            raise bad_parameter("direction", "One of inbound, outbound.")
        queryset = selectors.referrals_visible_to(actor, direction=direction)
        if params.get("status"):
            wanted = [v.strip() for v in params["status"].split(",") if v.strip()]
            bad = [v for v in wanted if v not in Status.values]
            if bad:
                raise bad_parameter("status", "Unknown status: " + ", ".join(v[:40] for v in bad[:5]))
            queryset = queryset.filter(status__in=wanted)
        if params.get("updated_since"):
            since = parse_aware_datetime(params["updated_since"])
            if since is None:
                raise bad_parameter("updated_since", "An RFC 3339 date-time with a time zone.")
            queryset = queryset.filter(updated_at__gte=since)
        office = params.get("office")
        if office is not None:
            if office != worklists.NATIONAL_INTAKE:
                office = directory.office_of(actor.institution.pk, office)
                if office is None:
                    raise bad_parameter("office", "An office code of your institution, or none.")
            queryset = worklists.at_office(actor, queryset, office)
        queryset = queryset.select_related("from_institution", "to_institution", "assignee")
        page = self.paginate_queryset(queryset)
        data = s.ReferralListItemOutput(page, many=True, context={"actor": actor}).data
        return self.get_paginated_response(data)

    @extend_schema(
        request=s.ReferralInput, responses={201: s.ReferralOutput, **ERRORS}, parameters=[IDEMPOTENCY_KEY]
    )
    def post(self, request):
        actor = self.actor

        def perform():
            data = _validated(s.ReferralInput, request)
            try:
                case = reads.fetch_case(actor, data["case"])
            except NotVisible:
                raise InvalidInput({"case": ["Unknown case."]}) from None
            referral = services.referral_create(
                actor=actor,
                case=case,
                to_institution=data["to_institution"],
                services=data["services"],
                urgency=data["urgency"],
                reason=data.get("reason", ""),
                consent=data.get("consent"),
                to_office=data.get("to_office"),
                province=data.get("province") or "",
            )
            return referral, status.HTTP_201_CREATED

        def render(referral, code, detail=None):
            view = reads.referral_read(actor=actor, referral=referral, after_write=True, detail=detail)
            return _referral_response(actor, view, code=code)

        def replay(referral_id, code):
            return render(reads.fetch_referral(actor, referral_id), code, {"idempotent_replay": True})

        return run_idempotent(
            request,
            actor=actor,
            object_type="referral",
            perform=perform,
            render=render,
            replay=replay,
            unit_of_work=services.unit_of_work,
        )


@extend_schema(tags=["referrals"])
class ReferralDetail(ApiView):
    @extend_schema(responses={200: s.ReferralOutput, **ERRORS})
    def get(self, request, pk):
        return _referral_response(self.actor, reads.referral_read(actor=self.actor, referral_id=pk))


class ReferralActionBase(ApiView):
    action_name = ""
    body_field: str | None = None

    def post(self, request, pk):
        actor = self.actor
        # The contract's order — visibility (404), side (403), body (400), status (409), If-Match (412) —
        # is the service's: it reads the body at its place.
        with (
            services.unit_of_work()
        ):  # the write and the read of its response: one transaction, one audit append
            referral = services.referral_transition(
                actor=actor,
                referral_id=pk,
                action=self.action_name,
                if_match=request.headers.get("If-Match"),
                read_body=lambda: _validated(self.input_class, request),
            )
            return _referral_response(
                actor, reads.referral_read(actor=actor, referral=referral, after_write=True)
            )


def _action_view(action: str):
    transition = TRANSITIONS[action]
    if transition.needs == "outcome":
        input_class = s.OutcomeInput
    elif transition.needs == "reason" or transition.optional_reason:
        input_class = s.ReasonInput
    else:
        input_class = s.EmptyInput
    froms = ", ".join(sorted(transition.from_statuses))
    doc = f"`{action}`: {froms} → {transition.to_status} ({transition.side})."

    @extend_schema(
        tags=["referral lifecycle"],
        request=input_class,
        responses={200: s.ReferralOutput, 409: PROBLEM, 412: PROBLEM, **ERRORS},
        parameters=[IF_MATCH],
        operation_id=f"referrals_{action.replace('-', '_')}",
        description=doc,
    )
    def post(self, request, pk):
        return ReferralActionBase.post(self, request, pk)

    return type(
        f"Referral{action.title()}",
        (ReferralActionBase,),
        {"action_name": action, "input_class": input_class, "__doc__": doc, "post": post},
    )


ACTION_VIEWS = {action: _action_view(action) for action in TRANSITIONS}


@extend_schema(tags=["referral lifecycle"])
class ReferralRoute(ApiView):
    """`route` (receiver, any non-terminal status): to another office of the receiving institution, or
    back to its national intake (contract §7.2). Not a status change; not a webhook event."""

    @extend_schema(
        request=s.RouteInput,
        responses={200: s.ReferralOutput, 409: PROBLEM, 412: PROBLEM, **ERRORS},
        parameters=[IF_MATCH],
        operation_id="referrals_route",
    )
    def post(self, request, pk):
        actor = self.actor
        # The contract's order — 404, 403, 400, 409, 412 — is the service's: it reads the body at its place.
        with services.unit_of_work():
            referral = services.referral_route(
                actor=actor,
                referral_id=pk,
                if_match=request.headers.get("If-Match"),
                read_body=lambda: _validated(s.RouteInput, request),
            )
            return _referral_response(
                actor, reads.referral_read(actor=actor, referral=referral, after_write=True)
            )


@extend_schema(tags=["referrals"])
class ReferralEvents(ApiView, generics.GenericAPIView):
    """The timeline, oldest first (the receiver sees it from ``send`` on)."""

    class pagination_class(OldestFirstCursorPagination):
        ordering = ("at", "sequence")

    @extend_schema(
        responses={200: s.EventOutput(many=True), **ERRORS}, parameters=[OpenApiParameter("page_size", int)]
    )
    def get(self, request, pk):
        referral = reads.fetch_referral(self.actor, pk)
        page = self.paginate_queryset(reads.timeline(self.actor, referral))
        return self.get_paginated_response(s.EventOutput(page, many=True).data)


@extend_schema(tags=["referrals"])
class ReferralNotes(ApiView, generics.GenericAPIView):
    """Notes between the two institutions, while the receiver has access."""

    class pagination_class(OldestFirstCursorPagination):
        ordering = ("at", "id")

    @extend_schema(
        responses={200: s.NoteOutput(many=True), **ERRORS}, parameters=[OpenApiParameter("page_size", int)]
    )
    def get(self, request, pk):
        _referral, page = reads.notes_read(actor=self.actor, referral_id=pk, paginate=self.paginate_queryset)
        return self.get_paginated_response([s.note_body(note, note.body) for note in page])

    @extend_schema(
        request=s.NoteInput,
        responses={201: s.NoteOutput, 409: PROBLEM, 412: PROBLEM, **ERRORS},
        parameters=[IDEMPOTENCY_KEY, IF_MATCH],
    )
    def post(self, request, pk):
        actor = self.actor
        reads.fetch_referral(actor, pk)  # 404 before 400

        def perform():
            data = _validated(s.NoteInput, request)
            note = services.note_create(
                actor=actor, referral_id=pk, body=data["body"], if_match=request.headers.get("If-Match")
            )
            return note, status.HTTP_201_CREATED

        def render(note, code, detail=None):
            shown = reads.note_shown_after_write(actor=actor, referral_id=pk, note_id=note.pk, detail=detail)
            if shown is None:
                raise NotVisible()
            return Response(s.note_body(shown, shown.shown_body), status=code)

        def replay(note_id, code):
            return render(Note(pk=note_id), code, {"idempotent_replay": True})

        return run_idempotent(
            request,
            actor=actor,
            object_type="note",
            perform=perform,
            render=render,
            replay=replay,
            unit_of_work=services.unit_of_work,
        )


@extend_schema(tags=["referrals"])
class ConsentWithdraw(ApiView):
    """The person withdrew consent (sender): cancels the referral if open, revokes the receiver."""

    @extend_schema(
        request=s.WithdrawInput,
        responses={200: s.ReferralOutput, 409: PROBLEM, 412: PROBLEM, **ERRORS},
        parameters=[IF_MATCH],
    )
    def post(self, request, pk):
        actor = self.actor
        # The contract's order (404, 403, 400, 409, 412) is the service's: it reads the body at its place.
        with services.unit_of_work():
            referral = services.consent_withdraw(
                actor=actor,
                referral_id=pk,
                if_match=request.headers.get("If-Match"),
                read_body=lambda: _validated(s.WithdrawInput, request),
            )
            return _referral_response(
                actor, reads.referral_read(actor=actor, referral=referral, after_write=True)
            )


__all__ = ["Referral"]
