"""``seed_demo`` with offices (issue 20): realistic offices of both institutions, staff in them, referrals
routed to them — and the national demo logins as before."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.actor import actor_for_user
from accounts.choices import Role
from accounts.models import Office, User
from referrals.models import Referral
from referrals.selectors import referrals_visible_to

NATIONAL = [
    "iom.caseworker",
    "iom.caseworker2",
    "iom.supervisor",
    "iom.admin",
    "dp.caseworker",
    "dp.supervisor",
]


@pytest.fixture
def seeded(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_offices_of_both_institutions_in_real_provinces(seeded):
    offices = {o.key: o.province for o in Office.objects.select_related("institution")}
    assert {"IOM/DARIEN": "PA-5", "IOM/CHIRIQUI": "PA-4", "IOM/PANAMA": "PA-8"}.items() <= offices.items()
    assert {
        "DP/DARIEN": "PA-5",
        "DP/CHIRIQUI": "PA-4",
        "DP/COLON": "PA-3",
        "DP/BOCAS": "PA-1",
        "DP/PANAMA": "PA-8",
    }.items() <= offices.items()
    bocas = Office.objects.get(institution__code="DP", code="BOCAS")
    assert not bocas.is_accepting() and bocas.paused_until is not None and bocas.pause_reason


def test_every_office_has_caseworkers_and_a_supervisor_whose_logins_are_printed(seeded):
    for office in Office.objects.select_related("institution"):
        roles = list(User.objects.filter(office=office).values_list("role", flat=True))
        assert roles.count(Role.SUPERVISOR) == 1, office.key
        assert roles.count(Role.CASEWORKER) >= 1, office.key
        for username in User.objects.filter(office=office).values_list("username", flat=True):
            assert username in seeded and office.key in seeded
    # The national demo logins are still there, still national, still printed.
    for username in [*NATIONAL, "dp.admin"]:
        assert User.objects.get(username=username).office_id is None
        assert username in seeded


def test_referrals_are_routed_to_offices_and_seen_on_need_to_know(seeded):
    routed = Referral.objects.filter(to_office__isnull=False).select_related("to_office__institution")
    assert {r.to_office.key for r in routed} >= {"DP/DARIEN", "DP/CHIRIQUI", "DP/PANAMA", "IOM/DARIEN"}
    # Routed at send by province: made in the field (from an office), the province of the receiving office.
    field = routed.filter(from_office__isnull=False)
    assert field.count() >= 5
    assert all(r.province == r.to_office.province for r in field)
    # Still a national intake (Colón has no IOM office) and the original referrals at DP's national intake.
    assert Referral.objects.filter(to_institution__code="IOM", to_office__isnull=True).exists()
    assert Referral.objects.filter(to_institution__code="DP", to_office__isnull=True).count() >= 9
    darien_referral = routed.filter(to_office__code="DARIEN", to_institution__code="DP").first()
    chiriqui_referral = routed.filter(to_office__code="CHIRIQUI", to_institution__code="DP").first()
    darien = actor_for_user(User.objects.get(username="dp.darien.caseworker"))
    visible = set(referrals_visible_to(darien).values_list("pk", flat=True))
    assert darien_referral.pk in visible and chiriqui_referral.pk not in visible
    national = actor_for_user(User.objects.get(username="dp.caseworker"))
    visible = set(referrals_visible_to(national).values_list("pk", flat=True))
    assert {darien_referral.pk, chiriqui_referral.pk} <= visible


def test_a_national_supervisor_routed_one_from_the_national_intake(seeded):
    referral = Referral.objects.get(to_office__code="COLON", to_institution__code="DP")
    assert referral.from_office_id is None  # made by national staff, moved by `route`
    assert referral.events.filter(action="route").exists()
