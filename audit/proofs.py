"""Inclusion and consistency proofs and witnesses' cosignatures (contract §7.3): the rules every door asks.

Sizes are checked against the latest checkpoint (a proof is only for a tree the log has signed); the event
of an inclusion proof must be visible to the caller (``selectors.events_visible_to``) — an event the caller
may not see, like one that does not exist, is a 404. Errors are ``InvalidRequest`` (a 400 at the API, with
the errors by parameter), ``NotFound`` (a 404) and ``TreeUnavailable`` (a 503 ``audit-tree-unavailable``:
the stored tree no longer covers a signed size): the API maps them to problem+json.
"""

from __future__ import annotations

import base64
import re
import uuid

from . import checkpoints, notes, tree
from .models import AuditCheckpoint
from .selectors import events_visible_to

_SIZE = re.compile(r"^[0-9]{1,18}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class InvalidRequest(ValueError):
    """A malformed or out-of-range request; ``errors``: parameter → messages (no input echoed)."""

    def __init__(self, detail: str, errors: dict[str, list[str]]):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(LookupError):
    """No such object for this caller (an event it may not see, a checkpoint that does not exist)."""


class TreeUnavailable(RuntimeError):
    """The stored tree cannot answer for a size the log has signed (nodes or events missing: the tree was
    truncated or altered): a 503 at the API, and ``verify_audit`` names the cause."""


def _from_tree(build):
    try:
        return build()
    except tree.TreeError:
        raise TreeUnavailable(
            "The stored Merkle tree does not cover this tree size (it was truncated or altered); "
            "the operator is alerted by verify_audit."
        ) from None


def _invalid(name: str, message: str) -> InvalidRequest:
    return InvalidRequest("Invalid proof request.", {name: [message]})


def _size(params, name: str) -> int:
    value = params.get(name)
    if value is None:
        raise _invalid(name, "Required: a tree size (an integer).")
    if not isinstance(value, str) or not _SIZE.match(value):
        raise _invalid(name, "A tree size: a non-negative integer.")
    return int(value)


def _signed_size() -> int:
    latest = AuditCheckpoint.objects.exclude(root_hash="").order_by("-sequence").first()
    return latest.sequence if latest is not None else 0


def _within_signed(name: str, size: int) -> None:
    if size > _signed_size():
        raise _invalid(name, "Beyond the latest checkpoint's tree size.")


def _unknown(params, allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidRequest("Unknown query parameter.", {n: ["Unknown parameter."] for n in unknown})


def inclusion(actor, params) -> dict:
    """``{leaf_index, tree_size, leaf_hash, hashes}`` for ``?event=<id>&tree_size=N`` (RFC 9162 §2.1.3)."""
    _unknown(params, {"event", "tree_size"})
    size = _size(params, "tree_size")
    raw = params.get("event") or ""
    try:
        event_id = uuid.UUID(raw[:64])
    except ValueError:
        raise _invalid("event", "An audit event's id (a UUID).") from None
    _within_signed("tree_size", size)
    sequence = events_visible_to(actor).filter(id=event_id).values_list("sequence", flat=True).first()
    if sequence is None:
        raise NotFound("No such audit event.")
    if sequence > size:
        raise _invalid("tree_size", "The event is not in a tree of that size.")
    index = sequence - 1
    proof = _from_tree(lambda: tree.inclusion_proof(index, size))
    leaf = _from_tree(lambda: tree.leaf(index))
    return {
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": _b64(leaf),
        "hashes": [_b64(h) for h in proof],
    }


def consistency(params) -> dict:
    """``{from, to, hashes}`` for ``?from=M&to=N`` (RFC 9162 §2.1.4)."""
    _unknown(params, {"from", "to"})
    old, new = _size(params, "from"), _size(params, "to")
    if old > new:
        raise _invalid("from", "Not greater than to.")
    _within_signed("to", new)
    hashes = _from_tree(lambda: tree.consistency_proof(old, new))
    return {"from": old, "to": new, "hashes": [_b64(h) for h in hashes]}


def cosign(tree_size: int, data) -> dict:
    """Store a witness's cosignature of the checkpoint of ``tree_size`` → the stored one as served."""
    if not isinstance(data, dict) or set(data) != {"vkey", "signature"}:
        raise InvalidRequest(
            "A cosignature is {vkey, signature}.", {"non_field_errors": ["Exactly vkey and signature."]}
        )
    try:
        stored = checkpoints.add_cosignature(tree_size, data["vkey"], data["signature"])
    except AuditCheckpoint.DoesNotExist:
        raise NotFound("No checkpoint has that tree size.") from None
    except notes.NoteError as exc:
        raise InvalidRequest("The cosignature does not verify.", {"signature": [str(exc)]}) from None
    return checkpoints.cosignature_as_served(stored)
