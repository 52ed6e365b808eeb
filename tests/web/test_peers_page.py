"""The admins' peers page (federation, contract §7.4): read only, what ``federation.selectors.peer_rows``
gives — fingerprint, institutions, last contact, messages waiting, failures, last checkpoint witnessed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.db import transaction
from django.utils import timezone

from federation import services
from federation.models import Peer
from tests.federation.conftest import new_remote

URL = "/manage/peers/"


@pytest.fixture
def federated(settings):
    settings.NODE_URL = "https://iom.node.example"
    settings.NODE_SIGNING_KEY = Ed25519PrivateKey.generate().private_bytes_raw()
    settings.NODE_ENCRYPTION_KEY = X25519PrivateKey.generate().private_bytes_raw()
    return settings


def test_admins_see_each_peer_and_its_witnessing(federated, iom, iom_admin_client):
    remote = new_remote("https://dp.node.example", ("DP", "DPX"))
    _result, peer = services.pin_peer(remote.card)
    with transaction.atomic():
        services.enqueue(peer, "ping", {"echo": "x"})
        services.enqueue(peer, "ping", {"echo": "y"})
    Peer.objects.filter(pk=peer.pk).update(
        failures=3, last_contact_at=timezone.now(), witnessed_tree_size=41, witnessed_at=timezone.now()
    )
    quiet = new_remote("https://quiet.node.example", ("QN",))
    services.pin_peer(quiet.card)

    response = iom_admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nodos pares" in html and "https://iom.node.example" in html  # Spanish first; this node named
    row = html.split('data-peer="https://dp.node.example"')[1].split("</tr>")[0]
    assert peer.fingerprint in row and "<code>DP</code> — DP" in row and "<code>DPX</code> — DPX" in row
    assert "3 envíos fallidos seguidos" in row and "tamaño 41, cofirmado" in row
    assert row.count("<td") == 7 and ">2 <span" in row  # two messages waiting
    other = html.split('data-peer="https://quiet.node.example"')[1].split("</tr>")[0]
    assert "nunca" in other and "ninguno todavía" in other and ">0</td>" in other
    # The menu links to it while this is a federated node.
    assert f'href="{URL}"' in html

    Peer.objects.filter(pk=peer.pk).update(checkpoint_conflict_at=timezone.now())
    row = iom_admin_client.get(URL).content.decode().split('data-peer="https://dp.node.example"')[1]
    assert "Punto de control inconsistente rechazado" in row.split("</tr>")[0]


def test_only_admins_and_only_on_a_federated_node(
    settings, federated, iom_caseworker_client, iom_supervisor_client, iom_admin_client
):
    assert iom_caseworker_client.get(URL).status_code == 403
    assert iom_supervisor_client.get(URL).status_code == 403
    assert iom_admin_client.post(URL).status_code == 405
    settings.NODE_URL = ""
    assert iom_admin_client.get(URL).status_code == 404
    assert f'href="{URL}"' not in iom_admin_client.get("/manage/users/").content.decode()
