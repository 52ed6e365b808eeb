"""Evidence of what crossed between two nodes, verifiable by a third party with a card alone (pure).

``manage.py federation_evidence REFERRAL_ID`` writes one JSON line per message this node sent or received::

    {"direction": "sent"|"received", "node": <this node's URL>, "peer": <the peer's URL>,
     "message_id", "type", "referral", "recorded_at",
     "request":  {"method", "path", "headers": {<lowercase name>: value}, "body": <base64>|null},
     "response": {"status", "headers": {...}, "body": <base64>|null} | null}

Headers are kept exactly as signed; a body is null once destroyed (consent withdrawal), when its signed
``content-digest`` still proves what it was. :func:`verify_line` checks every signature in a line made by
the node of a card: the request when that node sent it, the response when that node answered it.
"""

from __future__ import annotations

import base64
import binascii
import json

from .cards import Card, parse_card
from .protocol import Refused, RequestParts, verify_request, verify_response


class EvidenceError(ValueError):
    """The line does not hold (the message says which part and why)."""


def _body(part: dict) -> bytes | None:
    if part.get("body") is None:
        return None
    try:
        return base64.b64decode(part["body"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise EvidenceError("a body is not base64") from None


def _signer(headers: dict) -> str | None:
    value = {k.lower(): v for k, v in headers.items()}.get("signature-input", "")
    start = value.find('keyid="')
    if start < 0:
        return None
    return value[start + 7 : value.find('"', start + 7)]


def verify_line(line: str | dict, card: str | dict | Card) -> dict[str, str]:
    """Verify what ``card``'s node signed in one evidence line; returns ``{"request"|"response": "verified"}``
    for each part it signed. EvidenceError when the card, a signature or a body does not hold, or when
    nothing in the line was signed by that node."""
    try:
        card = card if isinstance(card, Card) else parse_card(card)
    except ValueError as exc:
        raise EvidenceError(f"card: {exc}") from None
    try:
        data = json.loads(line) if isinstance(line, str) else line
        request = data["request"]
        parts = RequestParts(request["method"], request["path"], dict(request["headers"]))
        response = data.get("response")
    except (ValueError, KeyError, TypeError):
        raise EvidenceError("not an evidence line") from None
    verified: dict[str, str] = {}
    if _signer(parts.headers) == card.url:
        try:
            verify_request(
                method=parts.method,
                path=parts.path,
                headers=parts.headers,
                body=_body(request),
                key_for=lambda keyid: card.signing_key if keyid == card.url else None,
                recipient=None,
                now=None,
            )
        except Refused as exc:
            raise EvidenceError(f"request: {exc.cause}") from None
        verified["request"] = "verified"
    if response and _signer(response.get("headers") or {}) == card.url:
        try:
            verify_response(
                request=parts,
                status=int(response["status"]),
                headers=dict(response["headers"]),
                body=_body(response),
                public_key=card.signing_key,
                responder=card.url,
            )
        except (Refused, KeyError, TypeError, ValueError) as exc:
            raise EvidenceError(f"response: {getattr(exc, 'cause', 'malformed')}") from None
        verified["response"] = "verified"
    if not verified:
        raise EvidenceError("nothing in this line was signed by the card's node")
    return verified
