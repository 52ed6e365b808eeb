"""Re-computing the hash chain: the one check shared by ``manage.py verify_audit`` and the periodic task.

Three kinds of evidence are checked:

* the chain itself — contiguous sequence numbers, each ``prev_hash`` the previous event's hash, each ``hash``
  the HMAC of the event's canonical encoding (version 2, which covers the event ``id``; version 1 only for
  events written before the first version-2 event), and the chain head pointing at the last event;
* signed checkpoints — those stored here and any the operator brings (a partner's copy): a valid signature,
  the same hash at their sequence, and a chain that reaches them (a truncated or wiped log fails here);
* the database's append-only triggers on ``audit_auditevent`` — present and enabled.

A full pass starts at the genesis; an incremental pass (the periodic job) starts at the latest checkpoint
that a previous pass verified, after checking that checkpoint's signature and event.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from . import checkpoints as signed
from . import merkle, sequencer, tree
from .chain import GENESIS_HASH, ROW_FIELDS, pg_text_columns, pg_text_values, values_hash
from .models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditTreeNode

#: Why the log fails verification (codes, never data).
GAP = "sequence_gap"
PREV_HASH = "prev_hash_mismatch"
HASH = "hash_mismatch"
HEAD = "head_mismatch"
TRIGGERS = "append_only_triggers_missing"
CHECKPOINT_SIGNATURE = "checkpoint_signature_invalid"
CHECKPOINT_HASH = "checkpoint_hash_mismatch"
TRUNCATED = "chain_ends_before_checkpoint"
TREE_ROOT = "checkpoint_root_mismatch"
TREE_NODE = "tree_node_mismatch"
QUEUE_STALLED = "queue_stalled"
TREE_TRUNCATED = "tree_truncated"

REASONS = {
    GAP: "the sequence is not contiguous (an event is missing before this one)",
    PREV_HASH: "prev_hash is not the hash of the previous event (events removed, reordered or forged)",
    HASH: "the stored hash does not match the event's content (the row was altered)",
    HEAD: "the chain head does not match the last event (events removed at the end of the chain)",
    TRIGGERS: "the append-only triggers of audit_auditevent are missing or disabled, or those of its queue "
    "audit_auditqueue (anyone with the application's rights could rewrite or delete events)",
    TREE_TRUNCATED: "the stored Merkle tree covers fewer events than a signed checkpoint's tree_size (its "
    "nodes or its size were cut): proofs for that checkpoint cannot be served",
    QUEUE_STALLED: "an audit event has waited in the queue for more than a minute without being sealed "
    "(no sequencer is running, or it cannot seal: see the logs)",
    CHECKPOINT_SIGNATURE: "a checkpoint's signature does not verify with the audit signing key "
    "(a forged or altered checkpoint)",
    CHECKPOINT_HASH: "the event at a signed checkpoint's sequence has another hash (the event was rewritten)",
    TRUNCATED: "the chain ends before a signed checkpoint's sequence (events removed from the end, "
    "or the log wiped)",
    TREE_ROOT: "a signed checkpoint's root_hash is not the Merkle root of the events up to its tree_size "
    "(events rewritten, or the stored tree altered)",
    TREE_NODE: "a stored node of the Merkle tree is not the hash of the events it covers (the stored tree "
    "was altered: proofs served from it would not verify)",
}

SQLITE_TRIGGERS = {"audit_auditevent_no_update": "UPDATE", "audit_auditevent_no_delete": "DELETE"}
SQLITE_QUEUE_TRIGGERS = {"audit_auditqueue_no_update": "UPDATE", "audit_auditqueue_no_delete": "DELETE"}
POSTGRES_TRIGGER = "audit_auditevent_append_only"
POSTGRES_QUEUE_TRIGGER = "audit_auditqueue_append_only"
# pg_trigger.tgtype bits: ROW 1, BEFORE 2, DELETE 8, UPDATE 16.
_PG_ROW_BEFORE_UPDATE_DELETE = 1 | 2 | 8 | 16


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
    #: The sequence the pass started after (0 for a full pass; a checkpoint's sequence when incremental).
    start_sequence: int = 0
    seconds: float = 0.0
    checkpoints_checked: int = 0
    #: With ``extension=True``: the tree nodes the pass computed beyond the stored tree, for
    #: ``tree.extend`` to write without reading the events a second time (``None`` when not collected).
    extension: tree.Extension | None = field(default=None, repr=False, compare=False)

    @property
    def events_per_second(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else 0.0

    def _pace(self) -> str:
        return f"{self.checked} events in {self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)"

    def summary(self) -> str:
        if self.reason == HEAD:
            return (
                f"audit chain broken at sequence {self.bad_sequence}: the last event is sequence "
                f"{self.last_sequence} but the chain head records sequence {self.head_sequence} "
                f"({REASONS[HEAD]}); {self.checked} events verified"
            )
        if self.reason == QUEUE_STALLED:
            return (
                f"audit log not sealed: {REASONS[QUEUE_STALLED]}; the chain itself verified ({self._pace()})"
            )
        if self.reason == TRIGGERS:
            return f"audit log unprotected: {REASONS[TRIGGERS]}; the chain itself verified ({self._pace()})"
        if self.reason in (
            CHECKPOINT_SIGNATURE,
            CHECKPOINT_HASH,
            TRUNCATED,
            TREE_ROOT,
            TREE_NODE,
            TREE_TRUNCATED,
        ):
            where = (
                f"event {self.bad_id} (sequence {self.bad_sequence})"
                if self.bad_id
                else (f"sequence {self.bad_sequence}")
            )
            ends = f"; the chain ends at sequence {self.last_sequence}" if self.reason == TRUNCATED else ""
            return f"audit chain broken at {where}: {REASONS[self.reason]}{ends}"
        if self.ok and self.last_sequence == 0:
            return "audit chain intact: no events yet"
        signed_part = (
            f"; {self.checkpoints_checked} signed checkpoints match" if self.checkpoints_checked else ""
        )
        if self.ok and self.start_sequence:
            return (
                f"audit chain intact: {self.checked} events after the verified checkpoint at sequence "
                f"{self.start_sequence}, sequence {self.start_sequence + 1}..{self.last_sequence}, "
                f"last hash {self.last_hash}{signed_part}; {self._pace()}"
            )
        if self.ok:
            return (
                f"audit chain intact: {self.checked} events, sequence 1..{self.last_sequence}, "
                f"last hash {self.last_hash}{signed_part}; {self._pace()}"
            )
        return (
            f"audit chain broken at event {self.bad_id} (sequence {self.bad_sequence}): "
            f"{REASONS[self.reason]}; {self.checked} events verified before it"
        )

    def facts(self) -> dict:
        """What an alert may carry: the first bad event's id and sequence and a cause code."""
        return {
            "first_bad_id": self.bad_id or "",
            "first_bad_sequence": self.bad_sequence,
            "cause": self.reason,
        }


def append_only_triggers_ok(conn=connection) -> bool:
    """Whether the database still refuses UPDATE and DELETE on ``audit_auditevent``, and UPDATE and the
    DELETE of unsealed rows on ``audit_auditqueue`` (SQLite, PostgreSQL).

    SQLite: the triggers exist and still raise. PostgreSQL: the row-level BEFORE UPDATE OR DELETE triggers
    exist, are enabled (not ``ALTER TABLE … DISABLE TRIGGER``, not replica-only) and their functions still
    raise. Other databases are not supported by the project.
    """
    with conn.cursor() as cursor:
        if conn.vendor == "sqlite":
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('audit_auditevent', 'audit_auditqueue')"
            )
            found = {name: (sql or "").upper() for name, sql in cursor.fetchall()}
            return all(
                name in found and f"BEFORE {verb}" in found[name] and "RAISE(ABORT" in found[name]
                for name, verb in (SQLITE_TRIGGERS | SQLITE_QUEUE_TRIGGERS).items()
            )
        if conn.vendor == "postgresql":
            for table, trigger in (
                ("audit_auditevent", POSTGRES_TRIGGER),
                ("audit_auditqueue", POSTGRES_QUEUE_TRIGGER),
            ):
                cursor.execute(
                    "SELECT t.tgenabled, t.tgtype, p.prosrc "
                    "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                    "WHERE t.tgrelid = %s::regclass AND t.tgname = %s AND NOT t.tgisinternal",
                    [table, trigger],
                )
                row = cursor.fetchone()
                if row is None:
                    return False
                enabled, tgtype, source = row
                enabled = enabled.decode() if isinstance(enabled, bytes) else str(enabled)
                if not (
                    enabled in ("O", "A")
                    and (int(tgtype) & _PG_ROW_BEFORE_UPDATE_DELETE) == _PG_ROW_BEFORE_UPDATE_DELETE
                    and "RAISE EXCEPTION" in (source or "").upper()
                ):
                    return False
    return True


#: The events as PostgreSQL's text (``audit.chain.pg_text_columns``): decoding 25,000 rows through the ORM
#: (UUIDs, aware datetimes, JSON) took ~0.8 s of a checkpoint at 10 million events, this stream ~0.15 s.
_PG_COLUMNS = pg_text_columns(ROW_FIELDS)
# fixed column expressions; the only value is a parameter
_PG_ROWS = f"SELECT {_PG_COLUMNS} FROM audit_auditevent WHERE sequence > %s ORDER BY sequence"  # noqa: S608


def _rows_postgresql(after: int, chunk_size: int):
    # Django's chunked (server-side) cursor, as ``QuerySet.iterator`` uses: streamed, ``chunk_size`` rows at
    # a time (a full pass reads millions of events).
    with connection.chunked_cursor() as cursor:
        cursor.execute(_PG_ROWS, [after])
        while rows := cursor.fetchmany(chunk_size):
            for row in rows:
                yield pg_text_values(ROW_FIELDS, row)


def _rows(after: int, chunk_size: int):
    if connection.vendor == "postgresql":
        yield from _rows_postgresql(after, chunk_size)
        return
    rows = (
        AuditEvent.objects.filter(sequence__gt=after)
        .order_by("sequence")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    for row in rows:
        yield dict(zip(ROW_FIELDS, row, strict=True))


def _hash_matches(values: dict, allow_legacy: bool) -> tuple[bool, bool]:
    """(matches, is_legacy): version 2 first; version 1 only while legacy events are still allowed."""
    if hmac.compare_digest(values["hash"], values_hash(values, 2)):
        return True, False
    if allow_legacy and hmac.compare_digest(values["hash"], values_hash(values, 1)):
        return True, True
    return False, False


def link_verdict(values: dict, expected_sequence: int, previous_hash: str, allow_legacy: bool) -> tuple:
    """Whether one event (a row, or an archived line) links where the chain expects it: ``(reason or
    None, allow_legacy)`` — the gap, the broken link or the bad hash, and whether version-1 hashes are
    still allowed after it (not once a version-2 event was seen). The database pass and the archive's
    offline check both judge each event here."""
    if values["sequence"] != expected_sequence:
        return GAP, allow_legacy
    if not hmac.compare_digest(values["prev_hash"], previous_hash):
        return PREV_HASH, allow_legacy
    matches, legacy = _hash_matches(values, allow_legacy)
    if not matches:
        return HASH, allow_legacy
    return None, allow_legacy and legacy


class _Checkpoints:
    """The signed checkpoints a pass must find on its way, by sequence."""

    def __init__(self, items: Iterable[dict]):
        self.by_sequence: dict[int, list[dict]] = {}
        self.count = 0
        for item in items:
            self.by_sequence.setdefault(item["sequence"], []).append(item)
            self.count += 1

    def bad_signature(self) -> dict | None:
        key = signed.public_key_bytes()
        verifier = signed.log_verifier()
        for items in self.by_sequence.values():
            for item in items:
                if not signed.signature_valid(item, key) or not signed.note_valid(item, verifier):
                    return item
        return None

    def roots_at(self, sequence: int) -> list[bytes]:
        return [
            base64.b64decode(c["root_hash"]) for c in self.by_sequence.get(sequence, ()) if c.get("root_hash")
        ]

    def root_mismatch_at(self, sequence: int, compact: merkle.CompactRange | None) -> bool:
        """Whether a checkpoint at ``sequence`` signed another root than the events' (O(log n))."""
        roots = self.roots_at(sequence)
        if not roots or compact is None:
            return False
        actual = compact.root()
        return any(not hmac.compare_digest(root, actual) for root in roots)

    def mismatch_at(self, sequence: int, hash_: str) -> bool:
        return any(not hmac.compare_digest(c["hash"], hash_) for c in self.by_sequence.get(sequence, ()))

    def beyond(self, last_sequence: int) -> int | None:
        later = [s for s in self.by_sequence if s > last_sequence]
        return min(later) if later else None

    def at_or_before(self, sequence: int) -> list[int]:
        return sorted(s for s in self.by_sequence if 0 < s <= sequence)


class _StoredNodes:
    """The complete subtrees a pass recomputes, compared in batches with the stored ones (those the stored
    tree covers): an altered or missing node is named by the last sequence it covers. With ``collect``,
    the nodes beyond the stored tree are kept (up to ``COLLECT_LIMIT``) as the tree's extension."""

    BATCH = 5000
    #: A checkpoint's pass collects its new nodes; a pass over millions of unstored events does not.
    COLLECT_LIMIT = 1_000_000

    def __init__(self, collect: bool = False):
        self.size = tree.stored_size()
        self.pending: dict[int, tuple[int, bytes]] = {}
        self.fresh: list[tuple[int, bytes]] | None = [] if collect else None

    def add(self, closed) -> None:
        for level, index, hash_ in closed:
            end = (index + 1) << level
            if end <= self.size:
                self.pending[tree.node_id(level, index)] = (end, hash_)
            elif self.fresh is not None:
                self.fresh.append((tree.node_id(level, index), hash_))
                if len(self.fresh) > self.COLLECT_LIMIT:
                    self.fresh = None

    def extension(self, start: int, last: int) -> tree.Extension | None:
        """The new nodes for ``tree.extend``, when the pass pushed every leaf from the stored size on."""
        if self.fresh is None or start > self.size or last <= self.size:
            return None
        return tree.Extension(self.size, last, self.fresh)

    def bad(self, force: bool = False) -> int | None:
        if not self.pending or (len(self.pending) < self.BATCH and not force):
            return None
        pending, self.pending = self.pending, {}
        stored = dict(AuditTreeNode.objects.filter(id__in=list(pending)).values_list("id", "hash"))
        wrong = [end for id_, (end, hash_) in pending.items() if bytes(stored.get(id_) or b"") != hash_]
        return min(wrong) if wrong else None


def stored_checkpoints(after: int = -1) -> list[dict]:
    return [
        signed.as_checked(c)
        for c in AuditCheckpoint.objects.filter(sequence__gt=after).order_by("sequence", "id").iterator()
    ]


def _anchor() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.filter(verified_at__isnull=False).order_by("-sequence", "-id").first()


def verify_chain(
    *,
    chunk_size: int = 5000,
    incremental: bool = False,
    checkpoints: Iterable[dict] = (),
    check_triggers: bool = True,
    extension: bool = False,
) -> Verification:
    """One pass over the chain; returns at the first thing that breaks it.

    ``incremental``: start after the latest checkpoint a previous pass verified (its signature and its
    event are checked first), else at the genesis. ``checkpoints``: signed checkpoints from outside (a
    partner's copy) to check as well as the stored ones. ``extension``: keep the tree nodes computed
    beyond the stored tree in the result (the checkpoint job writes them instead of reading the events
    again).
    """
    started = time.perf_counter()
    anchor = _anchor() if incremental else None
    start, previous_hash, allow_legacy = 0, GENESIS_HASH, True
    outside = list(checkpoints)
    if anchor is not None:
        anchor_served = signed.as_checked(anchor)
        outside.append(anchor_served)
        start, previous_hash = anchor.sequence, anchor.hash
    pending = _Checkpoints([*stored_checkpoints(after=start - 1 if anchor is not None else -1), *outside])
    bad = pending.bad_signature()
    if bad is not None:
        return _at_checkpoint(bad["sequence"], CHECKPOINT_SIGNATURE, start, started)
    if anchor is not None and start > 0:
        row = next(_rows(start - 1, 1), None)
        if row is None or row["sequence"] != start:
            return _at_checkpoint(start, TRUNCATED, start, started)
        matches, legacy = _hash_matches(row, True)
        if not matches or not hmac.compare_digest(row["hash"], anchor.hash):
            return _at_checkpoint(start, CHECKPOINT_HASH, start, started, bad_id=str(row["id"]))
        allow_legacy = legacy
    # The Merkle roots: recomputed from the events as they stream by (a full pass), or, incremental, from
    # the stored tree's right edge at the anchor — itself checked against the anchor's signed root.
    compact: merkle.CompactRange | None = merkle.CompactRange()
    if start > 0:
        try:
            compact = tree.right_edge(start) if tree.stored_size() >= start else None
        except tree.TreeError:
            return _at_checkpoint(start, TREE_ROOT, start, started)
        if compact is not None and pending.root_mismatch_at(start, compact):
            return _at_checkpoint(start, TREE_ROOT, start, started)
    if pending.root_mismatch_at(0, merkle.CompactRange()):
        return _at_checkpoint(0, TREE_ROOT, start, started)
    earlier = pending.at_or_before(start)
    if earlier:  # outside checkpoints older than an incremental pass's start: one query for them
        found = dict(AuditEvent.objects.filter(sequence__in=earlier).values_list("sequence", "hash"))
        for sequence in earlier:
            if sequence not in found:
                return _at_checkpoint(sequence, CHECKPOINT_HASH, start, started)
            if pending.mismatch_at(sequence, found[sequence]):
                return _at_checkpoint(sequence, CHECKPOINT_HASH, start, started)
            if pending.roots_at(sequence) and tree.stored_size() >= sequence:
                try:
                    mismatch = pending.root_mismatch_at(sequence, tree.right_edge(sequence))
                except tree.TreeError:
                    mismatch = True
                if mismatch:
                    return _at_checkpoint(sequence, TREE_ROOT, start, started)

    expected_sequence = start + 1
    checked = 0
    nodes = _StoredNodes(collect=extension and compact is not None)
    for row in _rows(start, chunk_size):
        reason, allow_legacy = link_verdict(row, expected_sequence, previous_hash, allow_legacy)
        if reason is None and pending.mismatch_at(row["sequence"], row["hash"]):
            reason = CHECKPOINT_HASH
        if reason is None and compact is not None:
            nodes.add(compact.push(merkle.event_leaf_hash(row["hash"])))
            if pending.root_mismatch_at(row["sequence"], compact):
                reason = TREE_ROOT
            bad_node = nodes.bad()
            if reason is None and bad_node is not None:
                return _at_checkpoint(bad_node, TREE_NODE, start, started)
        if reason is not None:
            return Verification(
                False,
                checked,
                expected_sequence - 1,
                previous_hash,
                str(row["id"]),
                row["sequence"],
                reason,
                start_sequence=start,
                seconds=time.perf_counter() - started,
            )
        checked += 1
        expected_sequence += 1
        previous_hash = row["hash"]
    last = expected_sequence - 1
    bad_node = nodes.bad(force=True)
    if bad_node is not None:
        return _at_checkpoint(bad_node, TREE_NODE, start, started)
    seconds = time.perf_counter() - started
    beyond = pending.beyond(last)
    if beyond is not None:
        return Verification(
            False,
            checked,
            last,
            previous_hash,
            None,
            beyond,
            TRUNCATED,
            start_sequence=start,
            seconds=seconds,
        )
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", "last_hash").first()
    if head is None:
        head = (0, GENESIS_HASH)  # no head row yet (a flushed database): the first writer creates it
    if head[0] != last or not hmac.compare_digest(head[1], previous_hash):
        # Events after the last one we hold are gone (or the head was altered): name the first missing one.
        return Verification(
            False,
            checked,
            last,
            previous_hash,
            None,
            last + 1,
            HEAD,
            head[0],
            start_sequence=start,
            seconds=seconds,
        )
    signed_size = (
        AuditCheckpoint.objects.exclude(root_hash="")
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    if signed_size and tree.stored_size() < signed_size:
        return _at_checkpoint(signed_size, TREE_TRUNCATED, start, started)
    waited = sequencer.oldest_queued_age()
    if waited is not None and waited > sequencer.STALE_AFTER:
        return Verification(
            False,
            checked,
            last,
            previous_hash,
            None,
            None,
            QUEUE_STALLED,
            start_sequence=start,
            seconds=seconds,
        )
    if check_triggers and not append_only_triggers_ok():
        return Verification(
            False, checked, last, previous_hash, None, None, TRIGGERS, start_sequence=start, seconds=seconds
        )
    return Verification(
        True,
        checked,
        last,
        previous_hash,
        start_sequence=start,
        seconds=seconds,
        checkpoints_checked=pending.count,
        extension=nodes.extension(start, last),
    )


def _at_checkpoint(sequence: int, reason: str, start: int, started: float, bad_id: str | None = None):
    last = start
    if reason == TRUNCATED:
        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    return Verification(
        False,
        0,
        last,
        "",
        bad_id,
        sequence,
        reason,
        start_sequence=start,
        seconds=time.perf_counter() - started,
    )


def mark_verified(result: Verification) -> int:
    """After a passing pass: the stored checkpoints it reached are verified (the next pass starts there)."""
    if not result.ok:
        return 0
    return AuditCheckpoint.objects.filter(
        verified_at__isnull=True, sequence__gt=result.start_sequence, sequence__lte=result.last_sequence
    ).update(verified_at=timezone.now())
