"""The periodic job (beat's ``audit-verify-chain``, hourly; the embedded relay runs it too): verify what came
after the last verified checkpoint, then sign a new checkpoint of the verified head.

On failure it logs the cause and sends ``audit.hooks.verification_failed`` (the notifications app records
``audit.verification_failed`` and alerts every supervisor); it signs nothing until the chain verifies again.
"""

from __future__ import annotations

import logging

from celery import shared_task

from . import checkpoints
from .hooks import verification_failed
from .verification import mark_verified, verify_chain

logger = logging.getLogger(__name__)

EVENT_TYPE = "audit.verification_failed"


def verify_and_checkpoint() -> tuple:
    """Incremental verification, then a checkpoint of the verified head → (verification, checkpoint|None)."""
    result = verify_chain(incremental=True)
    if not result.ok:
        return result, None
    mark_verified(result)
    return result, checkpoints.create(sequence=result.last_sequence, hash_=result.last_hash, verified=True)


@shared_task(name="audit.tasks.verify_audit_chain", acks_late=True)
def verify_audit_chain() -> dict:
    """Verify incrementally and sign a checkpoint; on failure alert (through ``verification_failed``).

    The alert carries only the sequence number and a reason code: never the content of any event.
    """
    result, checkpoint = verify_and_checkpoint()
    if result.ok:
        logger.info("audit chain verified: %s", result.summary())
        return {"ok": True, "checked": result.checked, "checkpoint": checkpoint.sequence}
    logger.error("audit chain verification failed at sequence %s (%s)", result.bad_sequence, result.reason)
    answers = verification_failed.send(sender=EVENT_TYPE, facts=result.facts())
    alerted = sum(answer for _receiver, answer in answers if isinstance(answer, int))
    return {"ok": False, "bad_sequence": result.bad_sequence, "reason": result.reason, "alerted": alerted}
