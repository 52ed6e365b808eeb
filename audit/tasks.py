"""Periodic verification of the audit chain (scheduled by beat: ``audit.tasks.verify_audit_chain``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import get_connection, send_mass_mail
from django.db import transaction

from .recorder import record
from .verification import verify_chain

logger = logging.getLogger(__name__)

EVENT_TYPE = "audit.verification_failed"

EMAIL_SUBJECT = "Alerta: falló la verificación del registro de auditoría / Audit log verification failed"
EMAIL_BODY = """La verificación periódica de la cadena del registro de auditoría falló.
Primer evento incorrecto: secuencia {sequence} (motivo: {reason}).
Ejecute "manage.py verify_audit" y avise al equipo técnico: el registro puede haber sido alterado.

The periodic verification of the audit log's hash chain failed.
First bad event: sequence {sequence} (reason: {reason}).
Run "manage.py verify_audit" and alert the technical team: the log may have been tampered with.
"""


@shared_task(name="audit.tasks.verify_audit_chain", acks_late=True)
def verify_audit_chain() -> dict:
    """Re-compute the chain; on failure, record ``audit.verification_failed`` and alert every supervisor.

    The alert (an in-app notification and an e-mail to each active supervisor of every institution)
    carries only the sequence number and a reason code: never the content of any event.
    """
    result = verify_chain()
    if result.ok:
        return {"ok": True, "checked": result.checked}
    logger.error("audit chain verification failed at sequence %s (%s)", result.bad_sequence, result.reason)
    supervisors = _alert(result)
    return {"ok": False, "bad_sequence": result.bad_sequence, "reason": result.reason, "alerted": supervisors}


def _alert(result) -> int:
    from accounts.choices import Role
    from accounts.models import Institution, User
    from notifications.models import Notification

    facts = {
        "first_bad_id": result.bad_id or "",
        "first_bad_sequence": result.bad_sequence,
        "cause": result.reason,
    }
    with transaction.atomic():
        codes = list(Institution.objects.values_list("code", flat=True))
        record(action=EVENT_TYPE, actor_type="system", outcome="failure", institutions=codes, detail=facts)
        supervisors = list(
            User.objects.filter(role=Role.SUPERVISOR, is_active=True, institution__isnull=False).only(
                "id", "email"
            )
        )
        Notification.objects.bulk_create(
            [
                Notification(
                    user=user,
                    event_type=EVENT_TYPE,
                    data={
                        "reference": "",
                        "status": "",
                        "sequence": result.bad_sequence,
                        "cause": result.reason,
                    },
                )
                for user in supervisors
            ]
        )
    body = EMAIL_BODY.format(sequence=result.bad_sequence, reason=result.reason)
    # One message per supervisor: no institution learns the other's staff addresses.
    messages = [(EMAIL_SUBJECT, body, settings.DEFAULT_FROM_EMAIL, [u.email]) for u in supervisors if u.email]
    try:
        send_mass_mail(messages, fail_silently=False, connection=get_connection())
    except Exception as exc:  # the in-app notifications and the audit event are already committed
        logger.error("audit alert e-mail not sent (%s)", type(exc).__name__)
    return len(supervisors)
