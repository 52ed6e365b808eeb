"""What the door does with a verified, opened message: one handler per message type.

A handler receives an :class:`Incoming` (the pinned peer, ids, the opened payload) and returns an
:class:`Outcome`; it runs inside the transaction that stores the message and its answer, so a replay of the
same message id gets the very answer it gave. Handlers of the referral messages (delivery, forwarded
actions, notes, withdrawal, read receipts, checkpoints) call the core's services and come later; ``ping``
proves the round trip.
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
