"""Notifications and webhooks API (contract §4). API clients have no in-app notifications: 403."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actor import actor_from_request
from accounts.choices import Scope
from accounts.permissions import HasScope, IsActor
from plumbing.pagination import OldestFirstCursorPagination
from plumbing.problems import ProblemError
from plumbing.query import StrictQuery

from .. import selectors, services
from ..models import Delivery
from . import serializers as s

PROBLEM = OpenApiResponse(description="RFC 9457 problem details (application/problem+json)")
ERRORS = {400: PROBLEM, 401: PROBLEM, 403: PROBLEM, 404: PROBLEM}


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound() from None


def _user(request):
    actor = actor_from_request(request)
    if actor.user is None:
        raise exceptions.PermissionDenied("In-app notifications are for staff users, not API clients.")
    return actor.user


def _notification(n):
    return {
        "id": str(n.id),
        "event_type": n.event_type,
        "referral_id": str(n.referral_id) if n.referral_id else None,
        "reference": n.data.get("reference", ""),
        "status": n.data.get("status", ""),
        "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
    }


class NotificationList(StrictQuery, APIView):
    permission_classes = [IsActor]

    @extend_schema(operation_id="notifications_list", responses={200: s.NotificationListSerializer, **ERRORS})
    def get(self, request):
        user = _user(request)
        items = list(selectors.notifications_for(user)[:100])
        return Response(
            {"results": [_notification(n) for n in items], "unread": selectors.unread_count(user)}
        )


class NotificationRead(StrictQuery, APIView):
    permission_classes = [IsActor]

    @extend_schema(operation_id="notifications_read", request=None, responses={204: None, **ERRORS})
    def post(self, request, pk):
        if not services.notification_mark_read(user=_user(request), notification_id=_uuid(pk)):
            raise exceptions.NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationReadAll(StrictQuery, APIView):
    permission_classes = [IsActor]

    @extend_schema(
        operation_id="notifications_read_all", request=None, responses={200: s.MarkedSerializer, **ERRORS}
    )
    def post(self, request):
        return Response({"marked": services.notification_mark_all_read(user=_user(request))})


class Preferences(StrictQuery, APIView):
    permission_classes = [IsActor]

    @extend_schema(
        operation_id="notifications_preferences_retrieve", responses={200: s.PreferencesSerializer, **ERRORS}
    )
    def get(self, request):
        return Response({"email": selectors.preferences_for(_user(request))})

    @extend_schema(
        operation_id="notifications_preferences_update",
        request=s.PreferencesSerializer,
        responses={200: s.PreferencesSerializer, **ERRORS},
    )
    def put(self, request):
        user = _user(request)
        data = request.data.get("email") if isinstance(request.data, dict) else None
        if not isinstance(data, dict) or not all(
            k in selectors.EMAIL_EVENT_TYPES and isinstance(v, bool) for k, v in data.items()
        ):
            raise ProblemError(
                "validation-error",
                400,
                'Send {"email": {event_type: true|false}}.',
                {"email": ["Keys: " + ", ".join(selectors.EMAIL_EVENT_TYPES) + "; values: booleans."]},
            )
        services.preferences_update(user=user, preferences=data)
        return Response({"email": selectors.preferences_for(user)})


class WebhookView(StrictQuery, APIView):
    permission_classes = [HasScope]
    read_scope = Scope.WEBHOOKS_MANAGE
    write_scope = Scope.WEBHOOKS_MANAGE

    @property
    def actor(self):
        return actor_from_request(self.request)

    def endpoint(self, pk):
        endpoint = selectors.webhooks_for(self.actor.institution).filter(pk=_uuid(pk)).first()
        if endpoint is None:
            raise exceptions.NotFound()
        return endpoint


_TIME = serializers.DateTimeField()


def _endpoint(e):
    """Times as every other time of the API: RFC 3339 in UTC, ``Z``."""
    return {
        "id": str(e.id),
        "url": e.url,
        "events": e.events,
        "created_at": _TIME.to_representation(e.created_at),
        "disabled_at": _TIME.to_representation(e.disabled_at) if e.disabled_at else None,
    }


class WebhookList(WebhookView, generics.GenericAPIView):
    """The institution's subscriptions, oldest first, in the standard list shape (cursor-paginated)."""

    pagination_class = OldestFirstCursorPagination

    @extend_schema(operation_id="webhooks_list", responses={200: s.WebhookListSerializer, **ERRORS})
    def get(self, request):
        page = self.paginate_queryset(selectors.webhooks_for(self.actor.institution))
        return self.get_paginated_response([_endpoint(e) for e in page])

    @extend_schema(
        operation_id="webhooks_create",
        request=s.WebhookCreateSerializer,
        responses={201: s.WebhookCreatedSerializer, **ERRORS},
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        unknown = sorted(set(data) - {"url", "events"})
        if unknown:
            raise ProblemError(
                "validation-error", 400, "Unknown fields.", {k: ["Unknown field."] for k in unknown}
            )
        try:
            endpoint, secret = services.webhook_create(
                institution=self.actor.institution,
                url=data.get("url"),
                events=data.get("events"),
                actor=self.actor,
            )
        except services.WebhookInvalid as exc:
            raise ProblemError("validation-error", 400, "Invalid webhook subscription.", exc.errors) from None
        return Response(
            {"id": str(endpoint.id), "url": endpoint.url, "events": endpoint.events, "secret": secret},
            status=status.HTTP_201_CREATED,
        )


class WebhookDetail(WebhookView):
    @extend_schema(operation_id="webhooks_retrieve", responses={200: s.WebhookSerializer, **ERRORS})
    def get(self, request, pk):
        return Response(_endpoint(self.endpoint(pk)))

    @extend_schema(operation_id="webhooks_destroy", responses={204: None, **ERRORS})
    def delete(self, request, pk):
        if not services.webhook_delete(
            institution=self.actor.institution, endpoint_id=_uuid(pk), actor=self.actor
        ):
            raise exceptions.NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


def _delivery(d):
    return {
        "id": str(d.id),
        "event_type": d.outbox.event_type,
        "referral_id": str(d.outbox.referral_id) if d.outbox.referral_id else None,
        "state": d.state,
        "attempts": [
            {
                "at": a.at.isoformat(),
                "succeeded": a.succeeded,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in d.attempt_log.all()
        ],
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }


class WebhookDeliveries(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_list", responses={200: s.DeliveryListSerializer, **ERRORS}
    )
    def get(self, request, pk):
        endpoint = self.endpoint(pk)
        qs = (
            Delivery.objects.filter(webhook=endpoint)
            .select_related("outbox")
            .prefetch_related("attempt_log")
            .order_by("-created_at")[:100]
        )
        return Response({"results": [_delivery(d) for d in qs]})


class WebhookReplay(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_replay", request=None, responses={202: s.ReplaySerializer, **ERRORS}
    )
    def post(self, request, pk, delivery_id):
        endpoint = self.endpoint(pk)
        delivery = Delivery.objects.filter(webhook=endpoint, pk=_uuid(delivery_id)).first()
        if delivery is None:
            raise exceptions.NotFound()
        try:
            services.webhook_replay(actor=self.actor, delivery=delivery)
        except services.ReplayRefused:
            raise ProblemError(
                "validation-error", 400, "Only a failed delivery can be replayed.", {}
            ) from None
        return Response({"id": str(delivery.id), "state": "pending"}, status=status.HTTP_202_ACCEPTED)
