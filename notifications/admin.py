"""Notifications in the Django admin: webhook subscriptions (never their secrets) and deliveries."""

from __future__ import annotations

from django.contrib import admin

from accounts.actor import operator_actor
from accounts.admin import ReadOnlyAdmin

from . import services
from .models import Delivery, OutboxMessage, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Subscriptions are created in the web UI (the signing secret is shown there once); an operator may
    remove one that misbehaves."""

    list_display = ["url", "institution", "created_at", "disabled_at", "consecutive_failures"]
    list_filter = ["institution"]
    search_fields = ["url"]
    fields = ["id", "institution", "url", "events", "created_at", "disabled_at", "consecutive_failures"]
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def delete_model(self, request, obj):
        """Removed by the notifications service, recorded as ``webhook.deleted`` as the API's delete is."""
        services.webhook_delete(
            institution=obj.institution, endpoint_id=obj.pk, actor=operator_actor(request, obj.institution)
        )

    def delete_queryset(self, request, queryset):
        """The "delete selected" action: one service call (and one event) per subscription."""
        for endpoint in queryset.select_related("institution"):
            self.delete_model(request, endpoint)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["event_type", "referral", "state", "attempts", "created_at", "processed_at"]
    list_filter = ["state", "event_type"]
    list_select_related = ["referral"]
    fields = ["id", "event_type", "referral", "state", "attempts", "created_at", "processed_at"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["outbox", "channel", "state", "attempts", "next_attempt_at", "created_at", "delivered_at"]
    list_filter = ["channel", "state"]
    fields = [
        "id",
        "outbox",
        "channel",
        "target",
        "webhook",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    readonly_fields = fields
