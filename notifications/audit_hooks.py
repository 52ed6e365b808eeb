"""What the notifications app does with the audit app's news (``audit.hooks``): the audit app imports no
other app; it sends plain signals, and this module turns them into deliveries.

* ``checkpoint_made`` → an ``audit.checkpoint`` outbox row (``data`` = the checkpoint), delivered to every
  webhook subscription that asked for that event type, whatever its institution (contract §6.3).
* ``verification_failed`` → the ``audit.verification_failed`` event (visible to every institution), an
  in-app notification and one e-mail to each active supervisor of every institution.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from accounts.models import Institution
from audit.hooks import checkpoint_made, verification_failed
from audit.recorder import record

from .outbox import emit
from .services import alert_supervisors

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
        body = EMAIL_BODY.format(sequence=facts.get("first_bad_sequence"), reason=facts.get("cause"))
        # The one alert rule (notifications.services.alert_supervisors): an in-app notification and one
        # e-mail per supervisor (no institution learns the other's staff addresses), sent after the commit.
        supervisors = alert_supervisors(
            event_type=VERIFICATION_FAILED_EVENT,
            data={
                "reference": "",
                "status": "",
                "sequence": facts.get("first_bad_sequence"),
                "cause": facts.get("cause"),
            },
            subject=EMAIL_SUBJECT,
            body=body,
        )
    return len(supervisors)
