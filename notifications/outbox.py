"""Writing outbox rows. Services call ``emit`` inside their transaction; delivery happens after commit."""

from __future__ import annotations

from django.db import transaction

from .dispatch import dispatch_after_commit
from .models import OutboxMessage

EVENT_TYPES = (
    "referral.requested",
    "referral.status_changed",
    "referral.note_added",
    "referral.overdue",
    "audit.checkpoint",
)


def emit(*, event_type: str, referral, payload: dict | None = None) -> OutboxMessage:
    """Record an event to announce; ``payload`` holds ids and codes only. Handed to Celery after commit."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    message = OutboxMessage.objects.create(event_type=event_type, referral=referral, payload=payload or {})
    transaction.on_commit(lambda: dispatch_after_commit(message.pk))
    return message
