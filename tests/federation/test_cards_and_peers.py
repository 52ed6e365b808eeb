"""Cards, ``federation_card``, ``federation_peer_add`` (its exit codes, §7.4) and ``federation_status``."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from federation import cards
from federation.models import Peer
from tests.factories import InstitutionFactory

from .conftest import new_remote


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_card_is_the_last_line_and_its_self_signature_is_the_contracts(node):
    InstitutionFactory(code="DP_OFFICE")
    line = _run("federation_card").strip().splitlines()[-1]
    card = json.loads(line)
    assert set(card) == {"url", "signing_key", "encryption_key", "institutions", "signature"}
    assert card["url"] == "http://testserver" and card["institutions"] == ["DP_OFFICE", "IOM"]
    # The signature covers the card without it, sorted keys and no spaces — checked here from scratch.
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    unsigned = {k: v for k, v in card.items() if k != "signature"}
    Ed25519PublicKey.from_public_bytes(base64.b64decode(card["signing_key"])).verify(
        base64.b64decode(card["signature"]),
        json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode(),
    )
    assert len(base64.b64decode(card["encryption_key"])) == 32
    assert cards.parse_card(line).fingerprint in _run("federation_card")


def test_federation_card_without_node_url_fails_clearly(settings, db):
    settings.NODE_URL = ""
    with pytest.raises(CommandError, match="federation is off: set NODE_URL"):
        call_command("federation_card", stdout=io.StringIO())


@pytest.mark.parametrize(
    "spoil",
    [
        lambda c: {**c, "institutions": ["DP", "IOM2"]},  # changed after signing
        lambda c: {**c, "url": "https://evil.example"},
        lambda c: {**c, "signature": c["signature"][:-4] + "AAA="},
        lambda c: {k: v for k, v in c.items() if k != "signature"},
        lambda c: {**c, "extra": 1},
        lambda c: {**c, "signing_key": "not base64!"},
        lambda c: {**c, "url": c["url"] + "/"},
    ],
)
def test_a_card_that_does_not_verify_is_refused_with_exit_1(node, remote, spoil):
    card = spoil(json.loads(remote.card))
    with pytest.raises(CommandError) as failed:
        call_command("federation_peer_add", json.dumps(card), stdout=io.StringIO())
    assert failed.value.returncode == 1
    assert not Peer.objects.exists()


def test_not_json_is_refused(node):
    with pytest.raises(CommandError, match="not a valid card"):
        call_command("federation_peer_add", "{nope", stdout=io.StringIO())


def test_pinning_the_same_card_again_updating_institutions_and_replacing_keys(node, remote):
    assert _run("federation_peer_add", remote.card).startswith("added: https://dp.node.example")
    peer = Peer.objects.get()
    assert peer.institutions == ["DP"] and peer.fingerprint == cards.parse_card(remote.card).fingerprint
    assert _run("federation_peer_add", remote.card).startswith("unchanged:")
    remote.institutions = ("DP", "DP_REGIONAL")
    assert _run("federation_peer_add", remote.card).startswith("updated:")
    assert Peer.objects.get().institutions == ["DP", "DP_REGIONAL"]

    rotated = new_remote(remote.url, remote.institutions)
    with pytest.raises(CommandError, match="other keys.*--replace") as failed:
        call_command("federation_peer_add", rotated.card, stdout=io.StringIO())
    assert failed.value.returncode == 1
    assert Peer.objects.get().fingerprint == peer.fingerprint  # nothing changed
    assert _run("federation_peer_add", rotated.card, "--replace").startswith("replaced:")
    replaced = Peer.objects.get()
    assert replaced.fingerprint == cards.parse_card(rotated.card).fingerprint
    assert replaced.previous_cards == [remote.card]  # evidence signed with the old key stays checkable
    actions = list(
        AuditEvent.objects.filter(action__startswith="federation.peer_").values_list("action", flat=True)
    )
    assert actions == ["federation.peer_added", "federation.peer_updated", "federation.peer_replaced"]
    detail = AuditEvent.objects.filter(action="federation.peer_replaced").get().detail
    assert detail == {
        "node": remote.url,
        "fingerprint": replaced.fingerprint,
        "remote_institutions": ["DP", "DP_REGIONAL"],
    }


def test_own_card_and_institution_clashes_are_refused(node, remote):
    own = _run("federation_card").strip().splitlines()[-1]
    with pytest.raises(CommandError, match="own card"):
        call_command("federation_peer_add", own, stdout=io.StringIO())
    claims_iom = new_remote("https://fake.node.example", ("IOM",))
    with pytest.raises(CommandError, match="hosted by this node: IOM"):
        call_command("federation_peer_add", claims_iom.card, stdout=io.StringIO())
    _run("federation_peer_add", remote.card)
    claims_dp = new_remote("https://other.node.example", ("DP",))
    with pytest.raises(CommandError, match="already hosted by the peer https://dp.node.example: DP"):
        call_command("federation_peer_add", claims_dp.card, stdout=io.StringIO())
    assert list(Peer.objects.values_list("url", flat=True)) == [remote.url]


def test_status_lists_peers_with_fingerprint_contact_waiting_and_failures(node, remote):
    assert "no peers" in _run("federation_status")
    _run("federation_peer_add", remote.card)
    Peer.objects.update(failures=2)
    out = _run("federation_status")
    assert "this node: http://testserver  fingerprint " in out
    line = out.strip().splitlines()[-1]
    fingerprint = Peer.objects.get().fingerprint
    assert line.startswith(
        f"https://dp.node.example  fingerprint {fingerprint}  institutions DP  last contact never"
    )
    assert "waiting 0" in line and "failures 2" in line and line.endswith("witnessed never")


def test_status_says_federation_is_off(settings, db):
    settings.NODE_URL = ""
    assert "federation off" in _run("federation_status")
