"""``GET /api/v1/directory/hsds/`` (issue 20, contract §7.2): the directory in Open Referral HSDS 3.0 JSON,
validated against the specification's own JSON schemas (vendored in ``hsds_schema/``, see its README)."""

from __future__ import annotations

import copy
import datetime
import json
import uuid
from pathlib import Path

import jsonschema
import pytest
from django.utils import timezone
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from accounts.actor import system_actor
from accounts.hsds import hsds_id
from accounts.services import office_pause, office_resume
from tests.api.helpers import assert_problem

from .conftest import make_office

URL = "/api/v1/directory/hsds/"
SCHEMAS = Path(__file__).parent / "hsds_schema"
#: The export's lists and the HSDS object each holds.
LISTS = {
    "organizations": "organization.json",
    "services": "service.json",
    "locations": "location.json",
    "service_at_locations": "service_at_location.json",
}


def _registry() -> Registry:
    """Every vendored schema under its file name: they refer to each other as ``"$ref": "phone.json"``."""
    resources = [
        (path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012))
        for path in sorted(SCHEMAS.glob("*.json"))
    ]
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = REGISTRY.contents(name)
    return jsonschema.Draft202012Validator(
        schema, registry=REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_hsds(body: dict) -> None:
    """Each object valid against its HSDS 3.0 schema (nested languages, areas, attributes included)."""
    assert set(body) == set(LISTS)
    for key, name in LISTS.items():
        check = validator(name)
        for item in body[key]:
            errors = sorted(check.iter_errors(item), key=lambda e: list(e.path))
            assert not errors, f"{key}: {[(list(e.path), e.message) for e in errors]}"


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


def test_the_validation_would_catch_a_wrong_document(network, api_as, iom):
    """The schemas are really applied: a status HSDS does not know, a bad uuid, a missing name fail."""
    body = api_as(iom, []).get(URL).json()
    for path, value in (
        (("services", 0, "status"), "paused"),
        (("locations", 0, "id"), "DP/DARIEN"),
        (("services", 0, "languages", 0, "id"), "not-a-uuid"),
    ):
        broken = copy.deepcopy(body)
        target = broken
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(AssertionError):
            assert_hsds(broken)
    broken = copy.deepcopy(body)
    del broken["organizations"][0]["name"]
    with pytest.raises(AssertionError):
        assert_hsds(broken)


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
