"""Remote institutions in the web (contract §7.4: "remote institutions in the directory and in the web's
pickers, marked as hosted elsewhere"): the referral form, the directory, the HSDS export, and the Django
admin, which adds no staff or office to them."""

from __future__ import annotations

import re

import pytest

from accounts import services as account_services
from accounts.actor import actor_for_user
from accounts.models import Institution, Office, User
from tests.offices import hsds30
from tests.offices.conftest import make_office

NODE = "https://dp.node.example"


@pytest.fixture
def remote_dp(db):
    """The Defensoría hosted by a peer node, with one office as that node serves it."""
    institution = Institution.objects.create(code="DP", name="Defensoría del Pueblo", node=NODE)
    account_services.remote_offices_save(
        node=NODE,
        offices=[
            {
                "institution": "DP",
                "code": "DARIEN",
                "name": "Defensoría — Darién",
                "province": "PA-5",
                "services": ["legal_assistance"],
                "languages": ["es"],
                "accepting_referrals": True,
                "paused_until": None,
            }
        ],
    )
    return institution


def html(response) -> str:
    return response.content.decode()


def test_the_referral_forms_pickers_mark_remote_institutions_and_their_offices(
    iom, third, remote_dp, iom_caseworker, make_case, web_client, assert_accessible
):
    case = make_case(actor_for_user(iom_caseworker))
    client = web_client(iom_caseworker)
    response = client.get(f"/cases/{case.pk}/refer/", HTTP_ACCEPT_LANGUAGE="es")
    assert_accessible(response)
    page = html(response)
    options = dict(re.findall(r'<option value="([A-Z_]+)"[^>]*>([^<]*)</option>', page))
    assert options["DP"] == "DP — Defensoría del Pueblo (alojada en otro nodo)"  # Spanish first
    assert options["UNHCR"] == "UNHCR — UNHCR"  # a local institution: unmarked
    office = re.search(r'<li data-institution="DP"[^>]*data-office="DP/DARIEN".*?</li>', page, re.S).group(0)
    assert "alojada en otro nodo" in office

    User.objects.filter(pk=iom_caseworker.pk).update(language="en")  # the reader's own language
    english = html(client.get(f"/cases/{case.pk}/refer/"))
    assert "DP — Defensoría del Pueblo (hosted on another node)" in english


def test_a_referral_to_a_remote_office_is_made_in_the_form(
    iom, remote_dp, iom_caseworker, make_case, web_client
):
    case = make_case(actor_for_user(iom_caseworker))
    response = web_client(iom_caseworker).post(
        f"/cases/{case.pk}/refer/",
        {
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "normal",
            "reason": "Asesoría legal",
            "province": "PA-5",
            "to_office": "DARIEN",
        },
    )
    assert response.status_code == 302, html(response)[-2000:]
    referral = case.referrals.get()
    assert (referral.to_institution.code, referral.to_office.code) == ("DP", "DARIEN")


def test_the_directory_lists_remote_institutions_and_offices_marked(
    iom, remote_dp, iom_caseworker, web_client, assert_accessible
):
    make_office(iom, "METETI", "PA-5")
    response = web_client(iom_caseworker).get("/directory/", HTTP_ACCEPT_LANGUAGE="es")
    assert_accessible(response)
    page = html(response)
    institutions = re.search(r'<section aria-labelledby="institutions-title".*?</section>', page, re.S).group(
        0
    )
    dp = re.search(r'<li data-institution="DP">.*?</li>', institutions, re.S).group(0)
    iom_row = re.search(r'<li data-institution="IOM">.*?</li>', institutions, re.S).group(0)
    assert "alojada en otro nodo" in dp and NODE in dp
    assert "alojada en otro nodo" not in iom_row
    offices = page.split('<section aria-labelledby="offices-title"')[1]
    cards = {part.split('"')[0]: part for part in offices.split(' data-office="')[1:]}
    assert set(cards) == {"DP/DARIEN", "IOM/METETI"}
    assert f'data-node="{NODE}"' in cards["DP/DARIEN"] and "data-node" not in cards["IOM/METETI"]


def test_the_hsds_export_keeps_remote_institutions_with_their_node(iom, remote_dp, api_as):
    body = api_as(iom, []).get("/api/v1/directory/hsds/").json()
    assert hsds30.problems(body) == []
    organizations = {o["alternate_name"]: o for o in body["organizations"]}
    identifiers = [
        (i["identifier_type"], i["identifier"]) for i in organizations["DP"]["organization_identifiers"]
    ]
    assert identifiers == [("referral network institution code", "DP"), ("referral network node", NODE)]
    assert NODE in organizations["DP"]["description"]
    assert len(organizations["IOM"]["organization_identifiers"]) == 1
    assert [loc["external_identifier"] for loc in body["locations"]] == ["DP/DARIEN"]


def test_the_django_admin_adds_no_staff_or_office_to_a_remote_institution(remote_dp, superuser_client):
    refused = superuser_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "dp.someone",
            "institution": remote_dp.pk,
            "role": "caseworker",
            "password1": "Tr0pical-Lluvia-2026",
            "password2": "Tr0pical-Lluvia-2026",
            "usable_password": "true",
        },
    )
    assert refused.status_code == 200 and "alojada en el nodo https://dp.node.example" in html(refused)
    assert not User.objects.filter(username="dp.someone").exists()
    refused = superuser_client.post(
        "/admin/accounts/office/add/",
        {
            "institution": remote_dp.pk,
            "code": "COLON",
            "name": "Colón",
            "province": "PA-3",
            "services": '["legal_assistance"]',
            "languages": '["es"]',
        },
    )
    assert refused.status_code == 200 and "alojada en el nodo https://dp.node.example" in html(refused)
    # Nor is the office its node serves changed here: shown read only, and neither paused nor resumed.
    darien = Office.objects.get(institution=remote_dp, code="DARIEN")
    page = superuser_client.get(f"/admin/accounts/office/{darien.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in html(page)
    changed = superuser_client.post(
        f"/admin/accounts/office/{darien.pk}/change/",
        {"name": "Otro", "province": "PA-5", "services": '["legal_assistance"]', "languages": '["es"]'},
    )
    assert changed.status_code == 403
    paused = superuser_client.post(
        "/admin/accounts/office/", {"action": "pause", "_selected_action": [darien.pk]}, follow=True
    )
    assert "alojada en el nodo" in html(paused)
    assert list(Office.objects.values_list("code", "name", "accepting_referrals")) == [
        ("DARIEN", "Defensoría — Darién", True)
    ]
