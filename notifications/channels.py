"""Channels: in-app rows, e-mail (Spanish/English templates) and Standard Webhooks v1 deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation

from plumbing.outbound import hardened_post

from .models import Notification
from .ssrf import UnsafeUrl, check_url


def facts(outbox) -> dict:
    """The non-personal facts of an event: ids, reference, status, action, institution codes."""
    referral = outbox.referral
    payload = outbox.payload or {}
    status = payload.get("to_status") or (
        "requested" if outbox.event_type == "referral.requested" else (referral.status if referral else "")
    )
    return {
        "referral_id": str(referral.pk) if referral else None,
        "reference": referral.reference if referral else "",
        "status": status,
        "action": payload.get("action", ""),
        "actor_institution": payload.get("actor_institution", ""),
    }


def link(outbox) -> str:
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    return f"{site}/referrals/{outbox.referral_id}/" if outbox.referral_id else site + "/"


def deliver_in_app(delivery, user) -> None:
    Notification.objects.get_or_create(
        user=user,
        outbox=delivery.outbox,
        defaults={
            "event_type": delivery.outbox.event_type,
            "referral_id": delivery.outbox.referral_id,
            "data": facts(delivery.outbox),
        },
    )


#: Status codes → their label in the active language; registered by the referrals app at start-up
#: (``register_status_labels``), so that notifications never import referral code.
_status_labels = None


def register_status_labels(labels) -> None:
    global _status_labels
    _status_labels = labels


def _status_label(code: str) -> str:
    """The status in the reader's language ("Solicitada"), the code itself if unknown."""
    return str(_status_labels(code)) if _status_labels is not None else code


def render_email(outbox, user) -> tuple[str, str]:
    language = user.language if user.language in ("es", "en") else "es"
    context = {**facts(outbox), "event_type": outbox.event_type, "link": link(outbox)}
    with translation.override(language):
        context["status_label"] = _status_label(context["status"])
        subject = render_to_string(f"notifications/email_subject.{language}.txt", context).strip()
        body = render_to_string(f"notifications/email_body.{language}.txt", context)
    return " ".join(subject.split()), body


def deliver_email(delivery, user) -> None:
    subject, body = render_email(delivery.outbox, user)
    send_mail(subject, body, None, [user.email], fail_silently=False)


def webhook_body(outbox) -> bytes:
    if outbox.event_type == "audit.checkpoint":  # data = the checkpoint as served (§6.3, §7.3)
        data = dict(outbox.payload)
    else:
        f = facts(outbox)
        data = {"referral_id": f["referral_id"], "reference": f["reference"], "status": f["status"]}
    body = {
        "type": outbox.event_type,
        "timestamp": outbox.created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


class WebhookFailed(Exception):
    def __init__(self, error: str, status_code: int | None = None):
        super().__init__(error)
        self.error = error
        self.status_code = status_code


def http_post(url: str, *, data: bytes, headers: dict, timeout: float):
    """POST through the hardened client (``check_url`` stays the first, explanatory, check); private and
    loopback targets only with ``WEBHOOK_ALLOW_PRIVATE_URLS`` (development)."""
    return hardened_post(
        url,
        data=data,
        headers=headers,
        timeout=timeout,
        allow_private=bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_URLS", False)),
        user_agent="referral-case-manager-webhooks/1",
    )


def deliver_webhook(delivery) -> int:
    """POST the signed event; returns the status code, raises WebhookFailed (no URL, no body in it)."""
    endpoint = delivery.webhook
    try:
        check_url(endpoint.url)
    except UnsafeUrl as exc:
        raise WebhookFailed(f"refused: {exc}") from None
    body = webhook_body(delivery.outbox)
    timestamp = int(time.time())
    msg_id = f"msg_{delivery.pk.hex}"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, msg_id, timestamp, body),
        "user-agent": "referral-case-manager-webhooks/1",
    }
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        response = http_post(endpoint.url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise WebhookFailed(type(exc).__name__) from None
    if not 200 <= response.status_code < 300:
        raise WebhookFailed(f"HTTP {response.status_code}", response.status_code)
    return response.status_code
