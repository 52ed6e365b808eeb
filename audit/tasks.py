"""The periodic jobs (beat's entries; the embedded relay runs them too): verify what came after the last
verified checkpoint, then sign a new checkpoint of the verified head — hourly (``audit-verify-chain``,
whatever the activity), and as soon as activity warrants it (``audit-checkpoint-when-due``, polled every
30 s: 1,000 events since the last checkpoint, or any event and 5 minutes since it).

On failure it logs the cause and sends ``audit.hooks.verification_failed`` (the notifications app records
``audit.verification_failed`` and alerts every supervisor); it signs nothing until the chain verifies again.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import checkpoints, sequencer, tree
from .hooks import verification_failed
from .models import AuditChainHead
from .verification import TREE_ROOT, mark_verified, verify_chain

logger = logging.getLogger(__name__)

EVENT_TYPE = "audit.verification_failed"
#: A checkpoint is due after this many events since the last one…
EVENTS_PER_CHECKPOINT = 1000
#: …or after this long when there was at least one event since it.
CHECKPOINT_INTERVAL = timedelta(minutes=5)


def verify_and_checkpoint() -> tuple:
    """Seal what is queued (a checkpoint covers sealed events only), verify incrementally, then sign a
    checkpoint of the verified head → (verification, checkpoint|None).
    Nothing is signed when the chain fails, nor when the new tree is not consistent with the previous
    checkpoint (the verification then fails with ``checkpoint_root_mismatch``)."""
    sequencer.seal_pending(wait=True)
    result = verify_chain(incremental=True, extension=True)
    if not result.ok:
        return result, None
    mark_verified(result)
    try:
        checkpoint = checkpoints.create(
            sequence=result.last_sequence, hash_=result.last_hash, verified=True, extension=result.extension
        )
    except (checkpoints.Inconsistent, tree.TreeError):
        failed = dataclasses.replace(result, ok=False, bad_sequence=result.last_sequence, reason=TREE_ROOT)
        return failed, None
    return result, checkpoint


def checkpoint_due(now=None) -> bool:
    """Whether activity warrants a checkpoint now (two indexed reads)."""
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", flat=True).first() or 0
    latest = checkpoints.latest()
    if latest is None:
        return head > 0
    since = head - latest.sequence
    now = now or timezone.now()
    return since >= EVENTS_PER_CHECKPOINT or (since > 0 and now - latest.at >= CHECKPOINT_INTERVAL)


@shared_task(name="audit.tasks.verify_audit_chain", acks_late=True)
def verify_audit_chain() -> dict:
    """Verify incrementally and sign a checkpoint; on failure alert (through ``verification_failed``).

    The alert carries only the sequence number and a reason code: never the content of any event.
    """
    result, checkpoint = verify_and_checkpoint()
    if result.ok:
        logger.info("audit chain verified: %s", result.summary())
        return {"ok": True, "checked": result.checked, "checkpoint": checkpoint.sequence}
    return _alert(result)


def _alert(result) -> dict:
    logger.error("audit chain verification failed at sequence %s (%s)", result.bad_sequence, result.reason)
    answers = verification_failed.send(sender=EVENT_TYPE, facts=result.facts())
    alerted = sum(answer for _receiver, answer in answers if isinstance(answer, int))
    return {"ok": False, "bad_sequence": result.bad_sequence, "reason": result.reason, "alerted": alerted}


@shared_task(name="audit.tasks.seal_pending", acks_late=True)
def seal_pending() -> dict:
    """Beat's backstop of the sequencer threads (every 5 s): seal whatever is still queued."""
    return {"ok": True, "sealed": sequencer.seal_pending(wait=True)}


@shared_task(name="audit.tasks.checkpoint_when_due", acks_late=True)
def checkpoint_when_due() -> dict:
    """Polled every 30 s: verify and sign a checkpoint when ``checkpoint_due`` (else nothing)."""
    if not checkpoint_due():
        return {"ok": True, "checkpoint": None}
    result, checkpoint = verify_and_checkpoint()
    if result.ok:
        return {"ok": True, "checked": result.checked, "checkpoint": checkpoint.sequence}
    return _alert(result)
