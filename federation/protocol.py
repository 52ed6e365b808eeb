"""The federation's message layer (contract §7.4), pure: no Django, no database, no network.

A profile of HTTP Message Signatures (RFC 9421) with Ed25519, over a body hashed by ``Content-Digest``
(RFC 9530, ``sha-256``), and HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305)
for bodies that carry personal data. docs/federation.md describes it for a peer that implements it anew.

Requests: ``POST`` with the covered components ``"@method" "@path" "content-digest" "federation-message-id"
"federation-to"`` and the parameters ``created`` (Unix seconds), ``keyid`` (the sending node's URL, as on its
card), ``alg="ed25519"`` and ``tag="referral-federation/v1"``, in exactly this order, under the label
``fed``. Responses: ``"@status" "content-digest"`` and, from the request (RFC 9421 §2.4, ``;req``),
``"@method" "@path" "content-digest" "federation-message-id"`` — a response is bound to its request's
message id and body hash, so the first answer to a message still verifies when the message is sent again.

Anything else — another label, other components, other parameters or order, two signatures, another digest
algorithm — is refused: a profile accepts one serialization, so that nothing has to be guessed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

TAG = "referral-federation/v1"
LABEL = "fed"
MAX_SKEW_SECONDS = 300
MESSAGE_ID = "federation-message-id"
RECIPIENT = "federation-to"

REQUEST_COMPONENTS = ('"@method"', '"@path"', '"content-digest"', f'"{MESSAGE_ID}"', f'"{RECIPIENT}"')
RESPONSE_COMPONENTS = (
    '"@status"',
    '"content-digest"',
    '"@method";req',
    '"@path";req',
    '"content-digest";req',
    f'"{MESSAGE_ID}";req',
)
#: Why a message is refused (``federation.refused``'s ``cause``): never more than this word.
CAUSES = (
    "unsigned",  # a header of the profile is missing
    "malformed",  # present, but not in the profile's one serialization
    "unknown-node",  # keyid names no pinned peer
    "bad-signature",
    "altered-body",  # the signature holds, the body does not match its signed digest
    "stale",  # created more than MAX_SKEW_SECONDS away from the receiver's clock
    "wrong-recipient",  # signed for another node
    "undecryptable",
)

_B64 = r"[A-Za-z0-9+/]+={0,2}"
_SF_STRING_CHARS = r"[\x20\x21\x23-\x5b\x5d-\x7e]*"  # printable ASCII but '"' and '\'
_INPUT = re.compile(
    rf"^{LABEL}=\((?P<components>[^()]*)\);created=(?P<created>[0-9]{{1,12}});"
    rf'keyid="(?P<keyid>{_SF_STRING_CHARS})";alg="ed25519";tag="(?P<tag>{_SF_STRING_CHARS})"$'
)
_SIGNATURE = re.compile(rf"^{LABEL}=:(?P<value>{_B64}):$")
_DIGEST = re.compile(rf"^sha-256=:(?P<value>{_B64}):$")
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class Refused(Exception):
    """The message is not accepted; ``cause`` is one of ``CAUSES`` (no header value, no body in it)."""

    def __init__(self, cause: str):
        assert cause in CAUSES, cause
        super().__init__(cause)
        self.cause = cause


@dataclass(frozen=True)
class Verified:
    """What a valid signature vouches for."""

    signer: str  # keyid: the signing node's URL
    message_id: str
    created: int


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, *, length: int | None = None) -> bytes:
    """Standard base64, strictly; ``ValueError`` otherwise (or when not ``length`` bytes long)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError):
        raise ValueError("not standard base64") from None
    if length is not None and len(raw) != length:
        raise ValueError(f"not {length} bytes")
    return raw


def new_message_id() -> str:
    return str(uuid.uuid4())


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` with sha-256."""
    return f"sha-256=:{b64(hashlib.sha256(body).digest())}:"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _params(components: tuple[str, ...], *, created: int, keyid: str) -> str:
    if not re.fullmatch(_SF_STRING_CHARS, keyid):
        raise ValueError("a keyid must be printable ASCII without quotes or backslashes")
    return f'({" ".join(components)});created={int(created)};keyid="{keyid}";alg="ed25519";tag="{TAG}"'


def signature_base(lines: list[tuple[str, str]], params: str) -> bytes:
    """The signature base (RFC 9421 §2.5): one line per component, then ``"@signature-params"``."""
    out = []
    for name, value in lines:
        if not value.isascii() or "\n" in value or "\r" in value:
            raise Refused("malformed")
        out.append(f"{name}: {value}")
    out.append(f'"@signature-params": {params}')
    return "\n".join(out).encode("ascii")


def _request_lines(method: str, path: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ('"@method"', method.upper()),
        ('"@path"', path),
        ('"content-digest"', headers["content-digest"]),
        (f'"{MESSAGE_ID}"', headers[MESSAGE_ID]),
        (f'"{RECIPIENT}"', headers[RECIPIENT]),
    ]


def _response_lines(status: int, headers: dict[str, str], request: RequestParts) -> list[tuple[str, str]]:
    req = _lower(request.headers)
    return [
        ('"@status"', f"{int(status):03d}"),
        ('"content-digest"', headers["content-digest"]),
        ('"@method";req', request.method.upper()),
        ('"@path";req', request.path),
        ('"content-digest";req', req["content-digest"]),
        (f'"{MESSAGE_ID}";req', req[MESSAGE_ID]),
    ]


@dataclass(frozen=True)
class RequestParts:
    """The request a response answers (its headers as sent or received)."""

    method: str
    path: str
    headers: Mapping[str, str]


def _sign(key: Ed25519PrivateKey, lines, components, *, created: int, keyid: str) -> dict[str, str]:
    params = _params(components, created=created, keyid=keyid)
    signature = key.sign(signature_base(lines, params))
    return {"signature-input": f"{LABEL}={params}", "signature": f"{LABEL}=:{b64(signature)}:"}


def sign_request(
    *,
    key: Ed25519PrivateKey,
    sender: str,
    recipient: str,
    method: str,
    path: str,
    body: bytes,
    message_id: str,
    created: int,
) -> dict[str, str]:
    """The headers of a signed request (lowercase names): digest, message id, recipient, signature."""
    headers = {
        "content-digest": content_digest(body),
        MESSAGE_ID: str(uuid.UUID(message_id)),
        RECIPIENT: recipient,
    }
    headers.update(
        _sign(key, _request_lines(method, path, headers), REQUEST_COMPONENTS, created=created, keyid=sender)
    )
    return headers


def sign_response(
    *, key: Ed25519PrivateKey, responder: str, request: RequestParts, status: int, body: bytes, created: int
) -> dict[str, str]:
    """The headers of a signed response bound to ``request`` (its message id and body hash)."""
    headers = {"content-digest": content_digest(body)}
    headers.update(
        _sign(
            key,
            _response_lines(status, headers, request),
            RESPONSE_COMPONENTS,
            created=created,
            keyid=responder,
        )
    )
    return headers


def _parse(headers: dict[str, str], components: tuple[str, ...], required: tuple[str, ...]):
    """(params string, keyid, created, signature bytes) of the profile's one signature, or Refused."""
    for name in ("signature-input", "signature", *required):
        if not headers.get(name):
            raise Refused("unsigned")
    found = _INPUT.match(headers["signature-input"])
    signature = _SIGNATURE.match(headers["signature"])
    if not found or not signature or found["tag"] != TAG:
        raise Refused("malformed")
    if tuple(found["components"].split(" ")) != components:
        raise Refused("malformed")
    try:
        raw_signature = unb64(signature["value"], length=64)
    except ValueError:
        raise Refused("malformed") from None
    if not _DIGEST.match(headers["content-digest"]):
        raise Refused("malformed")
    params = headers["signature-input"][len(LABEL) + 1 :]
    return params, found["keyid"], int(found["created"]), raw_signature


def _check(public_key: bytes, signature: bytes, base: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, base)
    except (InvalidSignature, ValueError):
        raise Refused("bad-signature") from None


def _check_body(headers: dict[str, str], body: bytes | None) -> None:
    """``body`` None: only the signed digest is kept (after a consent withdrawal) — nothing to compare."""
    if body is not None and headers["content-digest"] != content_digest(body):
        raise Refused("altered-body")


def verify_request(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_for: Callable[[str], bytes | None],
    recipient: str | None,
    now: int | None,
    max_skew: int = MAX_SKEW_SECONDS,
) -> Verified:
    """Check a request in the order of the contract: the signature before anything else (unknown node, bad
    signature), then the body against its signed digest, the recipient and the clock.

    ``key_for(keyid)`` gives the pinned Ed25519 public key of that node, or None. ``recipient`` None and
    ``now`` None skip those checks (a third party verifying evidence later).
    """
    headers = _lower(headers)
    params, keyid, created, signature = _parse(
        headers, REQUEST_COMPONENTS, ("content-digest", MESSAGE_ID, RECIPIENT)
    )
    try:
        message_id = str(uuid.UUID(headers[MESSAGE_ID]))
    except ValueError:
        raise Refused("malformed") from None
    if message_id != headers[MESSAGE_ID]:
        raise Refused("malformed")
    public_key = key_for(keyid)
    if public_key is None:
        raise Refused("unknown-node")
    _check(public_key, signature, signature_base(_request_lines(method, path, headers), params))
    _check_body(headers, body)
    if recipient is not None and headers[RECIPIENT] != recipient:
        raise Refused("wrong-recipient")
    if now is not None and abs(now - created) > max_skew:
        raise Refused("stale")
    return Verified(signer=keyid, message_id=message_id, created=created)


def verify_response(
    *,
    request: RequestParts,
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
    public_key: bytes,
    responder: str,
) -> Verified:
    """Check that ``responder`` (its pinned ``public_key``) signed this answer to this very request."""
    headers = _lower(headers)
    params, keyid, created, signature = _parse(headers, RESPONSE_COMPONENTS, ("content-digest",))
    if keyid != responder:
        raise Refused("unknown-node")
    _check(public_key, signature, signature_base(_response_lines(status, headers, request), params))
    _check_body(headers, body)
    return Verified(signer=keyid, message_id=_lower(request.headers)[MESSAGE_ID], created=created)


# --- Encryption of bodies with personal data (HPKE, RFC 9180, base mode) -----------------------------


def request_info(sender: str, recipient: str, message_id: str) -> bytes:
    """HPKE ``info``: binds a sealed body to its sender, recipient and message (no transplanting)."""
    return f"{TAG} request\n{sender}\n{recipient}\n{message_id}".encode()


def response_info(responder: str, requester: str, message_id: str) -> bytes:
    return f"{TAG} response\n{responder}\n{requester}\n{message_id}".encode()


def seal(plaintext: bytes, public_key: bytes, *, info: bytes) -> bytes:
    """Encrypt to a node's X25519 key (32 raw bytes): the 32-byte encapsulated key, then the ciphertext."""
    return _SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public_key), info=info)


def open_sealed(ciphertext: bytes, private_key: X25519PrivateKey, *, info: bytes) -> bytes:
    try:
        return _SUITE.decrypt(ciphertext, private_key, info=info)
    except (InvalidTag, ValueError):
        raise Refused("undecryptable") from None
