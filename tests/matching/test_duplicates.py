"""Possible duplicates are one rule for every door (``referrals.reads.possible_duplicates``, contract §6.2's
keyed matching at score ≥ 0.5): the API's answer to ``POST /cases/``, the web's case form and case page
offer the same cases, only ones the caller may see, and each search is recorded without its terms."""

from __future__ import annotations

import json
import re

import pytest

from accounts.choices import Role
from audit.models import AuditEvent
from referrals import reads
from tests.api.helpers import API
from tests.factories import subject_json
from tests.web.conftest import logged_in_client

#: One person, then the same person written at another registration point (accents and case dropped,
#: second family name lost, a year of birth off by one, no document): the keyed matching's tolerances.
PERSON = {"given_name": "María José", "family_name": "Pérez Rondón", "date_of_birth": "1990-05-01"}
AGAIN = {"given_name": "MARIA jose", "family_name": "perez", "date_of_birth": "1991-05-01"}


def create(client, **subject):
    body = {"subject": subject_json(**subject, document_type="none", document_number="")}
    response = client.post(f"{API}/cases/", body, format="json")
    assert response.status_code == 201, response.content[:300]
    return response.json()


def match(client, **terms):
    response = client.post(f"{API}/cases/match/", json.dumps(terms), content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    return response.json()["results"]


@pytest.mark.django_db
def test_the_api_offers_what_the_match_endpoint_calls_probable(iom, sender_api):
    first = create(sender_api, **PERSON)
    assert first["possible_duplicates"] == []
    again = create(sender_api, **AGAIN)
    assert again["possible_duplicates"] == [first["reference"]]
    probable = [r["reference"] for r in match(sender_api, **AGAIN) if r["score"] >= 0.5]
    assert set(again["possible_duplicates"]) == set(probable) - {again["reference"]}
    # The search behind the answer is recorded: how and how many, never the terms.
    searched = AuditEvent.objects.filter(action="case.searched", detail__by="possible_duplicates").latest(
        "sequence"
    )
    assert searched.detail["matches"] == 1 and "perez" not in json.dumps(searched.detail).lower()


@pytest.mark.django_db
def test_people_the_matching_tells_apart_are_not_offered(iom, dp, sender_api, api_as):
    create(sender_api, **PERSON)
    # The same name, born fifteen years later: another person.
    assert create(sender_api, **dict(PERSON, date_of_birth="2005-05-01"))["possible_duplicates"] == []
    # A relative sharing only the family names.
    assert create(sender_api, **dict(PERSON, given_name="Pedro Luis"))["possible_duplicates"] == []
    # Another institution's cases are never offered.
    assert create(api_as(dp), **PERSON)["possible_duplicates"] == []


@pytest.mark.django_db
def test_a_write_only_client_gets_no_duplicates_and_no_search(iom, sender_api, api_as):
    create(sender_api, **PERSON)
    before = AuditEvent.objects.filter(action="case.searched").count()
    writer = api_as(iom, scopes=["referrals:write"])
    body = writer.post(
        f"{API}/cases/",
        {"subject": subject_json(**AGAIN, document_type="none", document_number="")},
        format="json",
    ).json()
    assert body["possible_duplicates"] == [] and body["subject"] is None
    assert AuditEvent.objects.filter(action="case.searched").count() == before


@pytest.mark.django_db
def test_the_web_and_the_api_offer_the_same_cases(iom, sender_api, make_user):
    first = create(sender_api, **PERSON)
    again = create(sender_api, **AGAIN)
    supervisor = make_user(iom, Role.SUPERVISOR, username="dup.sup")  # sees every case of the institution
    page = logged_in_client(supervisor).get(f"/cases/{again['id']}/").content.decode()
    block = re.search(r'<ul id="possible-duplicates">(.*?)</ul>', page, re.S).group(1)
    assert (
        set(re.findall(r"IOM-\d{4}-\d{6}", block))
        == set(again["possible_duplicates"])
        == {first["reference"]}
    )


@pytest.mark.django_db
def test_a_caseworker_is_offered_only_cases_they_may_see(iom, sender_api, make_user):
    create(sender_api, **PERSON)  # made by the partner system: no caseworker is assigned to it
    caseworker = make_user(iom, Role.CASEWORKER, username="dup.cw")
    client = logged_in_client(caseworker)
    form = {
        **AGAIN,
        "sex": "female",
        "nationality": "VEN",
        "languages": "es",
        "document_type": "none",
        "document_number": "",
        "summary": "Resumen",
    }
    response = client.post("/cases/new/", form)
    # Nothing to confirm: the only likely duplicate is a case the caseworker may not see.
    assert response.status_code == 302, response.content.decode()[:2000]


def test_every_door_asks_the_one_registered_finder():
    from matching import matcher

    assert reads._duplicate_finder is matcher.probable_duplicates
