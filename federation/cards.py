"""Node cards (contract §7.4), pure: a node's URL, public keys and institutions, signed by the node itself.

One line of JSON ``{"url", "signing_key", "encryption_key", "institutions", "signature"}``: the keys are the
standard base64 of the 32 raw bytes of the Ed25519 and X25519 public keys, ``signature`` the standard base64
Ed25519 signature, by the signing key, of the card without ``signature`` serialized with sorted keys and no
spaces.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .protocol import b64, unb64

FIELDS = {"url", "signing_key", "encryption_key", "institutions", "signature"}
_CODE = re.compile(r"^[A-Z0-9_]{2,16}$")
MAX_CARD_CHARS = 64 * 1024


class CardError(ValueError):
    """Not a valid card (the message names the field, never echoes the value)."""


def raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def canonical(unsigned: dict) -> bytes:
    """Sorted keys, no spaces: the bytes the card's signature covers."""
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fingerprint(signing_key: bytes, encryption_key: bytes) -> str:
    """What people compare over the phone: SHA-256 of both public keys, 32 hex digits in fours."""
    digest = hashlib.sha256(b"referral-federation-card/v1\n" + signing_key + encryption_key).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def check_url(url: object) -> str:
    """A node URL as cards carry it: absolute http(s) with a host; no credentials, query, fragment or
    trailing slash."""
    if not isinstance(url, str) or not url or len(url) > 200 or not url.isascii():
        raise CardError("url: not a node URL")
    if any(c.isspace() or ord(c) < 32 or c in '"\\' for c in url) or url.endswith("/"):
        raise CardError("url: not a node URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — a malformed port raises here
    except ValueError:
        raise CardError("url: not a node URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise CardError("url: not a node URL")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise CardError("url: not a node URL")
    return url


@dataclass(frozen=True)
class Card:
    url: str
    signing_key: bytes
    encryption_key: bytes
    institutions: tuple[str, ...]
    signature: bytes

    def unsigned(self) -> dict:
        return {
            "url": self.url,
            "signing_key": b64(self.signing_key),
            "encryption_key": b64(self.encryption_key),
            "institutions": list(self.institutions),
        }

    def as_dict(self) -> dict:
        return {**self.unsigned(), "signature": b64(self.signature)}

    def line(self) -> str:
        return canonical(self.as_dict()).decode("utf-8")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_key, self.encryption_key)


def make_card(
    *, url: str, signing_key: Ed25519PrivateKey, encryption_key: X25519PrivateKey, institutions
) -> Card:
    codes = tuple(sorted(set(institutions)))
    unsigned = Card(
        check_url(url), raw_public(signing_key), raw_public(encryption_key), codes, b""
    ).unsigned()
    signature = signing_key.sign(canonical(unsigned))
    return Card(url, raw_public(signing_key), raw_public(encryption_key), codes, signature)


def parse_card(text: str | dict) -> Card:
    """A card whose self-signature verifies, or CardError."""
    if isinstance(text, str):
        if len(text) > MAX_CARD_CHARS:
            raise CardError("the card is too long")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise CardError("not one line of JSON") from None
    else:
        data = text
    if not isinstance(data, dict) or set(data) != FIELDS:
        raise CardError("a card has exactly url, signing_key, encryption_key, institutions and signature")
    url = check_url(data["url"])
    keys = {}
    for name in ("signing_key", "encryption_key"):
        try:
            keys[name] = unb64(data[name], length=32) if isinstance(data[name], str) else None
        except ValueError:
            keys[name] = None
        if keys[name] is None:
            raise CardError(f"{name}: not the standard base64 of 32 bytes")
    institutions = data["institutions"]
    if (
        not isinstance(institutions, list)
        or not all(isinstance(c, str) and _CODE.match(c) for c in institutions)
        or len(set(institutions)) != len(institutions)
    ):
        raise CardError("institutions: a list of distinct institution codes")
    try:
        signature = unb64(data["signature"], length=64) if isinstance(data["signature"], str) else b""
    except ValueError:
        signature = b""
    if not signature:
        raise CardError("signature: not the standard base64 of 64 bytes")
    unsigned = {k: v for k, v in data.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(keys["signing_key"]).verify(signature, canonical(unsigned))
    except (InvalidSignature, ValueError):
        raise CardError("the card's self-signature does not verify") from None
    return Card(url, keys["signing_key"], keys["encryption_key"], tuple(institutions), signature)
