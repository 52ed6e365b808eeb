"""Read receipts and consent withdrawal across two real nodes (contract §7.4): IOM's node (A) refers a
person to the Defensoría, hosted by node B. The Defensoría's system reads the referral on B, and IOM's
auditors see that read in A's audit log (``GET /api/v1/audit/events/``) within 60 s, with B's reader as
actor. IOM then withdraws consent on A: B crypto-shreds its copy and destroys its evidence bodies, and A
records ``consent.withdrawal_confirmed`` with B's ``shredded_at``; each node's evidence still verifies with
the other's card alone.

Both servers relay (the embedded relay, no Redis). Databases as in ``test_two_nodes``.
"""

from __future__ import annotations

import json

import pytest

from federation import evidence

from .test_two_nodes import _serving
from .test_two_nodes_referrals import OUTBOX, SUBJECT, _api, _wait_for, paired_nodes

pytestmark = [pytest.mark.timeout(600)]

COPY_AT_B = """
import json
from referrals.models import Case, Referral, Subject
r = Referral.objects.get(pk="{id}")
case = Case.objects.get(pk=r.case_id)
print(json.dumps({{"erased": case.erased_at is not None, "key": case.wrapped_data_key is not None,
                  "given_name": Subject.objects.get(case=case).given_name, "reason": r.reason}}))
"""


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return paired_nodes(tmp_path_factory.mktemp("receipts-nodes"))


def _evidence(node, rid) -> list[dict]:
    return [json.loads(x) for x in node.manage("federation_evidence", rid).stdout.strip().splitlines()]


def _events(node, token, **params) -> list[dict]:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    status, _, body = _api(node, token, "GET", f"/api/v1/audit/events/?{query}")
    assert status == 200, body
    return body["results"] if isinstance(body, dict) else body


def test_reads_on_the_receivers_node_reach_the_senders_log_and_a_withdrawal_shreds_the_copy(paired):
    a, b, tokens = paired
    with _serving(a), _serving(b):
        status, _, case = _api(a, tokens["IOM"], "POST", "/api/v1/cases/", {"subject": SUBJECT})
        assert status == 201, case
        consent = {
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": "2026-12-01T10:00:00Z",
            "data_categories": ["identity"],
        }
        body = {
            "case": case["id"],
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "urgent",
            "reason": "Necesita orientación legal",
            "consent": consent,
        }
        status, _, referral = _api(a, tokens["IOM"], "POST", "/api/v1/referrals/", body)
        assert status == 201, referral
        rid = referral["id"]
        assert _api(a, tokens["IOM"], "POST", f"/api/v1/referrals/{rid}/send/", {})[0] == 200
        _wait_for(
            lambda: _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")[0] == 200,
            60,
            "no copy at B",
            lambda: a.shell(OUTBOX),
        )

        # The Defensoría's system reads the person on B: A's auditors see it, with B's reader as actor.
        status, _, seen = _api(
            b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/", headers={"X-Request-ID": "dp-read-1"}
        )
        assert status == 200 and seen["subject"]["given_name"] == "Marta"
        reads = _wait_for(
            lambda: [
                e
                for e in _events(a, tokens["IOM"], object_id=rid, action="referral.viewed")
                if e["actor"]["institution"] == "DP"
            ],
            60,
            "the read never reached A's audit log",
            lambda: b.shell(OUTBOX),
        )
        (read,) = [e for e in reads if e["request_id"] == "dp-read-1"]
        assert read["actor"]["type"] == "api_client" and read["actor"]["id"]
        assert read["detail"]["node"] == b.url and read["object_type"] == "referral"

        # IOM withdraws consent on A: B shreds its copy, A records B's signed receipt.
        status, _, withdrawn = _api(
            a, tokens["IOM"], "POST", f"/api/v1/referrals/{rid}/consent/withdraw/", {"reason": "Ya no desea"}
        )
        assert status == 200, withdrawn
        (confirmed,) = _wait_for(
            lambda: _events(a, tokens["IOM"], object_id=rid, action="consent.withdrawal_confirmed"),
            60,
            "the withdrawal was never confirmed",
            lambda: a.shell(OUTBOX),
        )
        assert confirmed["detail"]["node"] == b.url and confirmed["detail"]["shredded_at"]
        copy = b.shell(COPY_AT_B.format(id=rid))
        assert copy == {"erased": True, "key": False, "given_name": None, "reason": None}
        status, _, after = _api(b, tokens["DP"], "GET", f"/api/v1/referrals/{rid}/")
        assert status == 200 and not after.get("subject")

        # Both nodes keep the messages as signed headers; the bodies are gone but for the withdrawal's.
        for node, other in ((a, b), (b, a)):
            lines = _evidence(node, rid)
            assert {line["type"] for line in lines} >= {"referral.deliver", "referral.withdraw"}
            for line in lines:
                kept = line["type"] == "referral.withdraw"
                assert (line["request"]["body"] is not None) is kept, line["type"]
                assert evidence.verify_line(line, other.card)
                assert evidence.verify_line(line, node.card)
