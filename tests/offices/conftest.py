"""Offices of the Defensoría (the receiver of every suite) and their staff (issue 20, contract §7.2)."""

from __future__ import annotations

import pytest

from accounts.actor import actor_for_user, system_actor
from accounts.choices import Role
from accounts.services import office_save


def make_office(institution, code, province, services=("legal_assistance", "protection"), languages=("es",)):
    office, _created = office_save(
        institution=institution,
        code=code,
        name=f"{institution.code} {code.title()}",
        province=province,
        services=list(services),
        languages=list(languages),
        actor=system_actor(institution, "test"),
    )
    return office


@pytest.fixture
def darien(dp):
    return make_office(dp, "DARIEN", "PA-5")


@pytest.fixture
def chiriqui(dp):
    return make_office(dp, "CHIRIQUI", "PA-4")


@pytest.fixture
def darien_cw(dp, darien, make_user):
    return make_user(dp, Role.CASEWORKER, username="dp.darien.cw", office=darien)


@pytest.fixture
def darien_supervisor(dp, darien, make_user):
    return make_user(dp, Role.SUPERVISOR, username="dp.darien.sup", office=darien)


@pytest.fixture
def chiriqui_cw(dp, chiriqui, make_user):
    return make_user(dp, Role.CASEWORKER, username="dp.chiriqui.cw", office=chiriqui)


@pytest.fixture
def actor_of():
    return actor_for_user
