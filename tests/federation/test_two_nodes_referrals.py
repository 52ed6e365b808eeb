"""A referral across two real nodes (contract §7.4): IOM's node (A) refers a person to the Defensoría, hosted
by node B. At ``send`` only the consented projection reaches B (the fields of other categories are not in
B's database, not even encrypted); B serves the copy to the Defensoría through its own API; the Defensoría's
``accept`` on B is decided by A (the authority) and both nodes show the same status, version and events;
notes travel both ways; with A down an action on B answers 503 ``peer-unavailable`` and changes nothing.

Both servers relay (the embedded relay, no Redis). Databases as in ``test_two_nodes``.
"""

from __future__ import annotations

import json
import os
import secrets
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


def paired_nodes(tmp, *, databases_suffix: str = ""):
    """IOM's node A and the Defensoría's node B, migrated, each with its institution and an API client
    (``tokens[code]``), both relaying, paired with each other's card. ``databases_suffix``: on PostgreSQL,
    databases of their own (``FEDERATION_TEST_DATABASES`` names + suffix)."""
    names = os.environ.get("FEDERATION_TEST_DATABASES", "wt_fed_a,wt_fed_b").split(",")
    os.environ["FEDERATION_TEST_DATABASES"] = ",".join(f"{name}{databases_suffix}" for name in names)
    try:
        db_a, db_b = _databases(tmp)
    finally:
        os.environ["FEDERATION_TEST_DATABASES"] = ",".join(names)
    a, b = Node("iom", "IOM", db_a, tmp, extra=dict(RELAY)), Node("dp", "DP", db_b, tmp, extra=dict(RELAY))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.manage("migrate", "--noinput", "-v0"), (a, b)))
    tokens = {}
    for node in (a, b):
        node.manage("create_institution", node.code, node.code)
        scopes = "referrals:read,referrals:write,audit:read"
        client = node.manage(
            "create_api_client", node.code, f"{node.code.lower()}-system", "--scopes", scopes
        )
        tokens[node.code] = client.stdout.strip().splitlines()[-1]
        node.card = node.manage("federation_card").stdout.strip().splitlines()[-1]
    a.manage("federation_peer_add", b.card)
    b.manage("federation_peer_add", a.card)
    return a, b, tokens


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return paired_nodes(tmp_path_factory.mktemp("referral-nodes"))


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


def _create_and_send(node: Node, token: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        status, _, case = _api(
            node, token, "POST", "/api/v1/cases/", {"subject": dict(SUBJECT, given_name=f"P{i}")}
        )
        assert status == 201, case
        body = {
            "case": case["id"],
            "to_institution": "DP",
            "services": ["protection"],
            "urgency": "normal",
            "reason": "Protección",
            "consent": {
                "given": True,
                "given_by": "self",
                "method": "written",
                "obtained_at": "2026-12-01T10:00:00Z",
                "data_categories": ["identity"],
            },
        }
        status, _, referral = _api(node, token, "POST", "/api/v1/referrals/", body)
        assert status == 201, referral
        status, _, sent = _api(node, token, "POST", f"/api/v1/referrals/{referral['id']}/send/", {})
        assert status == 200, sent
        ids.append(referral["id"])
    return ids


DELIVERIES_AT_B = """
import json
from federation.models import Message
from referrals.models import Referral
ids = {ids!r}
print(json.dumps({{"copies": Referral.objects.filter(pk__in=ids).count(),
                  "received": sorted(str(m.referral_id) for m in Message.objects.filter(
                      direction="received", type="referral.deliver", referral_id__in=ids))}}))
"""

WAITING_AT_A = """
import json
from federation.models import Outgoing
rows = Outgoing.objects.filter(type="referral.deliver", referral_id__in={ids!r})
print(json.dumps([[r.state, r.attempts] for r in rows.order_by("id")]))
"""


def test_referrals_sent_while_the_receivers_node_is_down_arrive_once_when_it_is_back(paired):
    a, b, tokens = paired
    with _serving(a):
        ids = _create_and_send(a, tokens["IOM"], 3)  # the sends answer 200: delivery is the outbox's
        # IOM cancels the second while B is down: its state waits behind its delivery, and must not pass it
        # (B's outbox delivers different referrals side by side, one referral's messages in order).
        status, _, cancelled = _api(
            a, tokens["IOM"], "POST", f"/api/v1/referrals/{ids[1]}/cancel/", {"reason": "Ya no lo necesita"}
        )
        assert status == 200 and cancelled["status"] == "cancelled", cancelled
        _wait_for(
            lambda: any(attempts >= 1 for _, attempts in a.shell(WAITING_AT_A.format(ids=ids))),
            60,
            "A never tried B",
        )
        assert {state for state, _ in a.shell(WAITING_AT_A.format(ids=ids))} == {"waiting"}
        with _serving(b):
            _wait_for(lambda: b.shell(DELIVERIES_AT_B.format(ids=ids))["copies"] == 3, 60, "not all arrived")
            _wait_for(
                lambda: {s for s, _ in a.shell(WAITING_AT_A.format(ids=ids))} == {"delivered"},
                30,
                "not delivered",
            )
            status_at_b = (
                "import json; from referrals.models import Referral; "
                f"print(json.dumps(Referral.objects.get(pk='{ids[1]}').status))"
            )
            _wait_for(
                lambda: b.shell(status_at_b) == "cancelled", 30, "not cancelled at B", lambda: a.shell(OUTBOX)
            )
    at_b = b.shell(DELIVERIES_AT_B.format(ids=ids))
    assert at_b["received"] == sorted(ids)  # each delivered once: one message per referral


@pytest.fixture
def fresh_pair(tmp_path_factory):
    return paired_nodes(tmp_path_factory.mktemp("rotation-nodes"), databases_suffix="_r")


def test_after_the_receivers_node_rotates_its_keys_referrals_flow_once_the_new_card_is_pinned(fresh_pair):
    a, b, tokens = fresh_pair
    with _serving(a), _serving(b):
        [before] = _create_and_send(a, tokens["IOM"], 1)
        _wait_for(
            lambda: b.shell(DELIVERIES_AT_B.format(ids=[before]))["copies"] == 1, 60, "first not delivered"
        )
    # B's operator rotates both node keys; its new card is refused by A until pinned with --replace.
    b.signing, b.encryption = secrets.token_bytes(32), secrets.token_bytes(32)
    b.card = b.manage("federation_card").stdout.strip().splitlines()[-1]
    refused = a.manage("federation_peer_add", b.card, check=False)
    assert refused.returncode == 1
    with _serving(a), _serving(b):
        # Until A pins the new card, B's messages are refused (B still trusts A, A no longer trusts B).
        status, _, problem = _api(b, tokens["DP"], "POST", f"/api/v1/referrals/{before}/accept/", {})
        assert status == 503 and problem["type"].endswith("peer-unavailable")
        a.manage("federation_peer_add", b.card, "--replace")
        status, _, accepted = _api(b, tokens["DP"], "POST", f"/api/v1/referrals/{before}/accept/", {})
        assert status == 200 and accepted["status"] == "accepted", accepted
        # New referrals are sealed to B's new key and arrive.
        [after] = _create_and_send(a, tokens["IOM"], 1)
        _wait_for(
            lambda: b.shell(DELIVERIES_AT_B.format(ids=[after]))["copies"] == 1, 60, "not delivered after"
        )
