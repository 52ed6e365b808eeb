"""The core's reads behind the web's office pages (issue 20): nearest first, offices offering services,
the directory's language filter, and which office a reader may narrow the dashboards to."""

from __future__ import annotations

import datetime

import pytest

from accounts import directory
from accounts.actor import actor_for_user, system_actor
from accounts.choices import Role
from accounts.services import office_pause
from referrals import worklists

from .conftest import make_office

pytestmark = pytest.mark.django_db


def test_nearest_first_is_the_province_then_provinces_by_name_then_office_name(dp):
    colon = make_office(dp, "COLON", "PA-3")
    bocas = make_office(dp, "BOCAS", "PA-1")
    darien_b = make_office(dp, "DARIENB", "PA-5")
    darien_a = make_office(dp, "DARIEN", "PA-5")
    chiriqui = make_office(dp, "CHIRIQUI", "PA-4")
    everyone = [colon, bocas, darien_b, darien_a, chiriqui]
    assert directory.nearest_first(everyone, "PA-5") == [darien_a, darien_b, bocas, chiriqui, colon]
    assert directory.nearest_first(everyone, None) == [bocas, chiriqui, colon, darien_a, darien_b]


def test_offices_offering_every_service_paused_ones_included(dp, iom):
    darien = make_office(dp, "DARIEN", "PA-5", services=("legal_assistance", "protection"))
    shelter = make_office(dp, "BOCAS", "PA-1", services=("shelter",))
    paused = make_office(dp, "COLON", "PA-3", services=("legal_assistance",))
    office_pause(office=paused, actor=system_actor(dp, "test"))
    make_office(iom, "DARIEN", "PA-5", services=("legal_assistance",))  # another institution's
    assert directory.offices_offering(dp, ["legal_assistance"], province="PA-3") == [paused, darien]
    assert directory.offices_offering(dp, ["legal_assistance", "protection"]) == [darien]
    assert directory.offices_offering(dp, ["health"]) == []
    assert directory.offices_offering(dp, []) == [shelter, paused, darien]


def test_directory_language_filter_and_languages_offered(dp):
    make_office(dp, "DARIEN", "PA-5", languages=("es", "emp"))
    make_office(dp, "BOCAS", "PA-1", languages=("es", "gym"))
    assert [o.code for o in directory.offices(language="gym")] == ["BOCAS"]
    assert directory.languages_offered() == ["emp", "es", "gym"]


def test_office_choice_national_staff_any_office_office_staff_their_own(dp, darien, chiriqui, make_user):
    national = actor_for_user(make_user(dp, Role.SUPERVISOR, username="dp.national.sup"))
    in_darien = actor_for_user(make_user(dp, Role.SUPERVISOR, username="dp.darien.sup2", office=darien))
    assert worklists.office_choice(national, "") is None
    assert worklists.office_choice(national, "CHIRIQUI") == chiriqui
    assert worklists.office_choice(national, "none") == worklists.NATIONAL_INTAKE
    assert worklists.office_choice(national, "NOWHERE") is worklists.UNKNOWN_OFFICE
    assert worklists.office_choice(in_darien, "DARIEN") == darien
    assert worklists.office_choice(in_darien, "CHIRIQUI") is worklists.UNKNOWN_OFFICE
    assert worklists.office_choice(in_darien, "none") is worklists.UNKNOWN_OFFICE
    assert worklists.offices_supervised(in_darien) == [darien]
    assert {o.code for o in worklists.offices_supervised(national)} == {"DARIEN", "CHIRIQUI"}


def test_caseworkers_of_an_office(dp, darien, chiriqui, make_user):
    national = actor_for_user(make_user(dp, Role.SUPERVISOR, username="dp.national.sup"))
    make_user(dp, Role.CASEWORKER, username="a.darien", office=darien)
    make_user(dp, Role.CASEWORKER, username="b.chiriqui", office=chiriqui)
    make_user(dp, Role.CASEWORKER, username="c.national")
    names = lambda users: [u.username for u in users]  # noqa: E731
    assert names(worklists.caseworkers(national)) == ["a.darien", "b.chiriqui", "c.national"]
    assert names(worklists.caseworkers(national, office=darien)) == ["a.darien"]
    assert names(worklists.caseworkers(national, office=worklists.NATIONAL_INTAKE)) == ["c.national"]
    in_chiriqui = actor_for_user(make_user(dp, Role.SUPERVISOR, username="dp.ch.sup", office=chiriqui))
    assert names(worklists.caseworkers(in_chiriqui)) == ["b.chiriqui"]


def test_a_pause_past_its_date_lists_the_office_as_accepting(dp):
    office = make_office(dp, "DARIEN", "PA-5")
    office_pause(office=office, until=datetime.date.today(), reason="Hoy no", actor=system_actor(dp, "test"))
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    assert [o.code for o in directory.offices(accepting=True, today=tomorrow)] == ["DARIEN"]
    assert [o.code for o in directory.offices(accepting=True)] == []
