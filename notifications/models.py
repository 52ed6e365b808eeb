"""Notifications: the transactional outbox, per-channel deliveries, in-app notifications, webhooks.

No model here holds personal data: ids, references, status codes and institution codes only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """One domain event to announce, written in the same transaction as the change it announces."""

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


class Notification(models.Model):
    """An in-app notification for one user (the UI badge counts the unread ones)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    outbox = models.ForeignKey(
        OutboxMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event_type = models.CharField(max_length=64)
    referral = models.ForeignKey("referrals.Referral", on_delete=models.CASCADE, null=True, related_name="+")
    #: Non-personal facts to render the message: reference, status, action, institution codes.
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "outbox"], name="one_notification_per_user_and_event")
        ]


class NotificationPreference(models.Model):
    """Per-user e-mail preference for one kind of event (absent row = e-mail on)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)
    email_enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event_type"], name="one_preference_per_event")
        ]


class WebhookEndpoint(models.Model):
    """A partner system's subscription; the signing secret is kept only to sign (never shown again)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    institution = models.ForeignKey("accounts.Institution", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=80, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    disabled_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at"]


class Delivery(models.Model):
    """One outbox message on one channel to one target: the idempotency unit of delivery."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        IN_APP = "in_app"
        WEBHOOK = "webhook"

    class State(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        RETRYING = "retrying"
        DEAD = "dead"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    outbox = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    #: user id (e-mail, in-app) or webhook endpoint id.
    target = models.CharField(max_length=64)
    webhook = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["outbox", "channel", "target"], name="one_delivery_per_channel_target"
            )
        ]


class DeliveryAttempt(models.Model):
    """One try of a delivery (the webhook delivery log)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]


class SlaReminder(models.Model):
    """One overdue reminder per referral and due date: the row makes each reminder go out once."""

    referral = models.ForeignKey("referrals.Referral", on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["referral", "due_at"], name="one_reminder_per_due_date")
        ]
