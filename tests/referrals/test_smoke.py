"""End-to-end path over the partner API: create, refer, send, answer, complete."""

from tests.builders import referral_body
from tests.factories import subject_json


def test_referral_round_trip(iom, dp, api_as):
    iom_api, dp_api = api_as(iom), api_as(dp)
    case = iom_api.post("/api/v1/cases/", {"subject": subject_json(), "summary": "s"}, format="json")
    assert case.status_code == 201, case.json()
    body = referral_body(case.json()["id"], urgency="emergency", reason="motivo")
    created = iom_api.post("/api/v1/referrals/", body, format="json")
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    assert created.json()["status"] == "draft"
    assert dp_api.get(f"/api/v1/referrals/{rid}/").status_code == 404  # drafts are the sender's only
    sent = iom_api.post(f"/api/v1/referrals/{rid}/send/", {}, format="json")
    assert sent.status_code == 200 and sent.json()["status"] == "requested"
    seen = dp_api.get(f"/api/v1/referrals/{rid}/")
    assert seen.status_code == 200
    assert seen.json()["case"] is None
    assert set(seen.json()["subject"]) == {
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "nationality",
        "languages",
        "is_minor",
    }
    assert seen["ETag"] == '"2"'
    for action, payload in [("accept", {}), ("start", {}), ("complete", {"outcome": "hecho"})]:
        r = dp_api.post(f"/api/v1/referrals/{rid}/{action}/", payload, format="json")
        assert r.status_code == 200, (action, r.json())
    final = iom_api.get(f"/api/v1/referrals/{rid}/").json()
    assert final["status"] == "completed" and final["outcome"] == "hecho"
    events = iom_api.get(f"/api/v1/referrals/{rid}/events/").json()["results"]
    assert [e["action"] for e in events] == ["create", "send", "accept", "start", "complete"]
