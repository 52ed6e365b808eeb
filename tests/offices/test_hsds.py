"""``GET /api/v1/directory/hsds/`` (issue 20, contract §7.2): the directory in Open Referral HSDS 3.0 JSON,
checked by the project's own HSDS 3.0 conformance check (``hsds30.py``: a JSON Schema per object written
from the HSDS 3.0 documentation, and the links between objects; its docstring says which documentation
page each rule comes from and why the official schema files are not vendored)."""

from __future__ import annotations

import copy
import datetime
import json
import uuid

import jsonschema
import pytest
from django.utils import timezone

from accounts.actor import system_actor
from accounts.hsds import hsds_id
from accounts.services import office_pause, office_resume
from tests.api.helpers import assert_problem

from . import hsds30
from .conftest import make_office

URL = "/api/v1/directory/hsds/"
#: The export's lists (organization, service, location, service_at_location objects).
LISTS = set(hsds30.SCHEMAS)


def assert_hsds(body: dict) -> None:
    """Each object valid against its HSDS 3.0 schema (nested languages, areas, attributes included), and
    every reference naming an object of the export."""
    problems = hsds30.problems(body)
    assert not problems, problems


def all_ids(value) -> list[str]:
    """Every ``id`` of the document, at any depth (taxonomy terms, shared by services, counted once each)."""
    found = []
    if isinstance(value, dict):
        if "id" in value and "code" in value and "taxonomy" in value:
            return []
        found += [value["id"]] if "id" in value else []
        for child in value.values():
            found += all_ids(child)
    elif isinstance(value, list):
        for child in value:
            found += all_ids(child)
    return found


@pytest.fixture
def network(iom, dp, third):
    """DP: Darién (accepting; es), Chiriquí (paused until a date, with a reason; es, en). IOM: Panamá (es,
    en, ht). UNHCR: no office."""
    darien = make_office(dp, "DARIEN", "PA-5", services=("legal_assistance", "human_rights_complaint"))
    chiriqui = make_office(dp, "CHIRIQUI", "PA-4", services=("legal_assistance",), languages=("es", "en"))
    panama = make_office(
        iom, "PANAMA", "PA-8", services=("protection", "health"), languages=("es", "en", "ht")
    )
    until = timezone.localdate() + datetime.timedelta(days=30)
    office_pause(office=chiriqui, until=until, reason="Sin abogado este mes", actor=system_actor(dp, "test"))
    return {"darien": darien, "chiriqui": chiriqui, "panama": panama, "until": until}


def test_the_export_is_valid_hsds_3(network, api_as, iom):
    response = api_as(iom, []).get(URL)  # any valid token: no scope needed
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert_hsds(body)
    assert [o["alternate_name"] for o in body["organizations"]] == ["DP", "IOM", "UNHCR"]
    assert [loc["external_identifier"] for loc in body["locations"]] == [
        "DP/CHIRIQUI",
        "DP/DARIEN",
        "IOM/PANAMA",
    ]
    # One service per office and service offered, each at its office.
    assert len(body["services"]) == len(body["service_at_locations"]) == 5


def test_our_schemas_are_valid_draft_2020_12_schemas():
    for schema in hsds30.SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


UNKNOWN = "00000000-0000-4000-8000-000000000000"  # a well-formed uuid that names nothing of the export


@pytest.mark.parametrize(
    ("path", "value", "reported"),
    [
        (("services", 0, "status"), "paused", "services/0/status"),
        (("locations", 0, "location_type"), "building", "locations/0/location_type"),
        (("locations", 0, "id"), "DP/DARIEN", "locations/0/id"),
        (("organizations", 0, "id"), 42, "organizations/0/id"),
        (("services", 0, "languages", 0, "id"), "not-a-uuid", "services/0/languages/0/id"),
        (("services", 0, "attributes", 0, "taxonomy_term", "name"), None, "taxonomy_term/name"),
        (("services", 0, "organization_id"), UNKNOWN, "services/0/organization_id"),
        (("locations", 0, "organization_id"), UNKNOWN, "locations/0/organization_id"),
        (("service_at_locations", 0, "service_id"), UNKNOWN, "service_at_locations/0/service_id"),
        (("service_at_locations", 0, "location_id"), UNKNOWN, "service_at_locations/0/location_id"),
        (("services", 0, "languages", 0, "service_id"), UNKNOWN, "services/0/languages/0/service_id"),
    ],
)
def test_the_check_rejects_a_broken_document(network, api_as, iom, path, value, reported):
    """The check really applies: a status or location type HSDS does not know, an id that is no uuid, a
    wrong type, a reference to no object of the export are each reported, at their place."""
    body = api_as(iom, []).get(URL).json()
    assert hsds30.problems(body) == []
    broken = copy.deepcopy(body)
    target = broken
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    problems = hsds30.problems(broken)
    assert any(reported in problem for problem in problems), problems
    with pytest.raises(AssertionError):
        assert_hsds(broken)


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("organizations", "name"),
        ("organizations", "description"),
        ("services", "status"),
        ("services", "organization_id"),
        ("locations", "location_type"),
        ("service_at_locations", "location_id"),
    ],
)
def test_the_check_rejects_a_missing_required_property(network, api_as, iom, key, field):
    broken = api_as(iom, []).get(URL).json()
    del broken[key][0][field]
    assert any(f"'{field}' is a required property" in problem for problem in hsds30.problems(broken))


def test_the_check_rejects_a_document_of_other_lists(network, api_as, iom):
    body = api_as(iom, []).get(URL).json()
    assert hsds30.problems({**body, "programs": []})
    assert hsds30.problems({key: value for key, value in body.items() if key != "locations"})
    assert hsds30.problems({**body, "services": {}})


def test_links_and_unique_ids(network, api_as, iom):
    body = api_as(iom, []).get(URL).json()
    ids = all_ids(body)
    assert len(ids) == len(set(ids))
    organizations = {o["id"] for o in body["organizations"]}
    services = {s["id"] for s in body["services"]}
    locations = {loc["id"]: loc for loc in body["locations"]}
    assert {s["organization_id"] for s in body["services"]} <= organizations
    assert {loc["organization_id"] for loc in locations.values()} <= organizations
    for link in body["service_at_locations"]:
        assert link["service_id"] in services and link["location_id"] in locations
    by_key = {loc["external_identifier"]: loc for loc in locations.values()}
    darien_services = {
        s["attributes"][0]["taxonomy_term"]["code"]
        for s in body["services"]
        for link in body["service_at_locations"]
        if link["service_id"] == s["id"] and link["location_id"] == by_key["DP/DARIEN"]["id"]
    }
    assert darien_services == {"legal_assistance", "human_rights_complaint"}
    assert [lang["code"] for lang in by_key["IOM/PANAMA"]["languages"]] == ["es", "en", "ht"]


def test_ids_are_stable_uuid5_of_the_codes(network, api_as, iom, dp):
    client = api_as(iom, [])
    first = client.get(URL).json()
    make_office(dp, "COLON", "PA-3")  # a new office changes no existing id
    second = client.get(URL).json()
    assert set(all_ids(first)) <= set(all_ids(second))
    assert len(all_ids(second)) > len(all_ids(first))
    location = next(loc for loc in second["locations"] if loc["external_identifier"] == "DP/DARIEN")
    assert location["id"] == hsds_id("location", "DP", "DARIEN")
    assert uuid.UUID(location["id"]).version == 5
    assert client.get(URL).json() == second


def test_a_paused_office_s_services_are_temporarily_closed(network, api_as, iom, dp):
    client = api_as(iom, [])
    body = client.get(URL).json()
    chiriqui = hsds_id("service", "DP", "CHIRIQUI", "legal_assistance")
    services = {s["id"]: s for s in body["services"]}
    assert services[chiriqui]["status"] == "temporarily closed"
    assert network["until"].isoformat() in services[chiriqui]["alert"]
    assert "Sin abogado este mes" in services[chiriqui]["alert"]
    darien = hsds_id("service", "DP", "DARIEN", "legal_assistance")
    assert services[darien]["status"] == "active" and "alert" not in services[darien]
    office_resume(office=network["chiriqui"], actor=system_actor(dp, "test"))
    services = {s["id"]: s for s in client.get(URL).json()["services"]}
    assert services[chiriqui]["status"] == "active" and "alert" not in services[chiriqui]


def test_names_in_english_as_every_api_text(network, api_as, iom):
    body = api_as(iom, []).get(URL, HTTP_ACCEPT_LANGUAGE="es").json()
    legal = hsds_id("service", "DP", "DARIEN", "legal_assistance")
    service = {s["id"]: s for s in body["services"]}[legal]
    assert service["name"] == "Legal assistance"
    assert service["service_areas"][0]["name"] == "Darién"
    closed = {s["id"]: s for s in body["services"]}[hsds_id("service", "DP", "CHIRIQUI", "legal_assistance")]
    assert closed["alert"].startswith("Not accepting referrals until ")


def test_no_token_is_401_and_unknown_parameters_400(network, client, api_as, iom):
    assert client.get(URL).status_code == 401
    response = api_as(iom, []).get(URL, {"institution": "DP"})
    assert_problem(response, 400, "validation-error", errors={"institution"})


def test_the_schema_documents_the_endpoint(db, api_as, iom):
    response = api_as(iom, []).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    operation = json.loads(response.content)["paths"]["/api/v1/directory/hsds/"]["get"]
    assert operation["operationId"] == "directory_hsds"
    content = operation["responses"]["200"]["content"]["application/json"]
    assert set(content["schema"]["required"]) == set(LISTS)
