"""A referral across two real nodes (contract §7.4): IOM's node (A) refers a person to the Defensoría, hosted
by node B. At ``send`` only the consented projection reaches B (the fields of other categories are not in
B's database, not even encrypted); B serves the copy to the Defensoría through its own API; the Defensoría's
``accept`` on B is decided by A (the authority) and both nodes show the same status, version and events;
notes travel both ways; with A down an action on B answers 503 ``peer-unavailable`` and changes nothing.

Both servers relay (the embedded relay, no Redis). Databases as in ``test_two_nodes``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .test_two_nodes import Node, _databases, _serving

pytestmark = [pytest.mark.timeout(600)]

RELAY = {
    "NOTIFICATIONS_RELAY_THREAD": "true",
    "NOTIFICATIONS_RELAY_INTERVAL": "0.5",
    "FEDERATION_RETRY_BASE_SECONDS": "0.5",
    "FEDERATION_RETRY_MAX_SECONDS": "2",
}


def _api(
    node: Node, token: str, method: str, path: str, body: dict | None = None, headers: dict | None = None
):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(node.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def _wait_for(check, seconds: float, what: str, explain=lambda: ""):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} {explain()}"
        time.sleep(0.5)


OUTBOX = """
import json
from federation.models import Message, Outgoing
print(json.dumps({"outbox": [[r.type, r.state, r.attempts, r.last_error, r.response_status]
                             for r in Outgoing.objects.order_by("id")],
                  "answers": [[m.type, m.response_status, bytes(m.response_body or b"")[:300].decode()]
                              for m in Message.objects.filter(direction="sent").order_by("created_at")]}))
"""


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("referral-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp, extra=dict(RELAY)), Node("dp", "DP", db_b, tmp, extra=dict(RELAY))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.manage("migrate", "--noinput", "-v0"), (a, b)))
    tokens = {}
    for node in (a, b):
        node.manage("create_institution", node.code, node.code)
        scopes = "referrals:read,referrals:write,audit:read"
        tokens[node.code] = (
            node.manage("create_api_client", node.code, f"{node.code.lower()}-system", "--scopes", scopes)
            .stdout.strip()
            .splitlines()[-1]
        )
        node.card = node.manage("federation_card").stdout.strip().splitlines()[-1]
    a.manage("federation_peer_add", b.card)
    b.manage("federation_peer_add", a.card)
    return a, b, tokens


SUBJECT = {
    "given_name": "Marta",
    "family_name": "Quispe",
    "date_of_birth": "1990-04-02",
    "nationality": "VEN",
    "phone": "+50760000001",
    "document_type": "passport",
    "document_number": "V12345678",
    "protection_needs": "Amenazas en el camino",
}

COPY_AT_B = """
import json
from referrals.models import Referral, Subject
r = Referral.objects.get(pk="{id}")
s = Subject.objects.get(case=r.case)
fields = {{name: getattr(s, name) for name in ("given_name", "family_name", "phone", "document_number",
                                          "protection_needs", "nationality")}}
print(json.dumps({{"from": r.from_institution.code, "node": r.from_institution.node, "status": r.status,
                  "version": r.version, "reference": r.reference, "subject": fields,
                  "case_institution": r.case.institution.code}}))
"""


def test_a_referral_crosses_nodes_with_consented_data_only(paired):
    a, b, tokens = paired
    with _serving(a), _serving(b):
        # The Defensoría is a remote institution at A, with its node.
        status, _, institutions = _api(a, tokens["IOM"], "GET", "/api/v1/institutions/")
        assert status == 200
        rows = institutions["results"] if isinstance(institutions, dict) else institutions
        dp = next(row for row in rows if row["code"] == "DP")
        assert dp.get("node", b.url) == b.url

        status, _, case = _api(a, tokens["IOM"], "POST", "/api/v1/cases/", {"subject": SUBJECT})
        assert status == 201, case
        consent = {
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": "2026-12-01T10:00:00Z",
            "data_categories": ["identity", "protection_needs"],
        }
        status, _, referral = _api(
            a,
            tokens["IOM"],
            "POST",
            "/api/v1/referrals/",
            {
                "case": case["id"],
                "to_institution": "DP",
                "services": ["legal_assistance"],
                "urgency": "urgent",
                "reason": "Necesita orientación legal",
                "consent": consent,
            },
        )
        assert status == 201, referral
        rid = referral["id"]
        status, _, sent = _api(a, tokens["IOM"], "POST", f"/api/v1/referrals/{rid}/send/", {})
        assert status == 200 and sent["status"] == "requested", sent

        # B gets the copy through A's outbox: same id and reference; the consented fields only.
        copy = _wait_for(
            lambda: _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")[0] == 200,
            60,
            "no copy at B",
            lambda: a.shell(OUTBOX),
        )
        status, headers, seen = _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")
        assert seen["reference"] == referral["reference"] and seen["status"] == "requested"
        stored = b.shell(COPY_AT_B.format(id=rid))
        assert stored["from"] == "IOM" and stored["node"] == a.url and stored["case_institution"] == "IOM"
        assert stored["subject"]["given_name"] == "Marta"
        assert stored["subject"]["protection_needs"] == "Amenazas en el camino"
        # contact and documents were not consented: not in B's database at all
        assert stored["subject"]["phone"] in ("", None) and stored["subject"]["document_number"] in ("", None)
        assert copy

        # The Defensoría accepts on B: A decides; both show the same status, version and events.
        etag = headers.get("ETag") or headers.get("Etag")
        status, headers, accepted = _api(
            b, tokens["DP"], "POST", f"/api/v1/referrals/{rid}/accept/", {}, {"If-Match": etag}
        )
        assert status == 200 and accepted["status"] == "accepted", accepted
        status, headers_a, at_a = _api(a, tokens["IOM"], "GET", f"/api/v1/referrals/{rid}/")
        assert at_a["status"] == "accepted"
        assert (headers_a.get("ETag") or headers_a.get("Etag")) == (
            headers.get("ETag") or headers.get("Etag")
        )
        events_a = _api(a, tokens["IOM"], "GET", f"/api/v1/referrals/{rid}/events/")[2]
        events_b = _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/events/")[2]
        ids = lambda events: [e["id"] for e in (events["results"] if isinstance(events, dict) else events)]  # noqa: E731
        # the receiver's timeline starts at send, as on one node (the draft's steps never left A)
        assert ids(events_a)[1:] == ids(events_b) and len(ids(events_b)) == 2, json.dumps(
            [events_a, events_b]
        )

        # A stale If-Match on B gets A's 412; an action of the wrong status A's 409.
        status, _, problem = _api(
            b, tokens["DP"], "POST", f"/api/v1/referrals/{rid}/reject/", {"reason": "x"}, {"If-Match": etag}
        )
        assert status in (409, 412) and problem["type"].endswith(
            ("precondition-failed", "invalid-transition")
        )

        # Notes both ways, through the outboxes.
        status, _, note_b = _api(
            b, tokens["DP"], "POST", f"/api/v1/referrals/{rid}/notes/", {"body": "Cita el lunes"}
        )
        assert status == 201, note_b
        status, _, note_a = _api(
            a, tokens["IOM"], "POST", f"/api/v1/referrals/{rid}/notes/", {"body": "Gracias"}
        )
        assert status == 201, note_a

        def notes(node, token):
            body = _api(node, token, "GET", f"/api/v1/referrals/{rid}/notes/")[2]
            rows = body["results"] if isinstance(body, dict) else body
            return sorted(n["id"] for n in rows)

        _wait_for(
            lambda: notes(a, tokens["IOM"]) == notes(b, tokens["DP"]) == sorted([note_a["id"], note_b["id"]]),
            30,
            "notes did not converge",
        )
        _wait_for(
            lambda: (
                _api(a, tokens["IOM"], "GET", f"/api/v1/referrals/{rid}/")[1].get("ETag")
                == _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")[1].get("ETag")
            ),
            30,
            "versions did not converge",
        )

    # A is down: an action on B answers 503 peer-unavailable and changes nothing.
    with _serving(b):
        status, headers, seen = _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")
        status, _, problem = _api(
            b, tokens["DP"], "POST", f"/api/v1/referrals/{rid}/start/", {}, {"If-Match": headers.get("ETag")}
        )
        assert status == 503 and problem["type"].endswith("peer-unavailable"), problem
        assert _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")[2]["status"] == seen["status"]
