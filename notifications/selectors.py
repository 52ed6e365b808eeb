"""Reads for the notifications app (the caller's own rows only)."""

from __future__ import annotations

from .models import Notification, NotificationPreference, WebhookEndpoint

EMAIL_EVENT_TYPES = (
    "referral.requested",
    "referral.status_changed",
    "referral.note_added",
    "referral.overdue",
)


def unread_count(user) -> int:
    """The number of the user's unread in-app notifications (the UI badge)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_for(user):
    return Notification.objects.filter(user=user).order_by("-created_at")


def preferences_for(user) -> dict[str, bool]:
    """``{event_type: email_enabled}`` for every kind of event (absent row = on)."""
    prefs = {t: True for t in EMAIL_EVENT_TYPES}
    for p in NotificationPreference.objects.filter(user=user):
        if p.event_type in prefs:
            prefs[p.event_type] = p.email_enabled
    return prefs


def webhooks_for(institution):
    return WebhookEndpoint.objects.filter(institution=institution).order_by("created_at")
