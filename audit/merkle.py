"""RFC 9162 §2.1 Merkle trees, independent of where the hashes live (contract §7.3).

Leaf *i* (0-based) of the audit log is the event with ``sequence`` *i + 1*; its leaf hash is
SHA-256(0x00 ‖ the 32 bytes of the event's hex ``hash``), interior nodes SHA-256(0x01 ‖ left ‖ right).

Every function here reads hashes through ``node(level, index)``: the hash of the complete subtree over
leaves ``[index·2^level, (index+1)·2^level)`` — a leaf hash at level 0. ``audit.tree`` answers it from the
stored nodes; the tests answer it from a list. Proofs are built in two passes (``needed`` then the real
computation) so that the store is asked once, for O(log² n) nodes at most, whatever the log's size.

The verifiers (``root_from_inclusion``, ``consistent``) are the ones the witness (``audit_witness``) and
the checkpoint job use; the tests check proofs with a second implementation of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

Node = Callable[[int, int], bytes]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def event_leaf_hash(hex_hash: str) -> bytes:
    """The leaf hash of an audit event: SHA-256(0x00 ‖ the 32 bytes of its hex ``hash``)."""
    return leaf_hash(bytes.fromhex(hex_hash))


def children_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_hash(lo: int, hi: int, node: Node) -> bytes:
    """MTH(D[lo:hi]) for the ranges RFC 9162's recursion visits (``lo`` aligned on the range's left part)."""
    size = hi - lo
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and lo % size == 0:
        level = size.bit_length() - 1
        return node(level, lo >> level)
    k = _split(size)
    return children_hash(subtree_hash(lo, lo + k, node), subtree_hash(lo + k, hi, node))


def root(size: int, node: Node) -> bytes:
    return subtree_hash(0, size, node)


def inclusion_path(index: int, size: int, node: Node) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf first."""
    if not 0 <= index < size:
        raise ValueError("the leaf is not in a tree of that size")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree_hash(lo + k, hi, node))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, node))
            lo += k
    path.reverse()
    return path


def consistency_path(old: int, new: int, node: Node) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 (empty when m is 0 or m = n)."""
    if not 0 <= old <= new:
        raise ValueError("the old size must be between 0 and the new size")
    if old == 0 or old == new:
        return []
    path: list[bytes] = []
    lo, hi, complete = 0, new, True
    while True:
        if old == hi:  # SUBPROOF(m, D[m], b)
            if not complete:
                path.append(subtree_hash(lo, hi, node))
            break
        k = _split(hi - lo)
        if old <= lo + k:
            path.append(subtree_hash(lo + k, hi, node))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, node))
            lo += k
            complete = False
    path.reverse()
    return path


class CompactRange:
    """The complete subtrees covering the first n leaves, left to right as (level, hash): enough to append
    leaves and to compute the root, in O(log n) memory (a streaming pass over the log uses it)."""

    def __init__(self, nodes: Iterable[tuple[int, bytes]] = (), size: int = 0):
        self.nodes = list(nodes)
        self.size = size

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; → the complete subtrees (level, index, hash) it closes, level ≥ 1."""
        index = self.size
        self.nodes.append((0, leaf))
        closed = []
        while len(self.nodes) > 1 and self.nodes[-2][0] == self.nodes[-1][0]:
            (level, right), (_, left) = self.nodes.pop(), self.nodes.pop()
            parent = children_hash(left, right)
            self.nodes.append((level + 1, parent))
            closed.append((level + 1, index >> (level + 1), parent))
        self.size += 1
        return closed

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        result = self.nodes[-1][1]
        for _level, left in reversed(self.nodes[:-1]):
            result = children_hash(left, result)
        return result


def needed(build: Callable[[Node], object]) -> set[tuple[int, int]]:
    """The (level, index) pairs ``build`` reads: run it once with placeholder hashes."""
    keys: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        keys.add((level, index))
        return bytes(32)

    build(record)
    return keys


# --- verification (the witness's and the checkpoint job's) ---------------------------------------------


class ProofError(ValueError):
    """A proof that does not verify (the message names no data)."""


def _fold(seed: bytes, hashes: Iterable[bytes], index: int, right_only: bool = False) -> bytes:
    """Climb from ``seed`` with the inner proof nodes: bit i of ``index`` says on which side node i sits."""
    for i, sibling in enumerate(hashes):
        if (index >> i) & 1:
            seed = children_hash(sibling, seed)
        elif not right_only:
            seed = children_hash(seed, sibling)
    return seed


def _border(seed: bytes, hashes: Iterable[bytes]) -> bytes:
    for sibling in hashes:
        seed = children_hash(sibling, seed)
    return seed


def _shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): the proof's nodes below the point where the leaf's path leaves the tree's right
    edge, and the nodes of the left border above it."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError("the leaf index is not below the tree size")
    inner, border = _shape(index, size)
    if len(proof) != inner + border or any(len(h) != 32 for h in proof):
        raise ProofError("the proof has the wrong number of hashes")
    return _border(_fold(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], expected_root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError("the inclusion proof does not lead to the root")


def consistent(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> None:
    """Raise ``ProofError`` unless ``proof`` shows that the tree of size ``new`` extends that of ``old``."""
    if not 0 <= old <= new:
        raise ProofError("the new tree is smaller than the old one")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError("two different roots for one size")
        return
    if old == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof or any(len(h) != 32 for h in proof):
        raise ProofError("the proof is empty or malformed")
    inner, border = _shape(old - 1, new)
    shift = (old & -old).bit_length() - 1  # the trailing zero bits of old
    inner -= shift
    if old == 1 << shift:  # the old tree is a complete subtree of the new one: its root is the seed
        seed, rest = old_root, proof
    else:
        seed, rest = proof[0], proof[1:]
    if len(rest) != inner + border:
        raise ProofError("the proof has the wrong number of hashes")
    mask = (old - 1) >> shift
    computed_old = _border(_fold(seed, rest[:inner], mask, right_only=True), rest[inner:])
    if computed_old != old_root:
        raise ProofError("the proof does not lead to the old root")
    computed_new = _border(_fold(seed, rest[:inner], mask), rest[inner:])
    if computed_new != new_root:
        raise ProofError("the proof does not lead to the new root")
