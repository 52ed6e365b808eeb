"""Remote institutions (contract §7.4: hosted by a peer node) where a partner or an operator meets
institutions: ``GET /api/v1/institutions/`` and ``/offices/`` with ``node``, referrals addressed to them like
any other, and nothing created for them here — no staff, API client or office, at any door."""

from __future__ import annotations

import io
import sys

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from accounts import services as account_services
from accounts.models import ApiClient, Institution, Office, User
from audit.models import AuditEvent
from referrals import services
from tests.api.helpers import API
from tests.builders import referral_body
from tests.factories import subject_data

pytestmark = pytest.mark.django_db

NODE = "https://dp.node.example"


@pytest.fixture
def remote_dp(db):
    """The Defensoría hosted by a peer node, as pinning its card leaves it here (``node`` = its URL)."""
    return Institution.objects.create(code="DP", name="DP", node=NODE)


@pytest.fixture
def remote_darien(remote_dp):
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
    return Office.objects.get(institution=remote_dp, code="DARIEN")


def test_institutions_list_remote_ones_with_their_node(iom, remote_dp, api_as):
    body = api_as(iom, ["referrals:read"]).get(f"{API}/institutions/").json()
    assert body["results"] == [
        {"code": "DP", "name": "DP", "node": NODE},
        {"code": "IOM", "name": "IOM", "node": None},
    ]


def test_offices_of_a_remote_institution_are_in_the_directory_with_their_node(iom, remote_darien, api_as):
    account_services.office_save(
        institution=iom, code="METETI", name="OIM Metetí", province="PA-5", services=["shelter"]
    )
    results = api_as(iom, ["referrals:read"]).get(f"{API}/offices/?province=PA-5").json()["results"]
    assert {(o["institution"], o["code"], o["node"]) for o in results} == {
        ("DP", "DARIEN", NODE),
        ("IOM", "METETI", None),
    }


def test_a_referral_to_a_remote_institution_and_its_office_is_created_like_any_other(
    iom, iom_actor, remote_darien, api_as
):
    case = services.case_create(actor=iom_actor, subject=subject_data(), summary="")
    body = {**referral_body(case.pk, to="DP"), "to_office": "DARIEN"}
    response = api_as(iom).post(f"{API}/referrals/", body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["to_institution"], response.json()["to_office"]) == ("DP", "DARIEN")


# --- nothing is created for a remote institution here ------------------------------------------------------


def _refused(*args, stdin: str = "") -> str:
    err = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with pytest.raises(CommandError) as failed, translation.override("en"):
            call_command(*args, stdout=io.StringIO(), stderr=err)
    finally:
        sys.stdin = old
    assert failed.value.returncode == 1
    return str(failed.value)


def test_commands_refuse_a_remote_institution_with_exit_1_and_say_where_it_is_hosted(
    remote_dp, remote_darien
):
    hosted = f"DP is hosted by the node {NODE}"
    assert hosted in _refused("create_staff_user", "DP", "dp.someone", "--role", "caseworker")
    assert hosted in _refused(
        "create_staff_user", "DP", "dp.darien", "--role", "caseworker", "--office", "DARIEN"
    )
    assert hosted in _refused("create_api_client", "DP", "Sistema", "--scopes", "referrals:read")
    assert hosted in _refused(
        "create_office", "DP", "COLON", "Colón", "--province", "PA-3", "--services", "legal_assistance"
    )
    assert hosted in _refused(
        "create_office", "DP", "DARIEN", "Darién", "--province", "PA-5", "--services", "protection"
    )
    assert hosted in _refused("create_institution", "DP", "Defensoría del Pueblo")
    assert not User.objects.filter(institution=remote_dp).exists()
    assert not ApiClient.objects.exists()
    assert list(Office.objects.values_list("code", "name", "services")) == [
        ("DARIEN", "Defensoría — Darién", ["legal_assistance"])
    ]
    assert not AuditEvent.objects.filter(action__in=["user.created", "api_client.created"]).exists()


def test_the_services_refuse_it_in_spanish_first(remote_dp, remote_darien):
    with pytest.raises(ValidationError) as refused:
        account_services.institution_create(code="DP", name="Defensoría del Pueblo")
    assert refused.value.message_dict == {
        "code": [f"DP está alojada en el nodo {NODE}: su personal, sus clientes de la API y sus oficinas se "
                 "gestionan en ese nodo."]
    }  # fmt: skip
    for call in (
        lambda: account_services.staff_user_create(institution=remote_dp, username="x.y", role="caseworker"),
        lambda: account_services.api_client_create(
            institution=remote_dp, name="x", scopes=["referrals:read"]
        ),
        lambda: account_services.office_pause(office=remote_darien),
        lambda: account_services.office_resume(office=remote_darien),
    ):
        with pytest.raises(ValidationError) as refused:
            call()
        assert refused.value.message_dict["institution"][0].startswith("DP está alojada en el nodo")
    # A local institution is unaffected.
    institution, created = account_services.institution_create(code="IOM", name="OIM")
    assert created and not institution.is_remote


def test_a_referral_to_a_remote_institution_is_not_routed_here(iom, remote_dp, remote_darien):
    """Routing by province happens at the receiver's node (contract §7.4): its offices are known here to be
    named by the sender, never chosen by this node."""
    from referrals import routing
    from referrals.models import Referral

    referral = Referral(to_institution=remote_dp, province="PA-5", services=["legal_assistance"])
    assert remote_darien.offers(referral.services) and remote_darien.is_accepting()
    assert routing.office_for(referral) is None
