"""Envelope encryption (AES-256-GCM) and blind indexes.

* Each case has a random 32-byte data key (DEK). The DEK is stored wrapped by a key-encryption key
  (KEK) from ``FIELD_ENCRYPTION_KEYS``: the first key wraps, every key unwraps.
* Wrapped DEK format (version ``K1``, 58 bytes):
  ``b"K1" | kek_id(8) | nonce(12) | AES-GCM(kek, dek, aad=b"dek:"+case_id)`` (32 bytes + 16-byte tag);
  ``kek_id = SHA-256(b"kek-id:" + kek)[:8]`` names the key without revealing it.
* Field ciphertext format (version ``e1``, text column): ``"e1:" + base64url(nonce(12) | ciphertext+tag)``,
  with the associated data ``"app.model.field:pk"`` so that a value copied to another row or column fails.
  A new format gets a new prefix (``e2:``) and ``decrypt_value`` keeps reading the old ones.
* Every failure to decrypt (unknown key, wrong key, tampered or moved value, unknown format) is
  ``KeyUnavailable``: the value is never shown, and the API answers 503 ``key-unavailable``.
* Blind index: HMAC-SHA256 with a per-field key derived (HKDF) from ``BLIND_INDEX_KEY`` over a
  normalized value, truncated to 32 bits so that values collide a little; callers filter by the
  index, then decrypt and compare.

See ``docs/confidentiality.md`` for the threat model, key rotation and erasure.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

WRAP_VERSION = b"K1"
FIELD_PREFIX = "e1:"
NONCE_BYTES = 12
KEY_BYTES = 32
KEK_ID_BYTES = 8
#: version + key id + nonce + wrapped 32-byte key + 16-byte tag
WRAPPED_KEY_BYTES = len(WRAP_VERSION) + KEK_ID_BYTES + NONCE_BYTES + KEY_BYTES + 16


class CryptoError(Exception):
    """Base of encryption errors; messages never include plaintext or key material."""


class KeyUnavailable(CryptoError):
    """The key needed to decrypt is not configured (or the data was tampered with)."""

    #: How the API answers it (plumbing.problems maps any exception that carries a ``problem``).
    problem = ("key-unavailable", 503, "The data cannot be decrypted with the configured keys.")


class DataKeyDestroyed(CryptoError):
    """The case's data key was destroyed (erasure): its data is gone for good."""


def kek_id(key: bytes) -> bytes:
    """The public name of a key-encryption key (a hash prefix; reveals nothing about the key)."""
    return hashlib.sha256(b"kek-id:" + key).digest()[:KEK_ID_BYTES]


def key_fingerprint(key: bytes) -> str:
    """``kek_id`` as hex, for operators (rotation output, system checks, audit details)."""
    return kek_id(key).hex()


@lru_cache(maxsize=8)
def _keyring(keys: tuple[bytes, ...]) -> dict[bytes, bytes]:
    return {kek_id(k): k for k in keys}


def keyring() -> dict[bytes, bytes]:
    """Every configured key by its id (read from settings on each call: tests and rotation change them)."""
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def active_kek() -> bytes:
    if not settings.FIELD_ENCRYPTION_KEYS:
        raise KeyUnavailable("FIELD_ENCRYPTION_KEYS is not configured")
    return settings.FIELD_ENCRYPTION_KEYS[0]


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(dek: bytes, *, owner_id) -> bytes:
    kek = active_kek()
    nonce = os.urandom(NONCE_BYTES)
    return (
        WRAP_VERSION + kek_id(kek) + nonce + _aead(kek).encrypt(nonce, dek, b"dek:" + str(owner_id).encode())
    )


def wrapped_key_id(wrapped: bytes | memoryview) -> bytes:
    """The id of the key that wrapped this data key (readable without any key)."""
    return bytes(wrapped[2 : 2 + KEK_ID_BYTES])


def unwrap_data_key(wrapped: bytes | memoryview | None, *, owner_id) -> bytes:
    if wrapped is None:
        raise DataKeyDestroyed("the data key of this record was destroyed")
    wrapped = bytes(wrapped)
    if wrapped[:2] != WRAP_VERSION or len(wrapped) != WRAPPED_KEY_BYTES:
        raise KeyUnavailable("unknown wrapped-key format")
    kek = keyring().get(wrapped_key_id(wrapped))
    if kek is None:
        raise KeyUnavailable("the key that wrapped this data key is not configured")
    return _unwrap(kek, wrapped, owner_id)


@lru_cache(maxsize=4096)
def _unwrap(kek: bytes, wrapped: bytes, owner_id) -> bytes:
    """Cached by (key, wrapped bytes, owner): a key removed from settings is never looked up again, and the
    owner id (a UUID: cheap to hash) is only turned into text on a miss."""
    nonce, body = wrapped[10 : 10 + NONCE_BYTES], wrapped[10 + NONCE_BYTES :]
    try:
        return _aead(kek).decrypt(nonce, body, b"dek:" + str(owner_id).encode())
    except InvalidTag:
        raise KeyUnavailable("the data key does not decrypt with the configured key") from None


def is_active_wrapping(wrapped: bytes | memoryview | None) -> bool:
    return wrapped is None or wrapped_key_id(bytes(wrapped)) == kek_id(active_kek())


def rewrap_data_key(wrapped: bytes | memoryview, *, owner_id) -> bytes:
    """The same data key, wrapped by the active key (key rotation: the field ciphertexts do not change)."""
    return wrap_data_key(unwrap_data_key(wrapped, owner_id=owner_id), owner_id=owner_id)


def forget_cached_keys() -> None:
    """Drop every unwrapped data key this process holds in memory (after an erasure, and in tests)."""
    _unwrap.cache_clear()
    _aead.cache_clear()


@lru_cache(maxsize=4096)
def _aead(dek: bytes) -> AESGCM:
    return AESGCM(dek)


_PREFIX_LEN = len(FIELD_PREFIX)
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def encrypt_value(dek: bytes, plaintext: bytes, aad: str) -> str:
    """``e1:`` + base64url(nonce | AES-GCM(dek, plaintext, aad)); a fresh random nonce per value."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(dek).encrypt(nonce, plaintext, aad.encode())
    # binascii directly: base64.urlsafe_b64encode costs as much as the encryption itself here.
    return FIELD_PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).translate(_TO_URLSAFE).decode()


def decrypt_value(dek: bytes, ciphertext: str, aad: str) -> bytes:
    """The plaintext, or ``KeyUnavailable`` (never the ciphertext, never a partial value)."""
    if not isinstance(ciphertext, str) or not ciphertext.startswith(FIELD_PREFIX):
        raise KeyUnavailable("value is not in a known ciphertext format")
    try:
        raw = binascii.a2b_base64(
            ciphertext[_PREFIX_LEN:].encode("ascii").translate(_FROM_URLSAFE), strict_mode=True
        )
        return _aead(dek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode())
    except (InvalidTag, ValueError, UnicodeEncodeError):
        raise KeyUnavailable("value does not decrypt for this record and field") from None


# --- blind indexes -------------------------------------------------------------------------------

BLIND_INDEX_BYTES = 4


@lru_cache(maxsize=32)
def derive_index_key(label: str, root: bytes) -> bytes:
    """The HMAC key of one searchable index, derived from ``root`` (BLIND_INDEX_KEY) by HKDF-SHA256 with the
    info ``blind-index:<label>``: each field (``document_number``) and each matching index (``match:…``)
    has a key of its own. Changing this derivation would orphan every stored index."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"blind-index:" + label.encode()
    ).derive(root)


def blind_index(field: str, normalized: str) -> str:
    """Truncated HMAC of a normalized value ('' for an empty value: nothing to search)."""
    if not normalized:
        return ""
    if not settings.BLIND_INDEX_KEY:
        raise KeyUnavailable("BLIND_INDEX_KEY is not configured")
    key = derive_index_key(field, settings.BLIND_INDEX_KEY)
    return hmac.new(key, normalized.encode(), hashlib.sha256).hexdigest()[: BLIND_INDEX_BYTES * 2]


def normalize_document_number(value: str | None) -> str:
    """Upper case, no spaces, dashes, dots or slashes (contract §6.1): ``v-12.345.678`` = ``V12345678``."""
    return re.sub(r"[\s\-./]+", "", (value or "")).upper()
