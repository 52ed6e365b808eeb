"""The shapes of the contract's representations (§4): field names are fixed; additions are allowed."""

from __future__ import annotations

import re

from .helpers import API, NOTE, SECRET_SUBJECT, case_body, referral_body

REFERRAL_FIELDS = {
    "id",
    "reference",
    "case",
    "from_institution",
    "to_institution",
    "services",
    "urgency",
    "reason",
    "status",
    "status_reason",
    "outcome",
    "consent",
    "subject",
    "assignee",
    "sent_at",
    "response_due_at",
    "created_at",
    "updated_at",
}


def test_institution_directory(iom, dp, third, sender_api):
    body = sender_api.get(f"{API}/institutions/").json()
    assert set(body) >= {"results", "next", "previous"}
    assert {(i["code"], i["name"]) for i in body["results"]} == {
        ("IOM", "IOM"),
        ("DP", "Defensoría del Pueblo"),
        ("UNHCR", "UNHCR"),
    }
    assert all(set(i) >= {"code", "name"} for i in body["results"])


def test_case_create_and_read(sender_api, iom):
    created = sender_api.post(f"{API}/cases/", case_body(), format="json")
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= {"id", "reference", "institution", "subject", "summary", "created_at", "updated_at"}
    assert body["institution"] == "IOM"
    assert re.fullmatch(r"IOM-\d{4}-\d{6}", body["reference"]), body["reference"]
    assert body["subject"]["given_name"] == SECRET_SUBJECT["given_name"]
    assert body["subject"]["document_number"] == "XK4471882Q"
    read = sender_api.get(f"{API}/cases/{body['id']}/").json()
    assert read["subject"] == body["subject"] and read["reference"] == body["reference"]
    listed = sender_api.get(f"{API}/cases/").json()["results"]
    assert [c["id"] for c in listed] == [body["id"]]


def test_document_number_search_is_normalized(sender_api, iom):
    created = sender_api.post(f"{API}/cases/", case_body(), format="json").json()
    for query in ("XK4471882Q", "xk-447 1882q", "XK 4471-882-Q"):
        found = sender_api.get(f"{API}/cases/", {"document_number": query}).json()["results"]
        assert [c["id"] for c in found] == [created["id"]], query
    assert sender_api.get(f"{API}/cases/", {"document_number": "XK4471883Q"}).json()["results"] == []


def test_referral_create_read_and_timeline(sender_api, receiver_api, iom, dp):
    case = sender_api.post(f"{API}/cases/", case_body(), format="json").json()
    created = sender_api.post(f"{API}/referrals/", referral_body(case["id"]), format="json")
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= REFERRAL_FIELDS
    assert body["status"] == "draft" and body["case"] == case["id"]
    assert (body["from_institution"], body["to_institution"]) == ("IOM", "DP")
    assert re.fullmatch(r"IOM-[A-Z0-9-]*\d{6}", body["reference"]), body["reference"]
    assert body["reference"] != case["reference"]
    assert created["ETag"] == '"1"'
    assert set(body["consent"]) >= {"given", "given_by", "method", "obtained_at", "data_categories"}
    rid = body["id"]
    sender_api.post(f"{API}/referrals/{rid}/send/", {}, format="json")
    receiver_api.post(f"{API}/referrals/{rid}/receive/", {}, format="json")
    note = receiver_api.post(f"{API}/referrals/{rid}/notes/", {"body": NOTE}, format="json")
    assert note.status_code == 201
    assert set(note.json()) >= {"id", "at", "author_institution", "body"}
    assert note.json()["author_institution"] == "DP"
    events = sender_api.get(f"{API}/referrals/{rid}/events/").json()["results"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in events] == [
        ("create", "", "draft"),
        ("send", "draft", "requested"),
        ("receive", "requested", "received"),
    ]
    assert all(
        set(e) >= {"id", "at", "actor_institution", "action", "from_status", "to_status"} for e in events
    )
    assert [e["actor_institution"] for e in events] == ["IOM", "IOM", "DP"]
    assert [e["action"] for e in receiver_api.get(f"{API}/referrals/{rid}/events/").json()["results"]] == [
        "send",
        "receive",
    ]
    listed = receiver_api.get(f"{API}/referrals/").json()["results"]
    assert [item["id"] for item in listed] == [rid]
    assert set(listed[0]) >= REFERRAL_FIELDS - {"subject", "reason", "status_reason", "outcome", "consent"}
