"""What the door does with a verified, opened message: one handler per message type.

A handler receives an :class:`Incoming` (the pinned peer, ids, the opened payload) and returns an
:class:`Outcome`; it runs inside the transaction that stores the message and its answer, so a replay of the
same message id gets the very answer it gave. Handlers of the referral messages (delivery, forwarded
actions, notes, withdrawal, read receipts) call the core's services and come later; ``ping`` proves the
round trip; the ``checkpoint.*`` messages are the witnessing between nodes (``federation.witnessing``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from plumbing.problems import ProblemError


@dataclass(frozen=True)
class Incoming:
    peer: object  # federation.models.Peer
    message_id: str
    type: str
    referral_id: str | None
    payload: dict
    sealed: bool  # the payload came encrypted to this node


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: dict
    sealed: bool  # answer encrypted to the sender (bodies with personal data)


REGISTRY: dict[str, Callable[[Incoming], Outcome]] = {}


def handles(message_type: str):
    def register(function: Callable[[Incoming], Outcome]):
        REGISTRY[message_type] = function
        return function

    return register


@handles("ping")
def ping(message: Incoming) -> Outcome:
    """``{"echo": <text up to 200 characters>}`` (optional) → ``{"pong": true, "echo", "at"}``; sealed
    answers sealed, so a ping also proves both directions of the encryption."""
    unknown = set(message.payload) - {"echo"}
    if unknown:
        raise ProblemError(
            "validation-error", 400, "Unknown fields.", {name: ["Unknown field."] for name in sorted(unknown)}
        )
    echo = message.payload.get("echo", "")
    if not isinstance(echo, str) or len(echo) > 200:
        raise ProblemError(
            "validation-error", 400, "Invalid ping.", {"echo": ["Text of at most 200 characters."]}
        )
    return Outcome(200, {"pong": True, "echo": echo, "at": timezone.now().isoformat()}, sealed=message.sealed)


# --- Witnessing (contract §7.3/§7.4): a peer cosigns this node's audit checkpoints ----------------------


def _fields(payload: dict, allowed: set[str]) -> None:
    unknown = set(payload) - allowed
    if unknown:
        raise ProblemError(
            "validation-error", 400, "Unknown fields.", {name: ["Unknown field."] for name in sorted(unknown)}
        )


def _proof_problem(exc) -> ProblemError:
    from audit import proofs

    if isinstance(exc, proofs.NotFound):
        return ProblemError("not-found", 404, str(exc))
    return ProblemError("validation-error", 400, exc.detail, exc.errors)


@handles("checkpoint.latest")
def checkpoint_latest(message: Incoming) -> Outcome:
    """``{}`` → ``{"vkey": this log's verifier key, "checkpoint": the latest checkpoint as the API serves it
    (null before the first)}``: what a witnessing peer verifies, and pins the key of on first contact."""
    from audit.checkpoints import as_served, public_key_document
    from audit.selectors import latest_checkpoint

    _fields(message.payload, set())
    checkpoint = latest_checkpoint()
    served = as_served(checkpoint) if checkpoint is not None else None
    return Outcome(200, {"vkey": public_key_document()["vkey"], "checkpoint": served}, sealed=False)


@handles("checkpoint.consistency")
def checkpoint_consistency(message: Incoming) -> Outcome:
    """``{"from": M, "to": N}`` → ``{"from", "to", "hashes"}``: the same proof as
    ``GET /api/v1/audit/proofs/consistency/`` (``audit.proofs.consistency``, the same rules)."""
    from audit import proofs

    _fields(message.payload, {"from", "to"})
    params = {
        name: str(value)
        for name, value in message.payload.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    params.update({name: "" for name in ("from", "to") if name in message.payload and name not in params})
    try:
        return Outcome(200, proofs.consistency(params), sealed=False)
    except (proofs.InvalidRequest, proofs.NotFound) as exc:
        raise _proof_problem(exc) from None


@handles("checkpoint.cosign")
def checkpoint_cosign(message: Incoming) -> Outcome:
    """``{"tree_size", "vkey", "signature"}``: the sending node's cosignature of this node's checkpoint,
    stored exactly as ``POST /api/v1/audit/checkpoints/{tree_size}/cosignatures/`` stores one
    (``audit.proofs.cosign``). The ``vkey`` must be the sending node's own witness key (its pinned signing
    key, named after its URL): a node cosigns for itself only. → 201 and the cosignature as served."""
    from audit import proofs

    from . import witnessing

    _fields(message.payload, {"tree_size", "vkey", "signature"})
    tree_size = message.payload.get("tree_size")
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
        raise ProblemError("validation-error", 400, "Invalid cosignature.", {"tree_size": ["A tree size."]})
    if message.payload.get("vkey") != witnessing.peer_witness_vkey(message.peer):
        raise ProblemError(
            "validation-error", 400, "Invalid cosignature.", {"vkey": ["Not the sending node's witness key."]}
        )
    data = {name: message.payload.get(name) for name in ("vkey", "signature")}
    try:
        return Outcome(201, proofs.cosign(tree_size, data), sealed=False)
    except (proofs.InvalidRequest, proofs.NotFound) as exc:
        raise _proof_problem(exc) from None


@handles("checkpoint.announce")
def checkpoint_announce(message: Incoming) -> Outcome:
    """``{"tree_size"}``: the sending node made a new checkpoint (``federation.audit_hooks``). → 202
    ``{"witnessing": true}`` at once; this node's witnessing pass of the sender (``checkpoint.latest``,
    ``checkpoint.consistency``, ``checkpoint.cosign`` back to it) runs after this message commits, off the
    request (``witnessing.request_pass``). The size is only a hint: the pass verifies the checkpoint the peer
    serves, whatever was announced. A replay gets its first answer and starts nothing."""
    from django.db import transaction

    from . import witnessing

    _fields(message.payload, {"tree_size"})
    tree_size = message.payload.get("tree_size")
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
        raise ProblemError("validation-error", 400, "Invalid announcement.", {"tree_size": ["A tree size."]})
    peer_id = str(message.peer.pk)
    transaction.on_commit(lambda: witnessing.request_pass(peer_id))
    return Outcome(202, {"witnessing": True}, sealed=False)
