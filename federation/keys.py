"""This node's identity (contract §7.4): its URL and keys from the settings, and its card.

Federation is on when ``NODE_URL`` is set. The private keys never leave this module's callers' memory:
never logged, never in an exception message (a missing or malformed key names the variable only).
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .cards import Card, make_card

DOOR_PREFIX = "/federation/v1/"
MESSAGES_PATH = DOOR_PREFIX + "messages/"
#: Several messages in one request (a peer catching up): each exactly as it would be posted alone.
BATCH_PATH = DOOR_PREFIX + "batch/"


class FederationOff(RuntimeError):
    """``NODE_URL`` is not set: this installation is a single node."""

    def __init__(self):
        super().__init__(
            "federation is off: set NODE_URL (and, in production, NODE_SIGNING_KEY and NODE_ENCRYPTION_KEY)"
        )


def enabled() -> bool:
    return bool(getattr(settings, "NODE_URL", ""))


def node_url() -> str:
    if not enabled():
        raise FederationOff()
    return settings.NODE_URL


def _raw(name: str) -> bytes:
    raw = getattr(settings, name, b"")
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise ImproperlyConfigured(
            f"{name} is missing or not a 32-byte key (url-safe base64 of 32 random bytes)"
        )
    return raw


# A private key object is built from its 32 bytes once per process and value (≈ 60 µs each: the public key is
# derived), not at every message signed or opened; a changed setting (a rotation, a test) is a new value.
@functools.lru_cache(maxsize=4)
def _signing_key(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


@functools.lru_cache(maxsize=4)
def _encryption_key(raw: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw)


def signing_key() -> Ed25519PrivateKey:
    """The node's Ed25519 key (``NODE_SIGNING_KEY`` is its 32-byte seed)."""
    return _signing_key(_raw("NODE_SIGNING_KEY"))


def encryption_key() -> X25519PrivateKey:
    """The node's X25519 key (``NODE_ENCRYPTION_KEY``: 32 bytes)."""
    return _encryption_key(_raw("NODE_ENCRYPTION_KEY"))


def own_card(institutions) -> Card:
    return make_card(
        url=node_url(), signing_key=signing_key(), encryption_key=encryption_key(), institutions=institutions
    )


def messages_url(base: str) -> str:
    """Where a node (its card's URL, which may carry a path prefix) receives messages."""
    return base + MESSAGES_PATH


def messages_path(base: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(base).path + MESSAGES_PATH


def batch_url(base: str) -> str:
    """Where a node receives a batch of messages (``BATCH_PATH``)."""
    return base + BATCH_PATH


def batch_path(base: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(base).path + BATCH_PATH
