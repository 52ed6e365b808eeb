"""Building the two halves of a referral across nodes on one test database: this process plays one node, the
test holds the other node's keys (``conftest.Remote``).

A referral is made through the real services while both institutions are still local, then one of them is
moved to the remote node (``Institution.node`` set, its card pinned): at the receiver's node that referral is
a **copy** (``from_institution.node`` is the sender's node), at the sender's node it is a referral sent to a
**remote institution** (``to_institution.node`` is the receiver's node).
"""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from accounts.actor import actor_for_user
from accounts.choices import Role
from accounts.models import Institution
from federation import protocol, services
from federation.cards import raw_public
from federation.keys import encryption_key, messages_url, signing_key
from tests.builders import referral_through_services
from tests.factories import InstitutionFactory, UserFactory

from .conftest import HERE, PATH, signed_answer


def federate(settings) -> None:
    """This process becomes the node at ``HERE`` with fresh node keys."""
    settings.NODE_URL = HERE
    settings.NODE_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes_raw()
    settings.NODE_ENCRYPTION_KEY = X25519PrivateKey.generate().private_bytes_raw()


def institutions_and_staff(*codes: str) -> dict:
    """The institutions (local for now) and one caseworker's actor of each, by code."""
    out = {}
    for code in codes:
        institution = InstitutionFactory(code=code, name=code)
        user = UserFactory(institution=institution, role=Role.CASEWORKER, username=f"{code.lower()}.cw")
        out[code] = (institution, actor_for_user(user))
    return out


def host_elsewhere(remote, *codes: str):
    """Move the institutions ``codes`` to ``remote``'s node and pin its card; returns the peer."""
    Institution.objects.filter(code__in=codes).update(node=remote.url)
    _outcome, peer = services.pin_peer(remote.card)
    return peer


def sent_referral(sender, to, *, categories=("identity",), path=None, **kwargs):
    """A referral from ``sender``'s institution to ``to``, sent (``path``: more steps after ``send``)."""
    return referral_through_services(
        sender=sender, to=to, categories=categories, path=[(sender, "send"), *(path or [])], **kwargs
    )


def envelope(
    remote, message_type: str, payload: dict, *, message_id: str, referral=None, sealed=True
) -> dict:
    """The envelope ``remote`` sends to this node (its payload sealed to this node's key when ``sealed``)."""
    out = {"type": message_type, "referral": str(referral) if referral else None}
    if sealed:
        info = protocol.request_info(remote.url, HERE, message_id)
        ciphertext = protocol.seal(json.dumps(payload).encode(), raw_public(encryption_key()), info=info)
        out["sealed"] = protocol.b64(ciphertext)
    else:
        out["payload"] = payload
    return out


def opened_answer(remote, response, message_id: str) -> dict:
    """The payload of this node's answer to ``remote`` (opened with ``remote``'s key when sealed)."""
    data = json.loads(response.content)
    if "sealed" in data:
        info = protocol.response_info(HERE, remote.url, message_id)
        return json.loads(protocol.open_sealed(protocol.unb64(data["sealed"]), remote.encryption, info=info))
    return data.get("payload", data)


class Peers:
    """A transport to the remote nodes played by the test: each verifies the request as a node would, opens
    a sealed payload with its own key, and signs its answer — ``answer(remote, type, referral, payload)`` →
    ``(status, payload)`` (default: 200 ``{"ok": true}``). ``seen``: ``(url, type, referral, payload)``."""

    def __init__(self, *remotes, answer=None):
        self.remotes = {remote.url: remote for remote in remotes}
        self.answer = answer or (lambda remote, kind, referral, payload: (200, {"ok": True}))
        self.seen = []

    def __call__(self, url, *, data, headers):
        remote = next(r for base, r in self.remotes.items() if messages_url(base) == url)
        verified = protocol.verify_request(
            method="POST",
            path=PATH,
            headers=headers,
            body=data,
            key_for={HERE: raw_public(signing_key())}.get,
            recipient=remote.url,
            now=int(time.time()),
        )
        sent = json.loads(data)
        payload = sent.get("payload")
        if "sealed" in sent:
            info = protocol.request_info(HERE, remote.url, verified.message_id)
            payload = json.loads(
                protocol.open_sealed(protocol.unb64(sent["sealed"]), remote.encryption, info=info)
            )
        self.seen.append((remote.url, sent["type"], sent["referral"], payload))
        status, answer = self.answer(remote, sent["type"], sent["referral"], payload)
        body = json.dumps({"payload": answer}).encode()
        return signed_answer(remote, headers, status, body)
