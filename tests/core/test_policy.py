"""Issue 19: each decision of a door is the core's (``referrals.policy``) — the defects observed where a
door decided by itself, and answered differently from the core (contract §7.1)."""

from __future__ import annotations

import datetime

import pytest

from accounts.actor import actor_for_user
from accounts.choices import Role, Scope
from referrals import policy, services
from referrals.errors import Forbidden
from referrals.models import Referral, ReferralGroupObjectPermission
from tests.api.helpers import API

pytestmark = pytest.mark.django_db

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


# --- 1. statistics: one rule at both doors and in the read service ----------------------------------


def test_the_roles_that_see_statistics_hold_statistics_read(iom, make_user):
    for role, sees in ((Role.CASEWORKER, False), (Role.SUPERVISOR, True), (Role.ADMIN, True)):
        actor = actor_for_user(make_user(iom, role, username=f"iom.{role}"))
        assert actor.has_scope(Scope.STATISTICS_READ) is sees, role
        assert policy.may_view_statistics(actor) is sees, role


def test_the_statistics_read_service_refuses_a_caseworker(iom_actor, iom_supervisor_actor):
    from reporting.reads import referral_statistics
    from reporting.statistics import StatisticsQuery

    query = StatisticsQuery(
        date_from=datetime.date(2026, 3, 1), date_to=datetime.date(2026, 3, 31), by=("month",)
    )
    with pytest.raises(Forbidden):
        referral_statistics(actor=iom_actor, query=query)
    assert referral_statistics(actor=iom_supervisor_actor, query=query) is not None


def test_an_institution_admin_sees_the_statistics_page(iom_admin, web_client):
    assert web_client(iom_admin).get("/supervision/statistics/", {**MARCH, "by": "month"}).status_code == 200


# --- 5. take / assign / print: the web offers what the core allows ----------------------------------


@pytest.fixture
def sent(iom_actor, dp, make_referral):
    return make_referral(iom_actor, dp, path=[(iom_actor, "send")])


def _drop_change_grants(referral):
    """The receiver keeps seeing the referral but may no longer act on it (``change_referral`` gone)."""
    ReferralGroupObjectPermission.objects.filter(
        content_object=referral, permission__codename="change_referral"
    ).delete()


def test_take_and_assign_are_offered_only_when_the_services_accept_them(
    sent, dp_caseworker, dp_supervisor, web_client
):
    _drop_change_grants(sent)
    assert sent.receiver_access_revoked_at is None
    page = web_client(dp_caseworker).get(f"/referrals/{sent.pk}/")
    assert page.status_code == 200
    assert page.context["can_take"] is False
    assert web_client(dp_caseworker).post(f"/referrals/{sent.pk}/take/").status_code == 302
    assert Referral.objects.get(pk=sent.pk).assignee_id is None
    page = web_client(dp_supervisor).get(f"/referrals/{sent.pk}/")
    assert page.context["can_assign"] is False


def test_a_voided_referral_is_printed_by_no_door(sent, iom_actor, iom_supervisor, iom_caseworker, web_client):
    from referrals import reads

    services.referral_transition(
        actor=actor_for_user(iom_supervisor), referral_id=sent.pk, action="void", reason="Error"
    )
    assert policy.may_print(iom_actor, Referral.objects.get(pk=sent.pk)) is False
    with pytest.raises(Forbidden):
        reads.referral_sheet_read(actor=iom_actor, referral_id=sent.pk)
    client = web_client(iom_caseworker)
    assert client.get(f"/referrals/{sent.pk}/").context["can_print"] is False
    assert client.get(f"/referrals/{sent.pk}/print/").status_code == 302


# --- 7. a draft without consent, at every door; send refuses it at every door -------------------------


def _body(case_id, consent=None) -> dict:
    body = {
        "case": str(case_id),
        "to_institution": "DP",
        "services": ["legal_assistance"],
        "urgency": "normal",
        "reason": "Motivo",
    }
    if consent is not None:
        body["consent"] = consent
    return body


@pytest.mark.parametrize("consent", [None, {"given": False}], ids=["absent", "not given"])
def test_the_api_saves_a_draft_without_consent_and_refuses_to_send_it(
    consent, iom, dp, api_as, iom_actor, make_case
):
    api = api_as(iom)
    created = api.post(f"{API}/referrals/", _body(make_case(iom_actor).pk, consent), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft"
    assert created.json()["consent"]["given"] is False
    sent = api.post(f"{API}/referrals/{created.json()['id']}/send/", {}, format="json")
    assert sent.status_code == 409
    assert sent.json()["type"].endswith("consent-required")


def test_the_web_saves_a_draft_without_consent_and_refuses_to_send_it(
    iom, dp, iom_actor, iom_caseworker, make_case, web_client
):
    case = make_case(iom_actor)
    client = web_client(iom_caseworker)
    page = client.post(
        f"/cases/{case.pk}/refer/",
        {"to_institution": "DP", "services": ["legal_assistance"], "urgency": "normal", "reason": "Motivo"},
    )
    assert page.status_code == 302, page.context["form"].errors
    referral = Referral.objects.get()
    assert referral.status == "draft" and referral.consent.given is False
    client.post(f"/referrals/{referral.pk}/actions/send/")
    referral.refresh_from_db()
    assert referral.status == "draft"


def test_a_given_consent_still_needs_who_how_when_and_a_category(
    iom, dp, iom_actor, iom_caseworker, make_case, web_client
):
    case = make_case(iom_actor)
    page = web_client(iom_caseworker).post(
        f"/cases/{case.pk}/refer/",
        {
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "normal",
            "reason": "Motivo",
            "consent_given": "on",
        },
    )
    assert page.status_code == 200
    errors = page.context["form"].errors
    assert {"consent_given_by", "consent_method", "data_categories"} <= set(errors)
    assert Referral.objects.count() == 0


# --- the rest of item 5: one rule each ---------------------------------------------------------------


def test_the_receiver_is_not_told_the_senders_case(sent, iom_actor, dp_actor, iom, dp, api_as):
    assert policy.may_see_case(iom_actor, sent) is True
    assert policy.may_see_case(dp_actor, sent) is False
    assert api_as(dp).get(f"{API}/referrals/{sent.pk}/").json()["case"] is None
    assert api_as(iom).get(f"{API}/referrals/{sent.pk}/").json()["case"] == str(sent.case_id)


@pytest.mark.parametrize(
    ("terms", "ok"),
    [
        ({"given_name": "Ana", "family_name": "Pérez"}, True),
        ({"document_number": "P123"}, True),
        ({"given_name": "Ana"}, False),
        ({"given_name": " ", "family_name": " "}, False),
        ({}, False),
    ],
)
def test_names_or_a_document_is_one_rule(terms, ok):
    from referrals import rules

    assert rules.names_or_document(terms) is ok


def test_a_withdrawal_by_the_receiver_is_refused_before_its_body_is_read(sent, dp, api_as):
    response = api_as(dp).post(f"{API}/referrals/{sent.pk}/consent/withdraw/", {"reason": 12}, format="json")
    assert response.status_code == 403


def test_a_note_on_a_voided_referral_is_refused_by_the_policy_and_not_offered(
    sent, iom_actor, iom_supervisor, iom_caseworker, web_client
):
    services.referral_transition(
        actor=actor_for_user(iom_supervisor), referral_id=sent.pk, action="void", reason="Error"
    )
    voided = Referral.objects.get(pk=sent.pk)
    assert policy.may_note(iom_actor, voided) is False
    assert web_client(iom_caseworker).get(f"/referrals/{sent.pk}/").context["note_form"] is None


def test_the_consent_guard_is_in_the_lifecycle_table():
    from referrals.lifecycle import TRANSITIONS

    assert policy.CONSENT_GIVEN in TRANSITIONS["send"].guards
    assert policy.VOID_RIGHT in TRANSITIONS["void"].guards


def test_may_transition_matches_the_service(sent, iom_actor, dp_actor, iom_supervisor_actor):
    assert policy.may_transition(dp_actor, sent, "accept") is True
    assert policy.may_transition(iom_actor, sent, "accept") is False  # the other side's
    assert policy.may_transition(dp_actor, sent, "start") is False  # not from requested
    assert policy.may_transition(iom_actor, sent, "void") is False  # a caseworker
    assert policy.may_transition(iom_supervisor_actor, sent, "void") is True
    assert policy.may_transition(iom_actor, sent, "fly") is False


def test_a_draft_without_consent_may_not_be_sent(iom_actor, dp):
    from tests.builders import referral_through_services

    draft = referral_through_services(sender=iom_actor, to=dp, consent_given=False)
    assert policy.may_send(iom_actor, draft) is False
    assert "send" in policy.actions_available(actor=iom_actor, referral=draft)  # offered; refused with 409
    given = referral_through_services(sender=iom_actor, to=dp)
    assert policy.may_send(iom_actor, given) is True


def test_the_policy_answers_route_for_the_receiver_only(sent, iom_actor, dp_actor, dp, service_actor):
    assert policy.may_route(dp_actor, sent) is True
    assert policy.may_route(iom_actor, sent) is False
    assert policy.may_route(service_actor(dp, [Scope.REFERRALS_READ]), sent) is False
    _drop_change_grants(sent)
    sent = Referral.objects.get(pk=sent.pk)
    assert policy.may_route(actor_for_user(dp_actor.user), sent) is False


def test_the_sender_prints_a_sent_referral_and_the_receiver_does_not(sent, iom_actor, dp_actor):
    assert policy.may_print(iom_actor, sent) is True
    assert policy.may_print(dp_actor, sent) is False
