"""What the notifications app does with the audit app's news (``audit.hooks``): the audit app imports no
other app; it sends plain signals, and this module turns them into deliveries.

* ``checkpoint_made`` → an ``audit.checkpoint`` outbox row (``data`` = the checkpoint), delivered to every
  webhook subscription that asked for that event type, whatever its institution (contract §6.3).
* ``verification_failed`` → the ``audit.verification_failed`` event (visible to every institution), an
  in-app notification and one e-mail to each active supervisor of every institution.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import get_connection, send_mass_mail
from django.db import transaction
from django.dispatch import receiver

from accounts.choices import Role
from accounts.models import Institution, User
from audit.hooks import checkpoint_made, verification_failed
from audit.recorder import record

from .models import Notification
from .outbox import emit

logger = logging.getLogger(__name__)

CHECKPOINT_EVENT = "audit.checkpoint"
VERIFICATION_FAILED_EVENT = "audit.verification_failed"

EMAIL_SUBJECT = "Alerta: falló la verificación del registro de auditoría / Audit log verification failed"
EMAIL_BODY = """La verificación periódica de la cadena del registro de auditoría falló.
Primer evento incorrecto: secuencia {sequence} (motivo: {reason}).
Ejecute "manage.py verify_audit" y avise al equipo técnico: el registro puede haber sido alterado.

The periodic verification of the audit log's hash chain failed.
First bad event: sequence {sequence} (reason: {reason}).
Run "manage.py verify_audit" and alert the technical team: the log may have been tampered with.
"""


@receiver(checkpoint_made, dispatch_uid="notifications.audit_checkpoint")
def announce_checkpoint(sender, checkpoint: dict, **kwargs) -> None:
    emit(event_type=CHECKPOINT_EVENT, referral=None, payload=dict(checkpoint))


@receiver(verification_failed, dispatch_uid="notifications.audit_verification_failed")
def alert_failed_verification(sender, facts: dict, **kwargs) -> int:
    """Record the failure and alert every active supervisor; returns how many were alerted."""
    with transaction.atomic():
        codes = list(Institution.objects.values_list("code", flat=True))
        record(
            action=VERIFICATION_FAILED_EVENT,
            actor_type="system",
            outcome="failure",
            institutions=codes,
            detail=facts,
        )
        supervisors = list(
            User.objects.filter(role=Role.SUPERVISOR, is_active=True, institution__isnull=False).only(
                "id", "email"
            )
        )
        Notification.objects.bulk_create(
            [
                Notification(
                    user=user,
                    event_type=VERIFICATION_FAILED_EVENT,
                    data={
                        "reference": "",
                        "status": "",
                        "sequence": facts.get("first_bad_sequence"),
                        "cause": facts.get("cause"),
                    },
                )
                for user in supervisors
            ]
        )
    body = EMAIL_BODY.format(sequence=facts.get("first_bad_sequence"), reason=facts.get("cause"))
    # One message per supervisor: no institution learns the other's staff addresses.
    messages = [(EMAIL_SUBJECT, body, settings.DEFAULT_FROM_EMAIL, [u.email]) for u in supervisors if u.email]
    try:
        send_mass_mail(messages, fail_silently=False, connection=get_connection())
    except Exception as exc:  # the in-app notifications and the audit event are already committed
        logger.error("audit alert e-mail not sent (%s)", type(exc).__name__)
    return len(supervisors)
