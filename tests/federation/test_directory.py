"""Peers serve their own offices to each other (contract §7.2/§7.4, ``federation.directory``): the
``directory.offices`` message through the door, ``refresh_offices`` storing a peer's offices as offices of
its remote institutions, at pinning (``federation_peer_add``) and in the witnessing pass."""

from __future__ import annotations

import datetime
import io
import json
import time

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from accounts.actor import system_actor
from accounts.models import Institution, Office
from accounts.services import office_pause, office_save, remote_offices_save
from audit.models import AuditEvent
from federation import directory, protocol, services, transport, witnessing
from federation.cards import raw_public
from federation.keys import signing_key
from federation.models import Peer

from .conftest import HERE, PATH, signed_answer

OFFICE_KEYS = {
    "institution",
    "code",
    "name",
    "province",
    "services",
    "languages",
    "accepting_referrals",
    "paused_until",
}


@pytest.fixture
def pinned(node, remote):
    services.pin_peer(remote.card)
    return Peer.objects.get()


def _office(institution, code, province="PA-5", services_=("legal_assistance",), languages=("es",)):
    office, _created = office_save(
        institution=institution,
        code=code,
        name=f"{institution.code} {code.title()}",
        province=province,
        services=list(services_),
        languages=list(languages),
        actor=system_actor(institution, "test"),
    )
    return office


def _served(code, *, institution="DP", accepting=True, paused_until=None, **extra) -> dict:
    return {
        "institution": institution,
        "code": code,
        "name": f"Defensoría — {code.title()}",
        "province": "PA-5",
        "services": ["legal_assistance", "protection"],
        "languages": ["es"],
        "accepting_referrals": accepting,
        "paused_until": paused_until,
        **extra,
    }


def _peer_serving(remote, answers, seen=None):
    """A transport delivering to ``remote``, which verifies each request as a node would and answers
    ``answers[type]`` (``(status, payload)``), signed with its key."""

    def post(url, *, data, headers):
        assert url == remote.url + PATH
        protocol.verify_request(
            method="POST",
            path=PATH,
            headers=headers,
            body=data,
            key_for={HERE: raw_public(signing_key())}.get,
            recipient=remote.url,
            now=int(time.time()),
        )
        envelope = json.loads(data)
        if seen is not None:
            seen.append(envelope["type"])
        status, payload = answers[envelope["type"]]
        body = json.dumps({"payload": payload} if status < 400 else payload).encode()
        return signed_answer(remote, headers, status, body)

    return post


def _down(url, *, data, headers):
    raise requests.ConnectionError("connection refused")


# --- the handler: this node's own offices, through the door ------------------------------------------------


def test_a_peer_gets_this_nodes_own_offices_and_nothing_else(pinned, remote, client):
    iom = Institution.objects.get(code="IOM")
    _office(iom, "DARIEN", languages=("es", "en"))
    paused = _office(iom, "METETI", province="PA-5")
    until = timezone.localdate() + datetime.timedelta(days=3)
    office_pause(office=paused, until=until, reason="Sin personal: María de vacaciones")
    # An office of the peer's own institution stored here is the peer's: never served back.
    remote_offices_save(node=remote.url, offices=[_served("DARIEN")])

    body, headers = remote.request({"type": "directory.offices", "referral": None, "payload": {}})
    response = client.post(PATH, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    offices = response.json()["payload"]["offices"]
    assert [(o["institution"], o["code"]) for o in offices] == [("IOM", "DARIEN"), ("IOM", "METETI")]
    assert all(set(o) == OFFICE_KEYS for o in offices)
    assert offices[0] == {
        "institution": "IOM",
        "code": "DARIEN",
        "name": "IOM Darien",
        "province": "PA-5",
        "services": ["legal_assistance"],
        "languages": ["es", "en"],
        "accepting_referrals": True,
        "paused_until": None,
    }
    assert offices[1]["accepting_referrals"] is False and offices[1]["paused_until"] == until.isoformat()
    assert "María" not in response.content.decode()  # the pause's reason stays here

    body, headers = remote.request({"type": "directory.offices", "referral": None, "payload": {"all": 1}})
    refused = client.post(PATH, data=body, content_type="application/json", headers=headers)
    assert refused.status_code == 400 and refused.json()["errors"] == {"all": ["Unknown field."]}


# --- refresh_offices: the peer's offices stored as its remote institutions' --------------------------------


def test_refresh_stores_the_peers_offices_updates_them_and_withdraws_the_ones_no_longer_served(
    pinned, remote, monkeypatch
):
    until = timezone.localdate() + datetime.timedelta(days=9)
    answers = {
        "directory.offices": (
            200,
            {
                "offices": [
                    _served("DARIEN"),
                    _served("CHIRIQUI", accepting=False, paused_until=until.isoformat()),
                    _served("SNEAKY", institution="IOM"),  # an institution this node hosts
                    _served("ELSEWHERE", institution="UNHCR"),  # not the peer's
                    _served("BAD", province="PA-99"),  # breaks an office rule
                    _served("EXTRA", pause_reason="x"),  # a field outside the message
                    "not an office",
                ]
            },
        )
    }
    monkeypatch.setattr(transport, "post", _peer_serving(remote, answers))
    outcome = directory.refresh_offices(pinned)
    assert outcome == {"created": ["DP/CHIRIQUI", "DP/DARIEN"], "changed": [], "withdrawn": [], "refused": 5}
    stored = {o.code: o for o in Office.objects.filter(institution__code="DP")}
    assert set(stored) == {"DARIEN", "CHIRIQUI"}
    assert stored["DARIEN"].services == ["legal_assistance", "protection"] and stored["DARIEN"].is_accepting()
    assert stored["CHIRIQUI"].paused_until == until and not stored["CHIRIQUI"].is_accepting()
    assert not Office.objects.filter(institution__code="IOM").exists()
    [event] = AuditEvent.objects.filter(action="office.synced_from_peer")
    assert event.detail["node"] == remote.url and event.detail["created"] == ["DP/CHIRIQUI", "DP/DARIEN"]
    assert event.institutions == ",IOM," and event.actor_type == "system"

    # The same answer again changes nothing and records nothing.
    assert directory.refresh_offices(pinned)["created"] == []
    assert AuditEvent.objects.filter(action="office.synced_from_peer").count() == 1

    # Darién renamed, Chiriquí no longer served: updated, and kept but not accepting.
    answers["directory.offices"] = (
        200,
        {"offices": [_served("DARIEN", name="Defensoría — Darién (Metetí)")]},
    )
    outcome = directory.refresh_offices(pinned)
    assert outcome == {"created": [], "changed": ["DP/DARIEN"], "withdrawn": ["DP/CHIRIQUI"], "refused": 0}
    chiriqui = Office.objects.get(institution__code="DP", code="CHIRIQUI")
    assert chiriqui.accepting_referrals is False and chiriqui.paused_until is None
    assert Office.objects.get(institution__code="DP", code="DARIEN").name == "Defensoría — Darién (Metetí)"


@pytest.mark.parametrize(
    "answer",
    [(200, {"offices": "all of them"}), (200, {}), (404, {"type": "/problems/not-found", "status": 404})],
)
def test_an_answer_that_is_not_a_list_of_offices_changes_nothing(pinned, remote, monkeypatch, answer):
    remote_offices_save(node=remote.url, offices=[_served("DARIEN")])
    monkeypatch.setattr(transport, "post", _peer_serving(remote, {"directory.offices": answer}))
    with pytest.raises(directory.OfficesNotRefreshed):
        directory.refresh_offices(pinned)
    assert Office.objects.get(institution__code="DP", code="DARIEN").accepting_referrals is True


def test_pinning_a_peer_fetches_its_offices_and_a_peer_not_serving_yet_is_no_failure(
    node, remote, monkeypatch
):
    monkeypatch.setattr(transport, "post", _down)
    err = io.StringIO()
    out = io.StringIO()
    call_command("federation_peer_add", remote.card, stdout=out, stderr=err)  # exit 0
    assert out.getvalue().startswith("added: https://dp.node.example")
    assert "offices: not fetched now (ConnectionError)" in err.getvalue()
    assert not Office.objects.filter(institution__code="DP").exists()

    monkeypatch.setattr(
        transport,
        "post",
        _peer_serving(
            remote, {"directory.offices": (200, {"offices": [_served("DARIEN"), _served("COLON")]})}
        ),
    )
    out = io.StringIO()
    call_command("federation_peer_add", remote.card, stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines() == [
        out.getvalue().splitlines()[0],
        "offices: 2 new, 0 changed, 0 no longer served, 0 refused",
    ]
    assert out.getvalue().startswith("unchanged:")
    assert sorted(Office.objects.filter(institution__code="DP").values_list("code", flat=True)) == [
        "COLON",
        "DARIEN",
    ]


def test_the_witnessing_pass_refreshes_the_offices_even_when_witnessing_fails(pinned, remote, monkeypatch):
    seen: list[str] = []
    answers = {
        "checkpoint.latest": (
            404,
            {"type": "/problems/not-found", "title": "x", "status": 404, "detail": "x"},
        ),
        "directory.offices": (200, {"offices": [_served("DARIEN")]}),
    }
    monkeypatch.setattr(transport, "post", _peer_serving(remote, answers, seen))
    [outcome] = witnessing.witness_peers()
    assert outcome["result"] == "failed"
    assert seen == ["checkpoint.latest", "directory.offices"]
    assert Office.objects.filter(institution__code="DP", code="DARIEN").exists()

    monkeypatch.setattr(transport, "post", _down)  # a peer that is down: the pass still answers
    assert [o["result"] for o in witnessing.witness_peers()] == ["failed"]


def test_pinning_while_federation_is_off_fetches_nothing_and_says_so(node, remote, settings):
    settings.NODE_URL = ""
    out, err = io.StringIO(), io.StringIO()
    call_command("federation_peer_add", remote.card, stdout=out, stderr=err)  # exit 0
    assert out.getvalue().startswith("added: https://dp.node.example")
    assert "offices: not fetched now (federation-off)" in err.getvalue()


def test_the_peers_institution_names_replace_their_codes_but_not_a_name_given_here(
    pinned, remote, monkeypatch, client
):
    # This node serves its own institutions' names with its offices.
    body, headers = remote.request({"type": "directory.offices", "referral": None, "payload": {}})
    served = client.post(PATH, data=body, content_type="application/json", headers=headers).json()["payload"]
    assert served["institutions"] == [{"code": "IOM", "name": Institution.objects.get(code="IOM").name}]

    names = [{"code": "DP", "name": "Defensoría del Pueblo"}, {"code": "IOM", "name": "Not theirs"}]
    monkeypatch.setattr(
        transport,
        "post",
        _peer_serving(remote, {"directory.offices": (200, {"offices": [], "institutions": names})}),
    )
    directory.refresh_offices(pinned)
    assert Institution.objects.get(code="DP").name == "Defensoría del Pueblo"
    assert Institution.objects.get(code="IOM").name != "Not theirs"  # a peer names only its own
    [event] = AuditEvent.objects.filter(action="institution.named_from_peer")
    assert event.detail == {"node": remote.url, "codes": ["DP"]}
    # An operator's name here is kept at the next refresh.
    Institution.objects.filter(code="DP").update(name="DPP (Panamá)")
    directory.refresh_offices(pinned)
    assert Institution.objects.get(code="DP").name == "DPP (Panamá)"
