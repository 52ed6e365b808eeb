"""The audit log's Merkle tree in the database (contract §7.3): stored complete subtrees, roots and proofs.

``extend(size)`` (run by the checkpoint job before it signs) hashes the events after the stored tree's
size and writes the complete subtrees they close (``AuditTreeNode``, level ≥ 1): it reads only those new
events and the O(log n) nodes of the stored tree's right edge. An append (``audit.recorder``) never
touches the tree. A root or a proof reads O(log² n) stored nodes and at most O(log n) events (leaves), in
two queries, whatever the log's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from . import merkle
from .models import AuditEvent, AuditTreeNode, AuditTreeState

LEVEL_SHIFT = 48
_INDEX_MASK = (1 << LEVEL_SHIFT) - 1
_BATCH = 10000


class TreeError(RuntimeError):
    """The events do not form a tree the stored nodes describe (a gap; sizes beyond the stored tree)."""


def node_id(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


def stored_size() -> int:
    return AuditTreeState.objects.filter(id=1).values_list("size", flat=True).first() or 0


def _fetch(keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The hashes of these nodes: leaves from their events, the rest from the stored nodes."""
    found: dict[tuple[int, int], bytes] = {}
    leaves = {index + 1: (0, index) for level, index in keys if level == 0}
    if leaves:
        for sequence, hex_hash in AuditEvent.objects.filter(sequence__in=list(leaves)).values_list(
            "sequence", "hash"
        ):
            found[leaves[sequence]] = merkle.event_leaf_hash(hex_hash)
    inner = {node_id(level, index): (level, index) for level, index in keys if level > 0}
    if inner:
        for id_, hash_ in AuditTreeNode.objects.filter(id__in=list(inner)).values_list("id", "hash"):
            found[inner[id_]] = bytes(hash_)
    if len(found) != len(keys):
        raise TreeError("a node or a leaf of the tree is missing")
    return found


def _computed(build):
    """Run ``build(node)`` against the store: once to learn what it reads, once with the hashes."""
    hashes = _fetch(merkle.needed(build))
    return build(lambda level, index: hashes[(level, index)])


def leaf(index: int) -> bytes:
    return _fetch({(0, index)})[(0, index)]


# Roots and proofs need no check of the stored size: a node the stored tree lacks is missing from the
# answer and ``_fetch`` raises ``TreeError``; whatever is found is the hash of the events it covers.


def root(size: int) -> bytes:
    return _computed(lambda node: merkle.root(size, node))


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return _computed(lambda node: merkle.inclusion_path(index, size, node))


def consistency_proof(old: int, new: int) -> list[bytes]:
    return _computed(lambda node: merkle.consistency_path(old, new, node))


def right_edge(size: int) -> merkle.CompactRange:
    """The stored complete subtrees that make up the first ``size`` leaves (O(log n) reads)."""
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            keys.append((level, start >> level))
            start += 1 << level
    hashes = _fetch(set(keys))
    return merkle.CompactRange([(level, hashes[(level, index)]) for level, index in keys], size)


def _insert(nodes: list[tuple[int, bytes]]) -> None:
    """Write closed nodes without the ORM (its bulk_create spent most of a checkpoint's time adapting each
    field of each node): on PostgreSQL one INSERT of two arrays (``unnest``) per batch, one round trip for
    thousands of nodes; elsewhere (SQLite, in-process) plain parameterized INSERTs (``executemany``)."""
    if not nodes:
        return
    table = connection.ops.quote_name(AuditTreeNode._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ids, hashes = zip(*nodes, strict=True)
            cursor.execute(
                f"INSERT INTO {table} (id, hash) SELECT * FROM unnest(%s::bigint[], %s::bytea[])",  # noqa: S608
                [list(ids), list(hashes)],
            )
        else:
            cursor.executemany(f"INSERT INTO {table} (id, hash) VALUES (%s, %s)", nodes)  # noqa: S608


@dataclass(frozen=True)
class Extension:
    """The closed nodes (id, hash) that take the stored tree from ``start`` to ``size`` leaves, as a
    verification pass computed them from the events it verified (``verify_chain(extension=True)``)."""

    start: int
    size: int
    nodes: list[tuple[int, bytes]]


def extend(size: int, computed: Extension | None = None) -> int:
    """Extend the stored tree to ``size`` leaves (events 1..size must exist, without gaps); returns the
    number of leaves added. Serialized by a lock on the tree's state row; idempotent. ``computed``: the
    nodes a verification pass has just computed from these events — written as they are when they start
    at the stored size and end at ``size`` (the checkpoint job: the new events are read once, not twice);
    otherwise the events are read here."""
    with transaction.atomic():
        state, _ = AuditTreeState.objects.select_for_update().get_or_create(id=1)
        start = state.size
        if size <= start:
            return 0
        if computed is not None and computed.start == start and computed.size == size:
            for offset in range(0, len(computed.nodes), _BATCH):
                _insert(computed.nodes[offset : offset + _BATCH])
            AuditTreeState.objects.filter(id=1).update(size=size)
            return size - start
        compact = right_edge(start)
        pending = []
        events = (
            AuditEvent.objects.filter(sequence__gt=start, sequence__lte=size)
            .order_by("sequence")
            .values_list("sequence", "hash")
            .iterator(chunk_size=_BATCH)
        )
        for sequence, hex_hash in events:
            if sequence != compact.size + 1:
                raise TreeError("the events' sequence has a gap")
            for level, index, hash_ in compact.push(merkle.event_leaf_hash(hex_hash)):
                pending.append((node_id(level, index), hash_))
            if len(pending) >= _BATCH:
                _insert(pending)
                pending = []
        if compact.size != size:
            raise TreeError("the log ends before that size")
        _insert(pending)
        AuditTreeState.objects.filter(id=1).update(size=size)
    return size - start
