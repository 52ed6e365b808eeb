"""Consent withdrawal across nodes (contract §7.4): the receiver's node crypto-shreds its copy and answers
with a signed receipt, which the sender records as ``consent.withdrawal_confirmed``.

1. **At the sender's node**, ``referrals.services.consent_withdraw`` sends ``consent_withdrawn`` for a sent
   referral, inside its transaction; :func:`queue_withdrawal` puts a ``referral.withdraw`` message in the
   outbox when the receiving institution is hosted by a peer (ids only, in clear: ``{}`` with the referral's
   id in the envelope). It commits or rolls back with the withdrawal, and travels behind everything queued
   before it for that peer (first in, first out: the referral's delivery and its last state).
2. **At the receiver's node**, :func:`receive_withdrawal` has the core destroy the copy
   (``referrals.data_rights.copy_shred``: consent withdrawn, grants revoked, ciphertexts gone, the case
   crypto-shredded unless another live copy shares it), destroys the bodies of the evidence kept for the
   referral (:func:`destroy_evidence_bodies`) and answers **200** ``{"referral", "shredded_at"}`` — signed
   by the door like every answer, and kept: a withdrawal of the same copy again (a new message id) gets the
   same ``shredded_at`` and destroys nothing more (:class:`~federation.models.ShreddedCopy`); the same
   message again gets its first answer (the door's replay store). A referral that is not a copy from the
   sending node → 404 ``not-found`` (the same for one that does not exist).
3. **Back at the sender**, the outbox's delivery hands the verified answer to :func:`withdrawal_answered`
   (``delivery.on_answered``): on a 200 naming the referral, the core records
   ``consent.withdrawal_confirmed`` (``detail``: ``node``, ``shredded_at``) and this node destroys its own
   evidence bodies of the referral the same way. Another answer is final too (the outbox counts it in
   ``federation_status``), and records nothing.

The evidence of the ``referral.withdraw`` messages themselves keeps its bodies on both sides: ids and the
signed receipt, the proof of the shredding. Every other message about the referral keeps its signed headers
(with the body's digest: the signatures still verify) and loses its bodies (``body_destroyed_at``). The sealed
messages about it still waiting in the outbox go too (``federation.retention``): at the receiver when its
copy is shredded, at the sender when the withdrawal is confirmed — or at once, when consent is withdrawn
before the referral's delivery left — and at either when the case is erased; the withdrawal still travels.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from plumbing.problems import ProblemError
from referrals import data_rights
from referrals.models import Referral
from referrals.signals import consent_withdrawn, subject_erased

from . import delivery, keys, retention, services
from .handlers import Incoming, Outcome, handles
from .models import Message, Peer, ShreddedCopy

logger = logging.getLogger(__name__)

MESSAGE = "referral.withdraw"


def destroy_evidence_bodies(referral_id) -> int:
    """Null the request and response bodies of every message kept about the referral but its
    ``referral.withdraw`` messages (their receipt is the proof); the signed headers stay. Returns how many
    messages lost their bodies (none the second time)."""
    return (
        Message.objects.filter(referral_id=referral_id, body_destroyed_at__isnull=True)
        .exclude(type=MESSAGE)
        .update(request_body=None, response_body=None, body_destroyed_at=timezone.now())
    )


@receiver(subject_erased, dispatch_uid="federation.erase_evidence")
def erase_evidence(sender, case_id, **kwargs) -> int:
    """The person's data was erased here (retention, the right to erasure): the bodies of the messages kept
    about the case's referrals go too — a body sealed to this node would otherwise still open with
    ``NODE_ENCRYPTION_KEY`` after the case's data key is gone. The signed headers stay (their digests still
    verify). Returns how many messages lost their bodies."""
    referral_ids = list(Referral.objects.filter(case_id=case_id).values_list("pk", flat=True))
    retention.drop_waiting(referral_ids)  # nor does a sealed message still waiting to leave with them
    return sum(destroy_evidence_bodies(referral_id) for referral_id in referral_ids)


@receiver(consent_withdrawn, dispatch_uid="federation.queue_withdrawal")
def queue_withdrawal(sender, referral, actor=None, **kwargs) -> bool:
    """Queue ``referral.withdraw`` to the node hosting the receiving institution; returns whether one was
    queued (not for a local receiver, nor on a single node, nor when the referral's delivery had not been
    attempted yet: it is dropped, and nothing ever reached the peer)."""
    if not keys.enabled():
        return False
    node = referral.to_institution.node
    if not node or referral.from_institution.node:
        return False
    peer = Peer.objects.filter(url=node).first()
    if peer is None:
        logger.warning("federation: consent withdrawn for a referral to %s, which is not pinned", node)
        return False
    if retention.drop_unsent(referral.pk):
        # Nothing of the referral was ever posted to the peer: it holds no copy, there is nothing to withdraw
        # (a withdrawal would only be answered 404 and leave the sender without a confirmation).
        logger.info("federation: consent withdrawn for %s before its delivery was attempted", referral.pk)
        return False
    retention.drop_undelivered(referral.pk)  # a delivery still waiting never leaves: consent is withdrawn
    services.enqueue(peer, MESSAGE, {}, referral_id=str(referral.pk))
    return True


@handles(MESSAGE)
def receive_withdrawal(message: Incoming) -> Outcome:
    """``{}`` with the referral's id in the envelope → 200 ``{"referral", "shredded_at"}`` (see above)."""
    if message.payload:
        raise ProblemError(
            "validation-error",
            400,
            "Unknown fields.",
            {name: ["Unknown field."] for name in sorted(message.payload)},
        )
    if message.referral_id is None:
        raise ProblemError("validation-error", 400, "Which referral?", {"referral": ["Required."]})
    done = ShreddedCopy.objects.filter(referral_id=message.referral_id, peer=message.peer).first()
    if done is None:
        try:
            shredded = data_rights.copy_shred(referral_id=message.referral_id, node=message.peer.url)
        except data_rights.NotACopy:
            raise ProblemError("not-found", 404, "No copy of this referral from your node.") from None
        done, _created = ShreddedCopy.objects.get_or_create(
            referral_id=message.referral_id,
            defaults={"peer": message.peer, "shredded_at": shredded["shredded_at"]},
        )
    destroy_evidence_bodies(message.referral_id)
    retention.drop_waiting([message.referral_id])  # e.g. a note on the copy still waiting for the authority
    return Outcome(
        200, {"referral": message.referral_id, "shredded_at": done.shredded_at.isoformat()}, sealed=False
    )


@delivery.on_answered(MESSAGE)
def withdrawal_answered(row, reply) -> bool:
    """The receiver's verified answer to a ``referral.withdraw`` this node sent (``row``: the outbox's
    message); returns whether the confirmation was recorded."""
    payload = reply.payload
    referral_id = str(row.referral_id) if row.referral_id else None
    value = payload.get("shredded_at")
    shredded_at = parse_datetime(value) if isinstance(value, str) else None
    if (
        reply.status != 200
        or referral_id is None
        or payload.get("referral") != referral_id
        or shredded_at is None
        or shredded_at.tzinfo is None
    ):
        logger.warning(
            "federation: %s answered the withdrawal %s with %s: not confirmed",
            row.peer.url,
            row.message_id,
            reply.status,
        )
        return False
    with transaction.atomic():
        confirmed = data_rights.withdrawal_confirmed(
            referral_id=referral_id, node=row.peer.url, shredded_at=shredded_at
        )
        if confirmed:
            destroy_evidence_bodies(referral_id)
            retention.drop_waiting([referral_id])
    return confirmed
