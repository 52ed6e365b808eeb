"""The partner API of offices (contract §7.2): the directory, to_office/province on create, the
representation, 409 office-not-accepting, the office= filter and POST /referrals/{id}/route/."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.services import office_pause
from audit.models import AuditEvent
from referrals import services
from tests.api.helpers import API, assert_problem
from tests.builders import referral_body
from tests.factories import subject_data
from tests.offices.conftest import make_office

pytestmark = pytest.mark.django_db


def _case(iom_actor):
    return services.case_create(actor=iom_actor, subject=subject_data(), summary="")


def _create(api, case, **extra):
    return api.post(f"{API}/referrals/", {**referral_body(case.pk), **extra}, format="json")


def test_the_directory_lists_every_institutions_offices_with_filters(iom, dp, api_as, darien, chiriqui):
    make_office(iom, "DARIEN", "PA-5", services=("shelter", "health"), languages=("es", "en"))
    office_pause(office=chiriqui, until=timezone.localdate() + datetime.timedelta(days=5))
    api = api_as(iom, ["referrals:read"])  # any valid token
    body = api.get(f"{API}/offices/").json()
    assert {(o["institution"], o["code"]) for o in body["results"]} == {
        ("DP", "DARIEN"),
        ("DP", "CHIRIQUI"),
        ("IOM", "DARIEN"),
    }
    darien_row = next(o for o in body["results"] if o["institution"] == "DP" and o["code"] == "DARIEN")
    assert darien_row == {
        "institution": "DP",
        "code": "DARIEN",
        "name": "DP Darien",
        "province": "PA-5",
        "services": ["legal_assistance", "protection"],
        "languages": ["es"],
        "accepting_referrals": True,
        "paused_until": None,
        "node": None,
    }

    def codes(query):
        response = api.get(f"{API}/offices/?{query}")
        assert response.status_code == 200, response.content
        return sorted(f"{o['institution']}/{o['code']}" for o in response.json()["results"])

    assert codes("institution=DP") == ["DP/CHIRIQUI", "DP/DARIEN"]
    assert codes("service=shelter") == ["IOM/DARIEN"]
    assert codes("province=PA-5") == ["DP/DARIEN", "IOM/DARIEN"]
    assert codes("accepting=true") == ["DP/DARIEN", "IOM/DARIEN"]
    assert codes("accepting=false") == ["DP/CHIRIQUI"]
    assert codes("institution=DP&service=protection&province=PA-4") == ["DP/CHIRIQUI"]
    chiriqui_row = api.get(f"{API}/offices/?accepting=false").json()["results"][0]
    assert chiriqui_row["accepting_referrals"] is False and chiriqui_row["paused_until"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("province=PA-99", "province"),
        ("service=haircut", "service"),
        ("accepting=yes", "accepting"),
        ("institution=dp", "institution"),
        ("color=red", "color"),
    ],
)
def test_the_directory_refuses_bad_filters(iom, api_as, query, field):
    assert_problem(api_as(iom).get(f"{API}/offices/?{query}"), 400, "validation-error", errors={field})


def test_the_directory_needs_a_token(db, client):
    assert client.get(f"{API}/offices/").status_code == 401


def test_create_with_office_and_province(iom, dp, api_as, iom_actor, darien):
    response = _create(api_as(iom), _case(iom_actor), to_office="DARIEN", province="PA-5")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["to_office"], body["from_office"], body["province"]) == ("DARIEN", None, "PA-5")
    plain = _create(api_as(iom), _case(iom_actor)).json()
    assert (plain["to_office"], plain["from_office"], plain["province"]) == (None, None, None)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"to_office": "NOPE"}, "to_office"),
        ({"to_office": "IOMFIELD"}, "to_office"),  # an office of another institution
        ({"to_office": "darien"}, "to_office"),
        ({"to_office": 7}, "to_office"),
        ({"province": "PA-99"}, "province"),
        ({"province": ""}, "province"),
    ],
)
def test_create_refuses_a_wrong_office_or_province(iom, dp, api_as, iom_actor, darien, extra, field):
    make_office(iom, "IOMFIELD", "PA-5")
    response = _create(api_as(iom), _case(iom_actor), **extra)
    assert_problem(response, 400, "validation-error", errors={field})


def test_send_to_a_paused_office_is_409_office_not_accepting(iom, dp, api_as, iom_actor, darien):
    until = timezone.localdate() + datetime.timedelta(days=7)
    api = api_as(iom)
    referral = _create(api, _case(iom_actor), to_office="DARIEN").json()
    office_pause(office=darien, until=until, reason="Sin abogado")
    body = assert_problem(api.post(f"{API}/referrals/{referral['id']}/send/"), 409, "office-not-accepting")
    assert until.isoformat() in body["detail"]


def test_send_routes_and_the_representation_shows_it(iom, dp, api_as, iom_actor, darien):
    api = api_as(iom)
    referral = _create(api, _case(iom_actor), province="PA-5").json()
    sent = api.post(f"{API}/referrals/{referral['id']}/send/")
    assert sent.status_code == 200 and sent.json()["to_office"] == "DARIEN"
    listed = api.get(f"{API}/referrals/").json()["results"][0]
    assert (listed["to_office"], listed["province"]) == ("DARIEN", "PA-5")


def test_the_office_filter_of_the_referral_list(iom, dp, api_as, iom_actor, darien, chiriqui):
    iom_api, dp_api = api_as(iom), api_as(dp)
    ids = {}
    for name, extra in (("darien", {"to_office": "DARIEN"}), ("national", {})):
        created = _create(iom_api, _case(iom_actor), **extra).json()
        iom_api.post(f"{API}/referrals/{created['id']}/send/")
        ids[name] = created["id"]

    def listed(query):
        response = dp_api.get(f"{API}/referrals/?{query}")
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert listed("office=DARIEN") == {ids["darien"]}
    assert listed("office=none") == {ids["national"]}
    assert listed("office=CHIRIQUI") == set()
    assert_problem(dp_api.get(f"{API}/referrals/?office=NOPE"), 400, "validation-error", errors={"office"})


def test_route_through_the_api(
    iom, dp, api_as, user_api, iom_actor, darien, chiriqui, darien_cw, chiriqui_cw
):
    referral = _create(api_as(iom), _case(iom_actor), to_office="DARIEN").json()
    api_as(iom).post(f"{API}/referrals/{referral['id']}/send/")
    url = f"{API}/referrals/{referral['id']}/route/"
    darien_api, chiriqui_api = user_api(darien_cw), user_api(chiriqui_cw)
    # Another office: 404, and the denial recorded.
    assert_problem(chiriqui_api.post(url, {"to_office": "CHIRIQUI"}, format="json"), 404, "not-found")
    assert AuditEvent.objects.filter(action="access.denied", object_id=referral["id"]).exists()
    # The sender: 403 (before the body).
    assert_problem(api_as(iom).post(url, {"bogus": 1}, format="json"), 403, "permission-denied")
    # Bodies: 400.
    assert_problem(darien_api.post(url, {}, format="json"), 400, "validation-error", errors={"to_office"})
    assert_problem(darien_api.post(url, {"to_office": "NOPE"}, format="json"), 400, "validation-error")
    assert_problem(
        darien_api.post(url, {"to_office": "CHIRIQUI"}, format="json", HTTP_IF_MATCH='"1"'),
        412,
        "precondition-failed",
    )
    response = darien_api.post(url, {"to_office": "CHIRIQUI"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["to_office"] == "CHIRIQUI"
    assert response["ETag"]
    assert chiriqui_api.get(f"{API}/referrals/{referral['id']}/").status_code == 200
    assert_problem(darien_api.get(f"{API}/referrals/{referral['id']}/"), 404, "not-found")
    events = api_as(dp).get(f"{API}/referrals/{referral['id']}/events/").json()["results"]
    assert [e["action"] for e in events][-1] == "route"
    # Back to the national intake, by the institution's API client.
    back = api_as(dp).post(url, {"to_office": None}, format="json")
    assert back.status_code == 200 and back.json()["to_office"] is None


def test_route_of_a_terminal_referral_is_409(iom, dp, api_as, iom_actor, darien):
    referral = _create(api_as(iom), _case(iom_actor), to_office="DARIEN").json()
    api_as(iom).post(f"{API}/referrals/{referral['id']}/send/")
    api_as(dp).post(f"{API}/referrals/{referral['id']}/reject/", {"reason": "No"}, format="json")
    url = f"{API}/referrals/{referral['id']}/route/"
    assert_problem(api_as(dp).post(url, {"to_office": None}, format="json"), 409, "invalid-transition")


def test_route_to_a_paused_office_is_409(iom, dp, api_as, iom_actor, darien, chiriqui):
    referral = _create(api_as(iom), _case(iom_actor), to_office="DARIEN").json()
    api_as(iom).post(f"{API}/referrals/{referral['id']}/send/")
    office_pause(office=chiriqui)
    url = f"{API}/referrals/{referral['id']}/route/"
    assert_problem(
        api_as(dp).post(url, {"to_office": "CHIRIQUI"}, format="json"), 409, "office-not-accepting"
    )
