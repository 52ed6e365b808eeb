"""The outbox relay: after-commit hand-off to Celery, fan-out into deliveries, delivery with retries, sweep.

Everything here takes and logs ids only. Retries are kept in the database (``Delivery.next_attempt_at``)
so a lost broker message is picked up by the sweep, and no web request ever waits on a retry.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import Role
from accounts.models import User, works_for_office_q

from . import channels
from .dispatch import broker_enabled, dispatch_after_commit, enqueue_delivery  # noqa: F401
from .models import (
    Delivery,
    DeliveryAttempt,
    NotificationPreference,
    OutboxMessage,
    SlaReminder,
    WebhookEndpoint,
)
from .outbox import emit

logger = logging.getLogger(__name__)


def setting(name: str, default):
    return getattr(settings, name, default)


# --- fan-out --------------------------------------------------------------------------------------


def _receiving_staff(referral, roles) -> list[User]:
    """The receiving institution's staff who may know of the referral (contract §7.2): its national staff
    and the staff of the office holding it (an installation without offices: all of them)."""
    return list(
        User.objects.filter(
            works_for_office_q(referral.to_office_id),
            institution_id=referral.to_institution_id,
            role__in=roles,
            is_active=True,
        )
    )


def _sender_side(referral) -> list[User]:
    case = referral.case
    users = {u.pk: u for u in case.collaborators.filter(is_active=True)}
    if case.owner_id and case.owner.is_active:
        users[case.owner_id] = case.owner
    return list(users.values())


def _receiver_side(referral) -> list[User]:
    if referral.assignee_id and referral.assignee.is_active:
        return [referral.assignee]
    return _receiving_staff(referral, [Role.CASEWORKER])


def recipients(outbox) -> list[User]:
    """The users to tell (in-app, and e-mail unless they turned it off)."""
    referral = outbox.referral
    if referral is None:
        return []
    event = outbox.event_type
    if event == "referral.requested":
        users = _receiving_staff(referral, [Role.CASEWORKER, Role.SUPERVISOR])
    elif event == "referral.overdue":
        users = _receiving_staff(referral, [Role.CASEWORKER, Role.SUPERVISOR]) + _sender_side(referral)
    else:
        actor_code = (outbox.payload or {}).get("actor_institution")
        users = []
        if actor_code != referral.from_institution.code:
            users += _sender_side(referral)
        if actor_code != referral.to_institution.code and referral.sent_at is not None:
            users += _receiver_side(referral)
    unique = {}
    for u in users:
        unique[u.pk] = u
    return list(unique.values())


def webhook_targets(outbox) -> list[WebhookEndpoint]:
    if outbox.event_type == "audit.checkpoint":  # every institution keeps every checkpoint (§6.3)
        endpoints = WebhookEndpoint.objects.filter(disabled_at__isnull=True)
        return [e for e in endpoints if outbox.event_type in (e.events or [])]
    referral = outbox.referral
    if referral is None or outbox.event_type == "referral.overdue":
        return []
    institutions = []
    if outbox.event_type != "referral.requested":
        institutions.append(referral.from_institution_id)
    if referral.sent_at is not None:
        institutions.append(referral.to_institution_id)
    endpoints = WebhookEndpoint.objects.filter(institution_id__in=institutions, disabled_at__isnull=True)
    return [e for e in endpoints if outbox.event_type in (e.events or [])]


def fan_out(outbox) -> list[Delivery]:
    """Create the delivery rows (unique per outbox/channel/target: running twice adds nothing)."""
    wanted = []
    users = recipients(outbox)
    off = set(
        NotificationPreference.objects.filter(
            user__in=users, event_type=outbox.event_type, email_enabled=False
        ).values_list("user_id", flat=True)
    )
    for user in users:
        wanted.append((Delivery.Channel.IN_APP, str(user.pk), None))
        if user.email and user.pk not in off:
            wanted.append((Delivery.Channel.EMAIL, str(user.pk), None))
    for endpoint in webhook_targets(outbox):
        wanted.append((Delivery.Channel.WEBHOOK, str(endpoint.pk), endpoint))
    deliveries = []
    for channel, target, webhook in wanted:
        delivery, _ = Delivery.objects.get_or_create(
            outbox=outbox, channel=channel, target=target, defaults={"webhook": webhook}
        )
        deliveries.append(delivery)
    return deliveries


def process_outbox(outbox_id) -> int:
    """Claim one outbox row (skip it if another worker holds it), fan it out, enqueue its deliveries."""
    with transaction.atomic():
        outbox = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=outbox_id)
            .exclude(state=OutboxMessage.State.DONE)
            .first()
        )
        if outbox is None:
            return 0
        outbox.attempts += 1
        deliveries = fan_out(outbox)
        outbox.state = OutboxMessage.State.DONE
        outbox.processed_at = timezone.now()
        outbox.save(update_fields=["state", "attempts", "processed_at"])
        pending = [d.pk for d in deliveries if d.state == Delivery.State.PENDING]
    for delivery_id in pending:
        if broker_enabled():
            enqueue_delivery(delivery_id)
        else:
            deliver(delivery_id)
    return len(pending)


# --- delivery -------------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: base·2^(n−1), capped, times a random factor in [0.5, 1]."""
    base = float(settings.NOTIFICATIONS_RETRY_BASE_SECONDS)
    cap = float(settings.NOTIFICATIONS_RETRY_MAX_SECONDS)
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 — jitter, not a secret


def max_attempts() -> int:
    return int(settings.NOTIFICATIONS_MAX_ATTEMPTS)


def deliver(delivery_id) -> str:
    """Try one delivery once. Idempotent: a succeeded or dead delivery is left alone.

    The row is locked for the try, so two workers never send the same delivery at once.
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("outbox", "outbox__referral", "webhook")
            .filter(pk=delivery_id, state__in=[Delivery.State.PENDING, Delivery.State.RETRYING])
            .first()
        )
        if delivery is None:
            return "skipped"
        if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
            return "not-due"
        started = timezone.now()
        error, status_code = "", None
        try:
            if delivery.channel == Delivery.Channel.WEBHOOK:
                if delivery.webhook is None or delivery.webhook.disabled_at is not None:
                    delivery.state = Delivery.State.DEAD
                    delivery.last_error = "endpoint removed or disabled"
                    delivery.save(update_fields=["state", "last_error"])
                    return "dead"
                status_code = channels.deliver_webhook(delivery)
            else:
                user = User.objects.filter(pk=delivery.target, is_active=True).first()
                if user is None:
                    delivery.state = Delivery.State.DEAD
                    delivery.last_error = "recipient inactive"
                    delivery.save(update_fields=["state", "last_error"])
                    return "dead"
                if delivery.channel == Delivery.Channel.IN_APP:
                    channels.deliver_in_app(delivery, user)
                else:
                    channels.deliver_email(delivery, user)
        except channels.WebhookFailed as exc:
            error, status_code = exc.error[:200], exc.status_code
        except Exception as exc:  # noqa: BLE001 — any failure is recorded by type only
            error = type(exc).__name__[:200]
        duration = int((timezone.now() - started).total_seconds() * 1000)
        delivery.attempts += 1
        if delivery.channel == Delivery.Channel.WEBHOOK:
            DeliveryAttempt.objects.create(
                delivery=delivery,
                succeeded=not error,
                status_code=status_code,
                error=error,
                duration_ms=duration,
            )
        if not error:
            delivery.state = Delivery.State.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.last_error = ""
            delivery.next_attempt_at = None
            delivery.save()
            if delivery.webhook_id:
                WebhookEndpoint.objects.filter(pk=delivery.webhook_id).update(consecutive_failures=0)
            return "succeeded"
        delivery.last_error = error
        if delivery.webhook_id:
            _count_failure(delivery.webhook_id)
        if delivery.attempts >= max_attempts():
            delivery.state = Delivery.State.DEAD
            delivery.next_attempt_at = None
            delivery.save()
            logger.warning("delivery %s dead after %s attempts", delivery.pk, delivery.attempts)
            return "dead"
        delay = backoff_seconds(delivery.attempts)
        delivery.state = Delivery.State.RETRYING
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save()
    logger.info("delivery %s failed (%s); retry in %.0f s", delivery_id, error, delay)
    enqueue_delivery(delivery_id, countdown=delay)
    return "retrying"


def _count_failure(endpoint_id) -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.consecutive_failures += 1
    if endpoint.disabled_at is None and endpoint.consecutive_failures >= int(
        settings.WEBHOOK_DISABLE_AFTER_FAILURES
    ):
        endpoint.disabled_at = timezone.now()
        logger.warning(
            "webhook endpoint %s disabled after %s failures", endpoint.pk, endpoint.consecutive_failures
        )
    endpoint.save(update_fields=["consecutive_failures", "disabled_at"])


def replay(delivery) -> None:
    """A failed or dead webhook delivery is tried again (the same webhook-id: receivers deduplicate)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        state=Delivery.State.PENDING, next_attempt_at=None, attempts=0
    )
    if broker_enabled():
        transaction.on_commit(lambda: enqueue_delivery(delivery.pk))


# --- sweep ----------------------------------------------------------------------------------------


def sweep(limit: int = 200) -> dict:
    """Relay outbox rows the broker missed and deliveries whose retry is due (skip-locked claims)."""
    grace = timedelta(
        seconds=float(setting("NOTIFICATIONS_SWEEP_GRACE_SECONDS", 5 if broker_enabled() else 0))
    )
    now = timezone.now()
    outbox_ids = list(
        OutboxMessage.objects.exclude(state=OutboxMessage.State.DONE)
        .filter(created_at__lte=now - grace)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    relayed = 0
    for outbox_id in outbox_ids:
        process_outbox(outbox_id)
        relayed += 1
    due = list(
        Delivery.objects.filter(state__in=[Delivery.State.PENDING, Delivery.State.RETRYING])
        .filter(Q(next_attempt_at__isnull=True, created_at__lte=now - grace) | Q(next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        deliver(delivery_id)
    return {"outbox": relayed, "deliveries": len(due)}


# --- SLA ------------------------------------------------------------------------------------------


#: Where the SLA check finds the overdue referrals: registered by the referrals app at start-up
#: (``register_overdue_source``), so that notifications never import referral models.
_overdue_source = None


def register_overdue_source(source) -> None:
    """``source(limit)`` → the referrals past ``response_due_at`` still unanswered, most overdue first
    (objects with ``pk``, ``status`` and ``response_due_at``)."""
    global _overdue_source
    _overdue_source = source


def sla_reminders(limit: int = 500) -> int:
    """Referrals past ``response_due_at`` and still unanswered: one ``referral.overdue`` each, once."""
    if _overdue_source is None:
        return 0
    overdue = _overdue_source(limit)
    sent = 0
    for referral in overdue:
        try:
            with transaction.atomic():
                SlaReminder.objects.create(referral=referral, due_at=referral.response_due_at)
                emit(
                    event_type="referral.overdue",
                    referral=referral,
                    payload={"to_status": referral.status, "due_at": referral.response_due_at.isoformat()},
                )
                sent += 1
        except IntegrityError:
            continue
    return sent
