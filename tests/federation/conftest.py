"""A node under test (this process, ``http://testserver``) and a remote node whose keys the test holds."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from federation import protocol
from federation.cards import make_card

HERE = "http://testserver"
PATH = "/federation/v1/messages/"


@dataclass
class Remote:
    """A peer node played by the test: it signs with its own keys, as a real one would."""

    url: str
    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    institutions: tuple[str, ...] = ("DP",)

    @property
    def card(self) -> str:
        return make_card(
            url=self.url,
            signing_key=self.signing,
            encryption_key=self.encryption,
            institutions=self.institutions,
        ).line()

    def request(self, envelope: dict | bytes, *, message_id=None, created=None, path=PATH, to=HERE):
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        headers = protocol.sign_request(
            key=self.signing,
            sender=self.url,
            recipient=to,
            method="POST",
            path=path,
            body=body,
            message_id=message_id or protocol.new_message_id(),
            created=int(time.time()) if created is None else created,
        )
        return body, headers


def signed_answer(remote: Remote, headers: dict, status: int, body: bytes, *, key=None, path: str = PATH):
    """The ``requests.Response`` a peer played by the test gives to the request whose signed ``headers``
    it received (at ``path``: the messages' path, or the batches'): ``body`` with ``status``, signed by
    ``key`` (by default the peer's own key) and bound to that request."""
    signed = protocol.sign_response(
        key=key or remote.signing,
        responder=remote.url,
        request=protocol.RequestParts("POST", path, headers),
        status=status,
        body=body,
        created=int(time.time()),
    )
    response = requests.Response()
    response.status_code = status
    response.raw = io.BytesIO(body)
    response.headers.update({"Content-Type": "application/json", **signed})
    return response


def new_remote(url="https://dp.node.example", institutions=("DP",)) -> Remote:
    return Remote(url, Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), tuple(institutions))


@pytest.fixture
def node(settings, db):
    """This process as a federated node hosting IOM."""
    from tests.factories import InstitutionFactory

    settings.NODE_URL = HERE
    settings.NODE_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes_raw()
    settings.NODE_ENCRYPTION_KEY = X25519PrivateKey.generate().private_bytes_raw()
    InstitutionFactory(code="IOM", name="IOM")
    return settings


@pytest.fixture
def remote():
    return new_remote()


@pytest.fixture
def post(client):
    """``post(body, headers, path=PATH)`` → the door's response."""

    def send(body, headers, path=PATH):
        return client.post(path, data=body, content_type="application/json", headers=headers)

    return send
