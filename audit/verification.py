"""Re-computing the hash chain: the one check shared by ``manage.py verify_audit`` and the periodic task."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .chain import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent

#: Why an event breaks the chain (codes, never data).
GAP = "sequence_gap"
PREV_HASH = "prev_hash_mismatch"
HASH = "hash_mismatch"
HEAD = "head_mismatch"

REASONS = {
    GAP: "the sequence is not contiguous (an event is missing before this one)",
    PREV_HASH: "prev_hash is not the hash of the previous event (events removed, reordered or forged)",
    HASH: "the stored hash does not match the event's content (the row was altered)",
    HEAD: "the chain head does not match the last event (events removed at the end of the chain)",
}


@dataclass(frozen=True)
class Verification:
    """The outcome of one pass over the chain."""

    ok: bool
    checked: int
    last_sequence: int
    last_hash: str
    bad_id: str | None = None
    bad_sequence: int | None = None
    reason: str | None = None
    head_sequence: int | None = None

    def summary(self) -> str:
        if self.reason == HEAD:
            return (
                f"audit chain broken at sequence {self.bad_sequence}: the last event is sequence "
                f"{self.last_sequence} but the chain head records sequence {self.head_sequence} "
                f"({REASONS[HEAD]}); {self.checked} events verified"
            )
        if self.ok and self.checked == 0:
            return "audit chain intact: no events yet"
        if self.ok:
            return (
                f"audit chain intact: {self.checked} events, sequence 1..{self.last_sequence}, "
                f"last hash {self.last_hash}"
            )
        return (
            f"audit chain broken at event {self.bad_id} (sequence {self.bad_sequence}): "
            f"{REASONS[self.reason]}; {self.checked} events verified before it"
        )


def verify_chain(*, chunk_size: int = 2000) -> Verification:
    """Walk every event in sequence order; return at the first one that breaks the chain.

    Each event must carry the next sequence number (1, 2, 3, ...), ``prev_hash`` equal to the previous
    event's hash (the genesis hash for the first), and ``hash`` equal to the HMAC of its canonical
    encoding. The chain head (updated by every writer) must finally point at the last event, so that
    removing events from the end of the chain is noticed too.
    """
    expected_sequence = 1
    previous_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=chunk_size):
        reason = None
        if event.sequence != expected_sequence:
            reason = GAP
        elif not hmac.compare_digest(event.prev_hash, previous_hash):
            reason = PREV_HASH
        elif not hmac.compare_digest(event.hash, event_hash(event)):
            reason = HASH
        if reason is not None:
            return Verification(
                False, checked, expected_sequence - 1, previous_hash, str(event.pk), event.sequence, reason
            )
        checked += 1
        expected_sequence += 1
        previous_hash = event.hash
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", "last_hash").first()
    if head is None:
        head = (0, GENESIS_HASH)  # no head row yet (a flushed database): the first writer creates it
    if head[0] != checked or not hmac.compare_digest(head[1], previous_hash):
        # Events after the last one we hold are gone (or the head was altered): name the first missing one.
        return Verification(False, checked, checked, previous_hash, None, checked + 1, HEAD, head[0])
    return Verification(True, checked, checked, previous_hash)
