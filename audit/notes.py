"""C2SP signed notes, checkpoints and cosignatures (contract §7.3).

* tlog-checkpoint body: ``"{origin}\\n{tree_size}\\n{base64 root}\\n"``;
* signed-note: the body, an empty line, then one line per signature
  ``"— {key name} {base64(key_id ‖ signature)}\\n"``; Ed25519 key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public
  key)[:4]; verifier key ``"{name}+{hex key id}+{base64(0x01 ‖ public key)}"`` (golang.org/x/mod/sumdb/note);
* tlog-cosignature (cosignature/v1): a witness's Ed25519 signature, algorithm byte 0x04, over
  ``"cosignature/v1\\ntime {timestamp}\\n" + body``, written base64(key_id ‖ 8-byte timestamp ‖ signature).

The log's origin comes from ``AUDIT_LOG_ORIGIN``, by default ``SITE_URL``'s host[:port] + ``/audit``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"  # the em dash that starts a signature line
#: A cosignature dated more than this in the future is refused (the C2SP text allows refusing any).
FUTURE_MARGIN = 600
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """A malformed or unverifiable note, key or cosignature (the message names no data)."""


def origin() -> str:
    configured = getattr(settings, "AUDIT_LOG_ORIGIN", "")
    if configured:
        return configured
    parts = urlsplit(settings.SITE_URL)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port}/audit" if parts.port else f"{host}/audit"


def key_id(name: str, algorithm: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()[:4]


def vkey(name: str, algorithm: int, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes([algorithm]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, algorithm, public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    name: str
    algorithm: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.algorithm, self.public_key)

    @property
    def text(self) -> str:
        return vkey(self.name, self.algorithm, self.public_key)


def parse_vkey(text: str, algorithm: int) -> Verifier:
    """A verifier key of that algorithm (0x01 for the log, 0x04 for a witness), its key id checked."""
    if not isinstance(text, str) or len(text) > 255 or text.count("+") < 2:
        raise NoteError("a verifier key is name+hex key id+base64 key")
    name, hex_id, encoded = text.split("+", 2)  # the name holds no "+"; base64 may
    if not _NAME.match(name) or not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteError("a verifier key is name+hex key id+base64 key")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the key is not base64") from None
    if len(raw) != 33 or raw[0] != algorithm:
        raise NoteError("not an Ed25519 key of the expected algorithm")
    verifier = Verifier(name, algorithm, raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise NoteError("the key id does not match the key")
    return verifier


def checkpoint_body(origin_: str, tree_size: int, root: bytes) -> str:
    return f"{origin_}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n"


def signature_line(name: str, key_id_: bytes, signature: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(key_id_ + signature).decode('ascii')}\n"


def sign_note(body: str, private_key: Ed25519PrivateKey, name: str) -> str:
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = private_key.sign(body.encode())
    return body + "\n" + signature_line(name, key_id(name, ED25519, public), signature)


def with_cosignatures(note: str, cosignatures) -> str:
    """The note with one line per stored cosignature (``vkey``, ``signature`` as stored) appended."""
    lines = []
    for cosignature in cosignatures:
        witness = parse_vkey(cosignature.vkey, COSIGNATURE_V1)
        lines.append(signature_line(witness.name, witness.key_id, base64.b64decode(cosignature.signature)))
    return note + "".join(lines)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root: bytes
    body: str


def open_note(note: str, verifier: Verifier) -> Checkpoint:
    """Verify the log's signature on a checkpoint note and parse its body (raises ``NoteError``)."""
    if not isinstance(note, str) or "\n\n" not in note or not note.endswith("\n"):
        raise NoteError("not a signed note")
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not re.fullmatch(r"[1-9][0-9]{0,18}|0", lines[1]):
        raise NoteError("not a checkpoint")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the root hash is not base64") from None
    if len(root) != 32 or lines[0] != verifier.name:
        raise NoteError("not a checkpoint of this log")
    key = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    for line in signatures[:-1].split("\n"):
        prefix = f"{DASH} {verifier.name} "
        if not line.startswith(prefix):
            continue
        try:
            raw = base64.b64decode(line[len(prefix) :], validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) != 68 or raw[:4] != verifier.key_id:
            continue
        try:
            key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise NoteError("the log's signature does not verify") from None
        return Checkpoint(lines[0], int(lines[1]), root, body)
    raise NoteError("the note carries no signature of this key")


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(body: str, private_key: Ed25519PrivateKey, timestamp: int | None = None) -> bytes:
    """A witness's timestamped signature (8-byte timestamp ‖ 64-byte signature) of a checkpoint body."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return timestamp.to_bytes(8, "big") + private_key.sign(cosigned_message(body, timestamp))


def verify_cosignature(body: str, witness_vkey: str, signature_b64: str) -> tuple[Verifier, int]:
    """Check a witness's cosignature of ``body``: → (the witness, its timestamp); raises ``NoteError``."""
    witness = parse_vkey(witness_vkey, COSIGNATURE_V1)
    if not isinstance(signature_b64, str) or len(signature_b64) > 128:
        raise NoteError("the signature is not base64")
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the signature is not base64") from None
    if len(raw) != 72:
        raise NoteError("a cosignature is an 8-byte timestamp and a 64-byte signature")
    timestamp = int.from_bytes(raw[:8], "big")
    if timestamp >= 1 << 63 or timestamp > time.time() + FUTURE_MARGIN:
        raise NoteError("the cosignature's time is in the future")
    try:
        Ed25519PublicKey.from_public_bytes(witness.public_key).verify(
            raw[8:], cosigned_message(body, timestamp)
        )
    except InvalidSignature:
        raise NoteError("the cosignature does not verify") from None
    return witness, timestamp
