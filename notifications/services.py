"""Writes for the notifications app: webhook subscriptions, read marks, preferences."""

from __future__ import annotations

import base64
import logging
import secrets

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts import policy
from accounts.actor import system_actor
from audit.recorder import record

from .models import Delivery, Notification, NotificationPreference, WebhookEndpoint
from .selectors import EMAIL_EVENT_TYPES
from .ssrf import UnsafeUrl, check_url

logger = logging.getLogger(__name__)

#: Events a partner may subscribe to (contract §4; ``audit.checkpoint``: §6.3).
WEBHOOK_EVENT_TYPES = (
    "referral.requested",
    "referral.status_changed",
    "referral.note_added",
    "audit.checkpoint",
)


class WebhookInvalid(ValueError):
    """Invalid subscription input; ``errors`` maps a field to messages (no personal data)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid webhook subscription")
        self.errors = errors


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def validate_webhook(*, url, events) -> tuple[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(url, str) or not url or len(url) > 500:
        errors["url"] = ["A URL of at most 500 characters is required."]
    else:
        try:
            check_url(url)
        except UnsafeUrl as exc:
            errors["url"] = [str(exc)]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        errors["events"] = ["A non-empty list of event types is required."]
    else:
        unknown = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
        if unknown:
            errors["events"] = ["Unknown event types; valid: " + ", ".join(WEBHOOK_EVENT_TYPES)]
    if errors:
        raise WebhookInvalid(errors)
    return url, sorted(set(events), key=WEBHOOK_EVENT_TYPES.index)


def _actor(actor, institution):
    """The caller's actor; none means a trusted process inside the installation (a command, a test)."""
    return actor if actor is not None else system_actor(institution)


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("not allowed for this actor")


def webhook_create(*, institution, url, events, actor=None) -> tuple[WebhookEndpoint, str]:
    """Subscribe ``institution``; returns the endpoint and its secret (shown once, never again)."""
    url, events = validate_webhook(url=url, events=events)
    actor = _actor(actor, institution)
    _require(policy.may_manage_webhooks(actor, institution=institution))
    secret = new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            institution=institution, url=url, events=events, secret=secret
        )
        _record_webhook(actor, "webhook.created", endpoint, {"events": events})
    return endpoint, secret


def _record_webhook(actor, action: str, endpoint, detail: dict) -> None:
    """Subscriptions change where events about referrals go: recorded (ids and event codes only)."""
    record(
        actor=actor,
        action=action,
        object_type="webhook",
        object_id=endpoint.pk,
        institutions=[endpoint.institution],
        detail=detail,
    )


def webhook_delete(*, institution, endpoint_id, actor=None) -> bool:
    """Remove one of ``institution``'s subscriptions; False when there is none with that id."""
    actor = _actor(actor, institution)
    _require(policy.may_manage_webhooks(actor, institution=institution))
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(institution=institution, pk=endpoint_id).first()
        if endpoint is None:
            return False
        _record_webhook(actor, "webhook.deleted", endpoint, {})
        endpoint.delete()
    return True


class ReplayRefused(ValueError):
    """Only a delivery that did not succeed is tried again."""


def webhook_replay(*, actor, delivery) -> None:
    """Try a failed or dead webhook delivery again (the same webhook-id: receivers deduplicate); recorded
    as ``webhook.replayed`` (ids only)."""
    from . import relay

    endpoint = delivery.webhook
    _require(endpoint is not None and policy.may_manage_webhooks(actor, endpoint))
    if delivery.state == Delivery.State.SUCCEEDED:
        raise ReplayRefused("only a failed delivery can be replayed")
    with transaction.atomic():
        relay.replay(delivery)
        _record_webhook(actor, "webhook.replayed", endpoint, {"delivery": str(delivery.pk)})


def notify_in_app(*, user, event_type: str, referral, data: dict):
    """An in-app notification for one person (ids, references and codes in ``data`` only)."""
    return Notification.objects.create(user=user, event_type=event_type, referral=referral, data=data)


def alert_supervisors(*, event_type: str, data: dict, subject: str, body: str) -> list:
    """An alert for the people who watch over the system: an in-app notification of ``event_type`` for
    every active supervisor of every institution, and the same e-mail to each one separately (no institution
    learns the other's staff addresses). ``data``, ``subject`` and ``body`` hold codes and facts, never
    personal data. Call it inside the transaction of what is alerted (the notifications commit with it);
    the e-mails go after the commit, so a rollback sends none. Returns the supervisors alerted."""
    from django.conf import settings
    from django.core.mail import get_connection, send_mass_mail

    from accounts.choices import Role
    from accounts.models import User

    active = User.objects.filter(role=Role.SUPERVISOR, is_active=True, institution__isnull=False)
    supervisors = list(active.only("id", "email"))
    Notification.objects.bulk_create(
        [Notification(user=user, event_type=event_type, data=dict(data)) for user in supervisors]
    )
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [u.email]) for u in supervisors if u.email]

    def mail() -> None:
        try:
            send_mass_mail(messages, fail_silently=False, connection=get_connection())
        except Exception as exc:  # noqa: BLE001 — the in-app notifications and the audit event stay
            logger.error("supervisor alert e-mail not sent (%s)", type(exc).__name__)

    if messages:
        transaction.on_commit(mail)
    return supervisors


def notification_mark_read(*, user, notification_id) -> bool:
    updated = Notification.objects.filter(user=user, pk=notification_id, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    return updated > 0 or Notification.objects.filter(user=user, pk=notification_id).exists()


def notification_mark_all_read(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def preferences_update(*, user, preferences: dict[str, bool]) -> None:
    """Set e-mail on/off per kind of event; unknown kinds are refused by the caller."""
    for event_type, enabled in preferences.items():
        if event_type not in EMAIL_EVENT_TYPES:
            raise ValueError("unknown event type")
        NotificationPreference.objects.update_or_create(
            user=user, event_type=event_type, defaults={"email_enabled": bool(enabled)}
        )
