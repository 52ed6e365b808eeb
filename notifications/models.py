"""The transactional outbox: rows written in the same transaction as the change they announce."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """One domain event to announce (ids only, never personal data)."""

    class State(models.TextChoices):
        PENDING = "pending"
        DISPATCHED = "dispatched"
        DONE = "done"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    referral = models.ForeignKey("referrals.Referral", on_delete=models.CASCADE, related_name="+", null=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
