"""The webhook event ``audit.checkpoint`` (contract §6.3): every subscription that asked for it — whatever its
institution — receives each signed checkpoint as ``data``, signed per Standard Webhooks; others do not."""

from __future__ import annotations

import base64
import json

import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook

from audit import checkpoints
from audit.recorder import record
from audit.tasks import verify_audit_chain
from notifications import channels, relay
from notifications.models import Delivery, OutboxMessage


class FakeResponse:
    def __init__(self, status_code):
        self.status_code = status_code


@pytest.fixture
def posts(monkeypatch, settings):
    """Embedded mode (the relay delivers in-process); webhook POSTs recorded and answered 200."""
    settings.REDIS_URL = None
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    calls = []

    def post(url, *, data=None, headers=None, **kwargs):
        calls.append({"url": url, "body": data, "headers": headers})
        return FakeResponse(200)

    monkeypatch.setattr(channels, "http_post", post)
    return calls


def _subscribe(api_as, institution, url, events):
    response = api_as(institution, scopes=["webhooks:manage"]).post(
        "/api/v1/webhooks/", {"url": url, "events": events}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["secret"]


def test_the_event_type_is_allowed_in_subscriptions(iom, api_as):
    _subscribe(api_as, iom, "https://partner.example.org/hooks", ["audit.checkpoint"])


def test_each_checkpoint_is_delivered_to_the_subscriptions_that_asked_for_it(iom, dp, third, api_as, posts):
    dp_secret = _subscribe(api_as, dp, "https://dp.example.org/audit", ["audit.checkpoint"])
    third_secret = _subscribe(
        api_as, third, "https://unhcr.example.org/hooks", ["referral.requested", "audit.checkpoint"]
    )
    _subscribe(api_as, iom, "https://iom.example.org/hooks", ["referral.requested"])  # did not ask
    record(actor_type="system", action="test.event")

    result = verify_audit_chain.apply().get()
    assert result["ok"]
    stored = checkpoints.latest()
    served = checkpoints.as_served(stored)
    outbox = OutboxMessage.objects.get(event_type="audit.checkpoint")
    assert outbox.payload == served and outbox.referral_id is None
    relay.sweep()

    assert sorted(c["url"] for c in posts) == [
        "https://dp.example.org/audit",
        "https://unhcr.example.org/hooks",
    ]
    secrets = {"https://dp.example.org/audit": dp_secret, "https://unhcr.example.org/hooks": third_secret}
    public = base64.b64decode(checkpoints.public_key_document()["public_key"])
    for call in posts:
        payload = Webhook(secrets[call["url"]]).verify(call["body"], call["headers"])
        assert payload["type"] == "audit.checkpoint"
        assert payload["data"] == served
        # The partner can check the checkpoint on its own side, with the public key alone.
        message = "{sequence}.{hash}.{at}".format(**payload["data"]).encode()
        nacl.signing.VerifyKey(public).verify(message, base64.b64decode(payload["data"]["signature"]))
    assert Delivery.objects.filter(channel=Delivery.Channel.WEBHOOK, state="succeeded").count() == 2
    assert not Delivery.objects.exclude(channel=Delivery.Channel.WEBHOOK).exists()  # no e-mail, no in-app

    relay.sweep()  # delivered once
    assert len(posts) == 2


def test_the_body_carries_the_checkpoint_only(iom, api_as, posts):
    _subscribe(api_as, iom, "https://iom.example.org/audit", ["audit.checkpoint"])
    record(actor_type="system", action="test.event", detail={"n": 1})
    verify_audit_chain.apply().get()
    relay.sweep()
    body = json.loads(posts[0]["body"])
    assert set(body) == {"type", "timestamp", "data"}
    assert set(body["data"]) == {
        *("sequence", "hash", "at", "signature"),  # §6.3
        *("tree_size", "root_hash", "note", "cosignatures"),  # §7.3
    }
