"""The auditors' API: visibility across institutions, the exact representation, filters, pages, CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from audit.models import AuditEvent
from audit.recorder import record
from tests.api.helpers import ALL_SUBJECT_STRINGS, API, FREE_TEXTS, SUMMARY, assert_problem, build_referral

EVENTS = f"{API}/audit/events/"
EXPORT = f"{API}/audit/events/export/"
REPRESENTATION = {
    "id",
    "sequence",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "ip",
    "request_id",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
}


def _all(client, params=None) -> list[dict]:
    """Every event of every page (following ``next``)."""
    response = client.get(EVENTS, params or {})
    assert response.status_code == 200, response.content[:300]
    events = list(response.json()["results"])
    while response.json()["next"]:
        response = client.get(response.json()["next"])
        assert response.status_code == 200
        events += response.json()["results"]
    return events


@pytest.fixture
def sent(iom, dp, iom_actor, dp_actor):
    """An IOM → DP referral, sent by IOM and received by DP (each side has acted on it)."""
    return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status="received")


def test_the_receivers_read_appears_in_the_senders_audit_view(iom, dp, third, sent, api_as, auditor):
    dp_client = api_as(dp, scopes=["referrals:read"])
    response = dp_client.get(f"{API}/referrals/{sent.pk}/", HTTP_X_REQUEST_ID="dp-read-0001")
    assert response.status_code == 200

    iom_view = _all(auditor(iom), {"object_id": str(sent.pk), "action": "referral.viewed"})
    assert len(iom_view) == 1
    (event,) = iom_view
    assert event["actor"]["institution"] == "DP"
    assert event["actor"]["type"] == "api_client"
    assert event["object_type"] == "referral" and event["object_id"] == str(sent.pk)
    assert event["request_id"] == "dp-read-0001"
    assert event["detail"] == {"side": "receiver"}

    # The receiver's own auditors see it too (their actor); an uninvolved institution sees nothing of it.
    assert [e["id"] for e in _all(auditor(dp), {"object_id": str(sent.pk), "action": "referral.viewed"})] == [
        event["id"]
    ]
    assert _all(auditor(third), {"object_id": str(sent.pk)}) == []
    assert not [e for e in _all(auditor(third)) if e["actor"]["institution"] in ("IOM", "DP")]


def test_an_uninvolved_institution_sees_only_its_own_actors(iom, dp, third, sent, api_as, auditor):
    api_as(dp).get(f"{API}/referrals/{sent.pk}/")
    api_as(iom).get(f"{API}/referrals/{sent.pk}/")
    api_as(third).get(f"{API}/referrals/")  # UNHCR's own activity: a listing, nothing recorded about others
    record(actor_type="system", action="test.unhcr_marker", institutions=["UNHCR"])

    seen = _all(auditor(third))
    assert [e["action"] for e in seen] == ["test.unhcr_marker"]
    assert all(str(sent.pk) not in json.dumps(e) for e in seen)

    # The sender sees every event on its referral, whoever the actor; the receiver only from `send` on.
    iom_ids = {e["id"] for e in _all(auditor(iom))}
    on_referral = AuditEvent.objects.filter(object_id=str(sent.pk))
    assert set(map(str, on_referral.values_list("id", flat=True))) <= iom_ids
    dp_actions = [e["action"] for e in _all(auditor(dp), {"object_id": str(sent.pk)})]
    assert "referral.created" not in dp_actions and "referral.transitioned" in dp_actions


def test_the_representation_is_exactly_the_contracts(iom, sent, auditor):
    events = _all(auditor(iom))
    assert events, "the fixture wrote events"
    for event in events:
        assert set(event) == REPRESENTATION
        assert set(event["actor"]) == {"type", "id", "institution"}
        assert len(event["hash"]) == 64 and len(event["prev_hash"]) == 64
        assert event["at"].endswith("Z")
    stored = AuditEvent.objects.get(id=events[-1]["id"])
    assert events[-1]["hash"] == stored.hash and events[-1]["sequence"] == stored.sequence
    assert events[-1]["actor"]["id"] == stored.actor_id


def test_events_come_oldest_first_across_pages_without_overlap(iom, sent, auditor):
    for n in range(7):
        record(actor_type="system", action="test.filler", institutions=["IOM"], detail={"n": n})
    client = auditor(iom)
    pages, response = [], client.get(EVENTS, {"page_size": 3})
    while True:
        assert response.status_code == 200
        pages.append([e["sequence"] for e in response.json()["results"]])
        if not response.json()["next"]:
            break
        response = client.get(response.json()["next"])
    flat = [s for page in pages for s in page]
    assert all(len(page) <= 3 for page in pages) and len(pages) >= 4
    assert flat == sorted(flat) and len(flat) == len(set(flat))
    expected = AuditEvent.objects.filter(institutions__contains=",IOM,").values_list("sequence", flat=True)
    assert flat == list(expected)


def test_filters(iom, dp, sent, api_as, auditor, iom_supervisor_actor):
    dp_client = api_as(dp, scopes=["referrals:read"])
    dp_client.get(f"{API}/referrals/{sent.pk}/")
    dp_actor_id = AuditEvent.objects.get(action="referral.viewed").actor_id
    client = auditor(iom)

    by_actor = _all(client, {"actor": dp_actor_id})
    assert by_actor and {e["actor"]["id"] for e in by_actor} == {dp_actor_id}

    by_institution = _all(client, {"actor_institution": "DP"})
    assert {e["actor"]["institution"] for e in by_institution} == {"DP"}
    assert {"referral.viewed", "referral.transitioned"} <= {e["action"] for e in by_institution}

    by_action = _all(client, {"action": "referral.transitioned"})
    assert by_action and {e["action"] for e in by_action} == {"referral.transitioned"}

    by_object = _all(client, {"object_id": str(sent.pk)})
    assert by_object and {e["object_id"] for e in by_object} == {str(sent.pk)}

    cut = timezone.now()
    record(actor=iom_supervisor_actor, action="test.after_cut", object_type="case", institutions=["IOM"])
    since = _all(client, {"since": cut.isoformat()})
    assert [e["action"] for e in since] == ["test.after_cut"]
    since_offset = _all(client, {"since": cut.astimezone(timezone.get_fixed_timezone(-300)).isoformat()})
    assert since_offset == since

    combined = _all(
        client, {"actor_institution": "DP", "action": "referral.viewed", "object_id": str(sent.pk)}
    )
    assert len(combined) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("object_id", ""),
        ("object_id", "x" * 65),
        ("object_id", "a b"),
        ("object_id", "id\x00"),
        ("actor", "not-a-uuid"),
        ("actor", ""),
        ("actor_institution", "iom"),
        ("actor_institution", "X"),
        ("actor_institution", "ABCDEFGHIJKLMNOPQ"),
        ("action", "viewed"),
        ("action", "Referral.Viewed"),
        ("action", "a." + "b" * 70),
        ("since", "yesterday"),
        ("since", "2026-11-28T10:00:00"),  # no time zone
        ("since", "9999-12-31T23:59:59-23:59"),
        ("since", "2026-11-28T10:00:00+99:00"),
        ("since", "1" * 100),
    ],
)
@pytest.mark.parametrize("url", [EVENTS, EXPORT])
def test_invalid_filter_values_are_400_problems(iom, auditor, url, name, value):
    before = AuditEvent.objects.count()
    response = auditor(iom).get(url, {name: value})
    assert_problem(response, 400, "validation-error", errors={name})
    assert AuditEvent.objects.count() == before  # a refused export is not an export


@pytest.mark.parametrize(
    "cursor", ["garbage", "cD0xMg==", "cD1hYmM=", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ==", "cD0tMQ=="]
)
def test_forged_cursors_are_400_problems(iom, auditor, cursor):
    # p=12 is well-formed (accepted); p=abc, p=99999999999999999999999 and p=-1 are not positions we issue.
    response = auditor(iom).get(EVENTS, {"cursor": cursor})
    if cursor == "cD0xMg==":
        assert response.status_code == 200
    else:
        assert_problem(response, 400, "validation-error", errors={"cursor"})


def test_scope_and_authentication(iom, api_as, make_user, user_api):
    assert_problem(
        api_as(iom, scopes=["referrals:read", "referrals:write"]).get(EVENTS), 403, "permission-denied"
    )
    assert_problem(api_as(iom, scopes=["referrals:read"]).get(EXPORT), 403, "permission-denied")
    assert_problem(APIClient().get(EVENTS), 401, "not-authenticated")
    assert_problem(APIClient().get(EXPORT), 401, "not-authenticated")
    caseworker = make_user(iom, Role.CASEWORKER)
    assert_problem(user_api(caseworker).get(EVENTS), 403, "permission-denied")
    supervisor = make_user(iom, Role.SUPERVISOR)
    assert user_api(supervisor).get(EVENTS).status_code == 200


def test_a_page_of_50_costs_the_same_queries_as_a_page_of_5(iom, auditor):
    for n in range(120):
        record(actor_type="system", action="test.filler", institutions=["IOM"], detail={"n": n})
    client = auditor(iom)
    client.get(EVENTS, {"page_size": 1})  # the token's first use is recorded once; not part of the page

    counts = {}
    for size in (5, 50):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(EVENTS, {"page_size": size})
        assert len(response.json()["results"]) == size
        counts[size] = len(captured)
    assert counts[5] == counts[50]


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_has_the_lists_rows_and_is_itself_audited(iom, dp, third, sent, api_as, auditor):
    api_as(dp).get(f"{API}/referrals/{sent.pk}/")
    client = auditor(iom)
    listed = _all(client)
    rows = _csv(client.get(EXPORT, HTTP_X_REQUEST_ID="export-0001"))

    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_institution == "IOM" and exported.request_id == "export-0001"
    assert exported.detail == {"format": "csv", "filters": {}}
    # The export's own event is the last row: recorded before the first row was streamed.
    assert [r["id"] for r in rows] == [e["id"] for e in listed] + [str(exported.id)]
    first = rows[0]
    assert first["hash"] == listed[0]["hash"] and first["sequence"] == str(listed[0]["sequence"])
    assert json.loads(first["detail"]) == listed[0]["detail"]

    # Same filters as the list; an uninvolved institution exports none of the referral's events.
    filtered = _csv(client.get(EXPORT, {"object_id": str(sent.pk), "actor_institution": "DP"}))
    assert filtered and {(r["object_id"], r["actor_institution"]) for r in filtered} == {(str(sent.pk), "DP")}
    assert AuditEvent.objects.filter(action="audit.exported").latest("sequence").detail == {
        "format": "csv",
        "filters": {"object_id": str(sent.pk), "actor_institution": "DP"},
    }
    assert {r["action"] for r in _csv(auditor(third).get(EXPORT))} == {"audit.exported"}


def test_audit_details_and_exports_carry_no_personal_data(iom, dp, sent, api_as, auditor):
    api_as(dp).get(f"{API}/referrals/{sent.pk}/")
    api_as(iom).get(f"{API}/referrals/{sent.pk}/notes/")
    body = b"".join(auditor(iom).get(EXPORT).streaming_content).decode()
    listed = json.dumps(_all(auditor(iom)), ensure_ascii=False)
    for secret in [*ALL_SUBJECT_STRINGS, *FREE_TEXTS, SUMMARY]:
        assert secret not in body and secret not in listed


def test_the_openapi_schema_describes_the_representation_exactly(iom, api_as):
    schema = api_as(iom).get(f"{API}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/audit/events/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"object_id", "actor", "actor_institution", "action", "since", "cursor", "page_size"} == names
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    item = schema["components"]["schemas"][page]["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][item]["properties"]
    assert set(properties) == REPRESENTATION
    actor = schema["components"]["schemas"][properties["actor"]["$ref"].rsplit("/", 1)[-1]]
    assert set(actor["properties"]) == {"type", "id", "institution"}
    export = schema["paths"]["/api/v1/audit/events/export/"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}
    assert {p["name"] for p in export["parameters"]} == {
        "object_id",
        "actor",
        "actor_institution",
        "action",
        "since",
    }
