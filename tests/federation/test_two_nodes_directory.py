"""Two real nodes (contract §7.2/§7.4): the Defensoría's node serves its offices to IOM's node, whose partner
API then lists the Defensoría as a remote institution (``node``) with those offices — fetched at pinning when
the peer is up, otherwise by the witnessing pass; changes at the Defensoría's node follow at the next fetch.

Servers, databases and process groups as in ``test_two_nodes`` (its ``Node`` helper)."""

from __future__ import annotations

import datetime
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .test_two_nodes import Node, _databases, _serving

pytestmark = [pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-nodes-directory")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.manage("migrate", "--noinput", "-v0"), (a, b)))
    for node in (a, b):
        node.manage("create_institution", node.code, node.code)
        node.card = node.manage("federation_card").stdout.strip().splitlines()[-1]
    b.manage("create_office", "DP", "DARIEN", "Defensoría — Darién", "--province", "PA-5",
             "--services", "legal_assistance,protection", "--languages", "es,en")  # fmt: skip
    b.manage("create_office", "DP", "CHIRIQUI", "Defensoría — Chiriquí", "--province", "PA-4",
             "--services", "legal_assistance")  # fmt: skip
    # Pinned before the peer serves (as ./scripts/run --federation does): no offices yet, and no failure.
    pinned = a.manage("federation_peer_add", b.card)
    assert "offices: not fetched now (ConnectionError)" in pinned.stderr
    b.manage("federation_peer_add", a.card)
    with _serving(a), _serving(b):
        yield a, b


def _remote_offices(node: Node) -> list:
    return node.shell(
        "import json; from accounts.directory import offices; "
        "print(json.dumps([[o.code, o.name, o.province, o.services, o.languages, o.accepting_referrals, "
        "o.paused_until and o.paused_until.isoformat(), o.institution.node] "
        "for o in offices(institution='DP').order_by('code')]))"
    )


def _get(node: Node, path: str, token: str) -> dict:
    request = urllib.request.Request(node.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_peers_offices_reach_this_node_and_its_api_lists_them_as_remote(nodes):
    a, b = nodes
    assert _remote_offices(a) == []
    # The witnessing pass (hourly; here on demand) fetches them with the peer up.
    a.manage("federation_witness", b.url, check=False)
    both = ["legal_assistance", "protection"]
    assert _remote_offices(a) == [
        ["CHIRIQUI", "Defensoría — Chiriquí", "PA-4", ["legal_assistance"], [], True, None, b.url],
        ["DARIEN", "Defensoría — Darién", "PA-5", both, ["es", "en"], True, None, b.url],
    ]

    # At the Defensoría's node: Chiriquí paused, a new office in Colón. Pinning again fetches the changes.
    until = (datetime.date.today() + datetime.timedelta(days=20)).isoformat()
    b.manage(
        "shell",
        "-c",
        "import datetime; from accounts.models import Office; from accounts.services import office_pause; "
        "office_pause(office=Office.objects.get(code='CHIRIQUI'), "
        f"until=datetime.date.fromisoformat('{until}'), reason='Sin abogado')",
    )
    b.manage("create_office", "DP", "COLON", "Defensoría — Colón", "--province", "PA-3",
             "--services", "protection")  # fmt: skip
    out = a.manage("federation_peer_add", b.card).stdout
    assert "offices: 1 new, 1 changed, 0 no longer served, 0 refused" in out
    chiriqui = next(o for o in _remote_offices(a) if o[0] == "CHIRIQUI")
    assert chiriqui[5:7] == [False, until]

    # IOM's partner API: the Defensoría is a remote institution of that node, with its offices.
    token = a.manage("create_api_client", "IOM", "Sistema", "--scopes", "referrals:read").stdout.strip()
    institutions = _get(a, "/api/v1/institutions/", token)["results"]
    assert institutions == [
        {"code": "DP", "name": "DP", "node": b.url},
        {"code": "IOM", "name": "IOM", "node": None},
    ]
    offices = _get(a, "/api/v1/offices/?institution=DP&accepting=true", token)["results"]
    assert sorted((o["code"], o["node"]) for o in offices) == [("COLON", b.url), ("DARIEN", b.url)]
    # Nothing of the Defensoría's is created at IOM's node.
    refused = a.manage("create_staff_user", "DP", "dp.someone", "--role", "caseworker", check=False)
    assert refused.returncode == 1 and f"nodo {b.url}" in refused.stderr
