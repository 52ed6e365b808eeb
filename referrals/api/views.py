"""Partner API views (contract §3–4): thin — parse, call a selector or service, render."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actor import actor_from_request
from accounts.choices import Scope
from accounts.models import Institution
from accounts.permissions import HasScope, IsActor
from audit.recorder import record
from config.pagination import CursorPagination, OldestFirstCursorPagination

from .. import selectors, services
from ..choices import Side, Status
from ..errors import InvalidInput, NotVisible
from ..lifecycle import TRANSITIONS
from ..models import Case, Note, Referral, ReferralEvent
from . import serializers as s

PROBLEM = OpenApiResponse(description="RFC 9457 problem details (application/problem+json)")
ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}


def _validated(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ApiView(APIView):
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


@extend_schema(tags=["cases"])
class CaseListCreate(ApiView, generics.GenericAPIView):
    """Cases of the caller's institution visible to the caller; exact search by document number."""

    pagination_class = CursorPagination

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
                raise InvalidInput({"document_number": ["At most 64 characters."]})
            matches = selectors.find_cases_by_document_number(self.actor, number)
            record(
                actor=self.actor,
                action="case.searched",
                object_type="case",
                institutions=[self.actor.institution],
                detail={"by": "document_number", "matches": len(matches)},
            )
            queryset = Case.objects.filter(pk__in=[c.pk for c in matches])
        else:
            queryset = selectors.cases_visible_to(self.actor)
        page = self.paginate_queryset(queryset.select_related("institution"))
        return self.get_paginated_response(s.CaseListItemOutput(page, many=True).data)

    @extend_schema(request=s.CaseInput, responses={201: s.CaseCreatedOutput, **ERRORS})
    def post(self, request):
        data = _validated(s.CaseInput, request)
        case = services.case_create(
            actor=self.actor, subject=data["subject"], summary=data.get("summary", "")
        )
        subject = data["subject"]
        duplicates = selectors.possible_duplicates(
            self.actor,
            given_name=subject.get("given_name"),
            family_name=subject.get("family_name"),
            date_of_birth=subject.get("date_of_birth"),
            exclude=case,
        )
        body = s.CaseCreatedOutput(
            case, context={"possible_duplicates": [c.reference for c in duplicates]}
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["cases"])
class CaseDetail(ApiView):
    """One case with its subject (the owner institution only; a read of personal data, audited)."""

    @extend_schema(responses={200: s.CaseOutput, **ERRORS})
    def get(self, request, pk):
        case = selectors.get_case(self.actor, pk)
        body = s.CaseOutput(case).data
        record(
            actor=self.actor,
            action="case.viewed",
            object_type="case",
            object_id=case.pk,
            case_id=case.pk,
            institutions=[case.institution],
        )
        return Response(body)


class ReferralPagination(CursorPagination):
    ORDERINGS = {"created_at", "-created_at", "updated_at", "-updated_at"}

    def get_ordering(self, request, queryset, view):
        value = request.query_params.get("ordering", "-created_at")
        if value not in self.ORDERINGS:
            raise InvalidInput({"ordering": ["One of created_at, -created_at, updated_at, -updated_at."]})
        return (value,)


def _referral_body(actor, referral) -> dict:
    personal = selectors.can_see_personal(actor, referral)
    return s.ReferralOutput(referral, context={"actor": actor, "personal": personal}).data


def _referral_response(actor, referral, *, code=status.HTTP_200_OK) -> Response:
    response = Response(_referral_body(actor, referral), status=code)
    response["ETag"] = referral.etag
    return response


def _record_view(actor, referral) -> None:
    record(
        actor=actor,
        action="referral.viewed",
        object_type="referral",
        object_id=referral.pk,
        case_id=referral.case_id,
        institutions=[referral.from_institution, referral.to_institution],
        detail={"side": selectors.side_of(actor, referral)},
    )


@extend_schema(tags=["referrals"])
class ReferralListCreate(ApiView, generics.GenericAPIView):
    pagination_class = ReferralPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("direction", str, enum=["inbound", "outbound"]),
            OpenApiParameter("status", str, description="comma-separated status codes"),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME, description="inclusive"),
            OpenApiParameter(
                "ordering", str, enum=["created_at", "-created_at", "updated_at", "-updated_at"]
            ),
            OpenApiParameter("page_size", int),
        ],
        responses={200: s.ReferralListItemOutput(many=True), **ERRORS},
    )
    def get(self, request):
        actor = self.actor
        queryset = selectors.referrals_visible_to(actor)
        params = request.query_params
        direction = params.get("direction")
        if direction == "inbound":
            queryset = queryset.filter(to_institution=actor.institution)
        elif direction == "outbound":
            queryset = queryset.filter(from_institution=actor.institution)
        elif direction is not None:
            raise InvalidInput({"direction": ["One of inbound, outbound."]})
        if params.get("status"):
            wanted = [v.strip() for v in params["status"].split(",") if v.strip()]
            bad = [v for v in wanted if v not in Status.values]
            if bad:
                raise InvalidInput({"status": ["Unknown status: " + ", ".join(v[:40] for v in bad[:5])]})
            queryset = queryset.filter(status__in=wanted)
        if params.get("updated_since"):
            since = (
                parse_datetime(params["updated_since"].replace(" ", "+"))
                if len(params["updated_since"]) < 40
                else None
            )
            if since is None or since.tzinfo is None:
                raise InvalidInput({"updated_since": ["An RFC 3339 date-time with a time zone."]})
            queryset = queryset.filter(updated_at__gte=since)
        queryset = queryset.select_related("from_institution", "to_institution", "assignee")
        page = self.paginate_queryset(queryset)
        data = s.ReferralListItemOutput(page, many=True, context={"actor": actor}).data
        return self.get_paginated_response(data)

    @extend_schema(request=s.ReferralInput, responses={201: s.ReferralOutput, **ERRORS})
    def post(self, request):
        data = _validated(s.ReferralInput, request)
        actor = self.actor
        try:
            case = selectors.get_case(actor, data["case"])
        except NotVisible:
            raise InvalidInput({"case": ["Unknown case."]}) from None
        referral = services.referral_create(
            actor=actor,
            case=case,
            to_institution=data["to_institution"],
            services=data["services"],
            urgency=data["urgency"],
            reason=data.get("reason", ""),
            consent=data["consent"],
        )
        referral = selectors.get_referral(actor, referral.pk)
        return _referral_response(actor, referral, code=status.HTTP_201_CREATED)


@extend_schema(tags=["referrals"])
class ReferralDetail(ApiView):
    @extend_schema(responses={200: s.ReferralOutput, **ERRORS})
    def get(self, request, pk):
        referral = selectors.get_referral(self.actor, pk)
        response = _referral_response(self.actor, referral)
        if selectors.can_see_personal(self.actor, referral):
            _record_view(self.actor, referral)
        else:
            record(
                actor=self.actor,
                action="referral.metadata_viewed",
                object_type="referral",
                object_id=referral.pk,
                case_id=referral.case_id,
                institutions=[referral.from_institution, referral.to_institution],
            )
        return response


class ReferralActionBase(ApiView):
    action_name = ""
    body_field: str | None = None

    def post(self, request, pk):
        data = _validated(self.input_class, request)
        referral = services.referral_transition(
            actor=self.actor,
            referral_id=pk,
            action=self.action_name,
            reason=data.get("reason"),
            outcome=data.get("outcome"),
            if_match=request.headers.get("If-Match"),
        )
        referral = selectors.get_referral(self.actor, referral.pk)
        return _referral_response(self.actor, referral)


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
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False)],
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


@extend_schema(tags=["referrals"])
class ReferralEvents(ApiView, generics.GenericAPIView):
    """The timeline, oldest first (the receiver sees it from ``send`` on)."""

    class pagination_class(OldestFirstCursorPagination):
        ordering = ("at", "sequence")

    @extend_schema(
        responses={200: s.EventOutput(many=True), **ERRORS}, parameters=[OpenApiParameter("page_size", int)]
    )
    def get(self, request, pk):
        referral = selectors.get_referral(self.actor, pk)
        events = ReferralEvent.objects.filter(referral=referral).select_related("actor_institution")
        if selectors.side_of(self.actor, referral) == Side.RECEIVER:
            events = events.exclude(action="create")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.EventOutput(page, many=True).data)


@extend_schema(tags=["referrals"])
class ReferralNotes(ApiView, generics.GenericAPIView):
    """Notes between the two institutions, while the receiver has access."""

    class pagination_class(OldestFirstCursorPagination):
        ordering = ("at", "id")

    def _referral_with_access(self, pk):
        referral = selectors.get_referral(self.actor, pk)
        if not selectors.can_see_personal(self.actor, referral):
            from ..errors import Forbidden

            raise Forbidden("Your institution no longer has access to this referral's notes.")
        return referral

    @extend_schema(
        responses={200: s.NoteOutput(many=True), **ERRORS}, parameters=[OpenApiParameter("page_size", int)]
    )
    def get(self, request, pk):
        referral = self._referral_with_access(pk)
        notes = Note.objects.filter(referral=referral).select_related("author_institution", "referral__case")
        page = self.paginate_queryset(notes)
        for note in page:
            note.referral = referral  # share the case (and its unwrapped key) across the page
        body = s.NoteOutput(page, many=True).data
        record(
            actor=self.actor,
            action="note.viewed",
            object_type="referral",
            object_id=referral.pk,
            case_id=referral.case_id,
            institutions=[referral.from_institution, referral.to_institution],
            detail={"count": len(page)},
        )
        return self.get_paginated_response(body)

    @extend_schema(request=s.NoteInput, responses={201: s.NoteOutput, **ERRORS})
    def post(self, request, pk):
        data = _validated(s.NoteInput, request)
        note = services.note_create(actor=self.actor, referral_id=pk, body=data["body"])
        return Response(s.NoteOutput(note).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["referrals"])
class ConsentWithdraw(ApiView):
    """The person withdrew consent (sender): cancels the referral if open, revokes the receiver."""

    @extend_schema(request=s.WithdrawInput, responses={200: s.ReferralOutput, 409: PROBLEM, **ERRORS})
    def post(self, request, pk):
        data = _validated(s.WithdrawInput, request)
        referral = services.consent_withdraw(
            actor=self.actor, referral_id=pk, reason=data.get("reason") or ""
        )
        referral = selectors.get_referral(self.actor, referral.pk)
        return _referral_response(self.actor, referral)


__all__ = ["Referral"]
