"""A second, independent implementation of RFC 9162 §2.1, written from the RFC's text for the tests only:
the Merkle Tree Hash (§2.1.1) by its recursive definition, and the two verification algorithms exactly as
§2.1.3.2 (inclusion) and §2.1.4.2 (consistency) state them, step by step. It shares no code with
``audit.merkle``."""

from __future__ import annotations

import hashlib


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf *inputs*: SHA-256() for n = 0, SHA-256(0x00 ‖ d0) for n = 1, else split at k."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def event_leaf_input(hex_hash: str) -> bytes:
    """Contract §7.3: an audit event's leaf input is the 32 bytes of its hex ``hash``."""
    return bytes.fromhex(hex_hash)


def _lsb(value: int) -> bool:
    return value & 1 == 1


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2."""
    if leaf_index >= tree_size:  # 1
        return False
    fn, sn = leaf_index, tree_size - 1  # 2
    r = leaf_hash  # 3
    for p in path:  # 4
        if sn == 0:  # 4a
            return False
        if _lsb(fn) or fn == sn:  # 4b
            r = sha256(b"\x01" + p + r)
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and r == root  # 5


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2 (defined for 0 < first < second)."""
    if not 0 < first < second:
        raise ValueError("the RFC's algorithm is for 0 < first < second")
    if not path:  # 1
        return False
    if first & (first - 1) == 0:  # 2: first is an exact power of 2
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1  # 3
    if _lsb(fn):  # 4
        while _lsb(fn):
            fn >>= 1
            sn >>= 1
    fr = sr = path[0]  # 5
    for c in path[1:]:  # 6
        if sn == 0:  # 6a
            return False
        if _lsb(fn) or fn == sn:  # 6b
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn >>= 1  # 6c
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # 7
