"""Referrals across nodes (contract §7.4): the door's messages, translated into the core's services.

Four message types, each sealed to the receiving node (they carry personal data or free texts):

- ``referral.deliver`` (sender's node → receiver's node, outbox): at ``send``, the consented projection
  (``referrals.remote.projection``); the receiver's node makes its copy (``federated.copy_receive``).
- ``referral.state`` (sender's → receiver's, outbox): after every later change at the authority, its state
  (``referrals.remote.state``); the copy takes it (``copy_state``; older or repeated states change nothing).
- ``referral.action`` (receiver's → sender's, **synchronous**): a receiver's action on the copy, decided by
  the authority (``act_for_node``: ``referral_transition``'s every rule); the answer is the new state, or the
  authority's problem. Unreachable: 503 ``peer-unavailable`` at the receiver's node, nothing changed.
- ``referral.note`` (receiver's → sender's, outbox): a note written on the copy (``note_for_node``).

What goes into a message is decided by the core (``referrals.remote``); this module only chooses the peer,
seals and queues, and answers.
"""

from __future__ import annotations

import re

from django.dispatch import receiver

from plumbing.problems import ProblemError
from referrals import federated, remote
from referrals.errors import NotVisible
from referrals.models import Referral
from referrals.signals import referral_changed

from . import delivery, keys, services
from .handlers import Incoming, Outcome, handles
from .models import Outgoing, Peer

DELIVER, STATE, ACTION, NOTE = "referral.deliver", "referral.state", "referral.action", "referral.note"
SLUG = re.compile(r"[a-z0-9-]{1,64}")
#: Where :func:`forward` leaves the authority's peer on the copy's instance (this request's only).
AUTHORITY_PEER = "_federation_authority_peer"


def _peer(url: str) -> Peer | None:
    return services.peer_for_url(url)


@receiver(referral_changed, dispatch_uid="federation.referral_changed")
def queue_for_peer(sender, referral: Referral, actor, change: str, note=None, **kwargs) -> None:
    """Inside the change's transaction: the authority queues the copy's delivery or new state for the
    receiver's node; a receiver's node queues a note written on its copy for the authority."""
    if not keys.enabled():
        return
    if remote.receiver_is_remote(referral):
        peer = _peer(referral.to_institution.node)
        if peer is None:
            return
        if change == "sent":
            services.enqueue(
                peer, DELIVER, remote.projection(referral), referral_id=str(referral.pk), sealed=True
            )
        elif referral.sent_at is not None:
            # After an action the peer forwarded, the peer has this state already (it was the answer): the
            # copy is a safety net (an answer lost on the way back), left to the next pass of the outbox.
            echo = getattr(actor, "node", "") == peer.url
            services.enqueue(
                peer,
                STATE,
                remote.state(referral),
                referral_id=str(referral.pk),
                sealed=True,
                hand_over=not echo,
            )
    elif remote.authority_is_remote(referral) and change == "note" and note is not None:
        peer = _peer(referral.from_institution.node)
        if peer is not None:
            payload = {"id": str(note.pk), "body": note.body, "by": remote.who(actor)}
            services.enqueue(
                peer, NOTE, payload, referral_id=str(referral.pk), object_id=note.pk, sealed=True
            )


def forward(referral: Referral, message_type: str, payload: dict) -> dict:
    """``referrals.remote``'s forwarder: the message to the authority's node now, its verified answer back
    (ConnectionError when it cannot be had; the authority's problem raised as a ``ProblemError``)."""
    peer = _peer(referral.from_institution.node)
    if peer is None or not keys.enabled():
        raise ConnectionError("no pinned peer for the referral's authority")
    # the authority's peer, for what this request does next with the copy (the read receipt of its answer)
    referral.__dict__[AUTHORITY_PEER] = peer
    try:
        reply = services.send(peer, message_type, payload, referral_id=str(referral.pk), sealed=True)
    except services.PeerUnavailable as exc:
        raise ConnectionError(str(exc)) from None
    if 200 <= reply.status < 300:
        return reply.payload
    problem = reply.payload
    slug = problem_slug(problem) or "server-error"
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else "Refused by the authority."
    errors = problem.get("errors") if isinstance(problem.get("errors"), dict) else None
    if reply.status >= 500:
        raise ConnectionError(f"the authority answered {reply.status}")
    raise ProblemError(slug, reply.status, detail, errors)


def problem_slug(problem) -> str:
    """The slug of a peer's problem (``/problems/<slug>``): one of ours, or "" (never a peer's free text)."""
    kind = problem.get("type") if isinstance(problem, dict) else None
    slug = kind.rsplit("/", 1)[-1] if isinstance(kind, str) else ""
    return slug if SLUG.fullmatch(slug) else ""


@delivery.on_answered(NOTE)
def note_answered(row: Outgoing, reply: services.Reply) -> None:
    """The authority's final answer to a note written on this node's copy: a 4xx is its refusal (the note
    stays on the copy, marked, and its author is told: ``federated.note_refused``). A copy gone since
    (erased here) has nothing to mark."""
    if not 400 <= reply.status < 500 or row.object_id is None or row.referral_id is None:
        return
    try:
        federated.note_refused(
            node=row.peer.url,
            referral_id=row.referral_id,
            note_id=row.object_id,
            reason=problem_slug(reply.payload) or "refused",
        )
    except NotVisible:
        return


def _sealed(message: Incoming) -> None:
    if not message.sealed:
        raise ProblemError("validation-error", 400, "This message carries personal data: it must be sealed.")


def _referral_id(message: Incoming) -> str:
    if message.referral_id is None:
        raise ProblemError(
            "validation-error", 400, "The envelope names no referral.", {"referral": ["Required."]}
        )
    return message.referral_id


@handles(DELIVER)
def deliver(message: Incoming) -> Outcome:
    """The consented projection → 201 ``{"referral", "version"}`` (200 when the copy existed)."""
    _sealed(message)
    copy, created = federated.copy_receive(node=message.peer.url, data=message.payload)
    return Outcome(201 if created else 200, {"referral": str(copy.pk), "version": copy.version}, sealed=False)


@handles(STATE)
def state(message: Incoming) -> Outcome:
    """The authority's state → 200 ``{"referral", "version"}`` (the copy's version after it)."""
    _sealed(message)
    copy = federated.copy_state(
        node=message.peer.url, referral_id=_referral_id(message), data=message.payload
    )
    return Outcome(200, {"referral": str(copy.pk), "version": copy.version}, sealed=False)


@handles(ACTION)
def action(message: Incoming) -> Outcome:
    """``{"action", "reason", "outcome", "if_match", "by"}`` → 200 and the new state (sealed), or the
    lifecycle's problem (404, 403, 400, 409, 412) exactly as on one node."""
    _sealed(message)
    referral = federated.act_for_node(
        node=message.peer.url, referral_id=_referral_id(message), data=message.payload
    )
    return Outcome(200, remote.state(referral), sealed=True)


@handles(NOTE)
def note(message: Incoming) -> Outcome:
    """``{"id", "body", "by"}`` → 201 ``{"note"}`` (a note id already here: the same answer)."""
    _sealed(message)
    created = federated.note_for_node(
        node=message.peer.url, referral_id=_referral_id(message), data=message.payload
    )
    return Outcome(201, {"note": str(created.pk)}, sealed=False)
