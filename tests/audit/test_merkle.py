"""The Merkle tree of contract §7.3 (RFC 9162 §2.1): ``audit.merkle`` against the published RFC 6962 test
vectors (transparency-dev/merkle, vendored in tests/audit/data/) and against the tests' own RFC 9162
implementation (tests/audit/rfc9162.py), for every leaf and size up to 40; corrupted proofs refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from audit import merkle

from . import rfc9162

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text())
LEAVES = [bytes.fromhex(x) for x in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(x) for x in VECTORS["roots"]]


def _node_source(inputs: list[bytes]):
    """node(level, index) from the tests' MTH: what ``audit.tree`` answers from the database."""

    def node(level: int, index: int) -> bytes:
        return rfc9162.mth(inputs[index << level : (index + 1) << level])

    return node


def _hex(hashes):
    return [h.hex() for h in hashes]


def test_roots_and_node_hashes_match_the_vectors():
    node = _node_source(LEAVES)
    assert merkle.root(0, node).hex() == VECTORS["empty_root"]
    for size in range(1, 9):
        assert merkle.root(size, node) == ROOTS[size - 1]
    for level, hashes in enumerate(VECTORS["node_hashes"]):
        for index, expected in enumerate(hashes):
            assert node(level, index).hex() == expected  # the vectors check the tests' own MTH too


@pytest.mark.parametrize("vector", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf']}-of-{v['size']}")
def test_inclusion_proofs_match_the_vectors(vector):
    index, size = vector["leaf"] - 1, vector["size"]
    proof = merkle.inclusion_path(index, size, _node_source(LEAVES))
    assert _hex(proof) == vector["proof"]
    leaf = merkle.leaf_hash(LEAVES[index])
    assert rfc9162.verify_inclusion(index, size, leaf, proof, ROOTS[size - 1])
    merkle.verify_inclusion(index, size, leaf, proof, ROOTS[size - 1])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency_proofs"], ids=lambda v: f"{v['size1']}-to-{v['size2']}"
)
def test_consistency_proofs_match_the_vectors(vector):
    old, new = vector["size1"], vector["size2"]
    proof = merkle.consistency_path(old, new, _node_source(LEAVES))
    assert _hex(proof) == vector["proof"]
    merkle.consistent(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    if old < new:
        assert rfc9162.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


INPUTS = [hashlib.sha256(str(n).encode()).digest() for n in range(40)]  # like event hashes: 32 bytes


def test_every_proof_up_to_40_leaves_verifies_with_the_rfc_algorithms():
    node = _node_source(INPUTS)
    checked = 0
    for size in range(1, 41):
        root = merkle.root(size, node)
        assert root == rfc9162.mth(INPUTS[:size])
        for index in range(size):
            proof = merkle.inclusion_path(index, size, node)
            leaf = rfc9162.sha256(b"\x00" + INPUTS[index])
            assert rfc9162.verify_inclusion(index, size, leaf, proof, root)
            checked += 1
        for old in range(1, size):
            proof = merkle.consistency_path(old, size, node)
            assert rfc9162.verify_consistency(old, size, rfc9162.mth(INPUTS[:old]), root, proof)
            merkle.consistent(old, size, rfc9162.mth(INPUTS[:old]), root, proof)
            checked += 1
    assert checked == 820 + 780


def _corruptions(proof: list[bytes]):
    yield "one hash less", proof[:-1]
    yield "one hash more", [*proof, bytes(32)]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 1]) + proof[i][1:]
        yield f"hash {i} altered", flipped


def test_altered_proofs_are_refused_by_both_verifiers():
    node = _node_source(INPUTS)
    index, size, old = 5, 27, 13
    root, old_root = merkle.root(size, node), merkle.root(old, node)
    leaf = merkle.leaf_hash(INPUTS[index])
    inclusion = merkle.inclusion_path(index, size, node)
    for _why, bad in _corruptions(inclusion):
        assert not rfc9162.verify_inclusion(index, size, leaf, bad, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index, size, leaf, bad, root)
    for wrong_index in (index - 1, index + 1):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(wrong_index, size, leaf, inclusion, root)
    consistency = merkle.consistency_path(old, size, node)
    for _why, bad in _corruptions(consistency):
        assert not rfc9162.verify_consistency(old, size, old_root, root, bad)
        with pytest.raises(merkle.ProofError):
            merkle.consistent(old, size, old_root, root, bad)
    with pytest.raises(merkle.ProofError):  # a forked log: another old root
        merkle.consistent(old, size, merkle.root(old, _node_source(INPUTS[::-1])), root, consistency)
    with pytest.raises(merkle.ProofError):  # a truncated log: the new tree smaller than the old
        merkle.consistent(size, old, root, old_root, consistency)


def test_the_compact_range_gives_the_root_of_every_prefix():
    compact = merkle.CompactRange()
    for size, data in enumerate(INPUTS, start=1):
        compact.push(merkle.leaf_hash(data))
        assert compact.root() == rfc9162.mth(INPUTS[:size])
