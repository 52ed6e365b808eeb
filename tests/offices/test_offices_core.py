"""Offices in the core (contract §7.2): the office services and their audit, the commands, routing at send,
the ``route`` service, and need to know inside an institution (grants follow the office)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts import directory
from accounts import policy as account_policy
from accounts.actor import actor_for_user
from accounts.choices import Role
from accounts.models import Office, User
from accounts.services import office_pause, office_resume, office_save, staff_user_create
from audit.models import AuditEvent
from notifications.models import Notification
from referrals import policy, selectors, services
from referrals.errors import InvalidInput, NotVisible, OfficeNotAccepting
from referrals.models import ReferralEvent
from tests.builders import referral_through_services
from tests.offices.conftest import make_office

pytestmark = pytest.mark.django_db


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def _visible(actor, referral) -> bool:
    try:
        selectors.referral_visible_to(actor, referral.pk)
    except NotVisible:
        return False
    return selectors.referrals_visible_to(actor).filter(pk=referral.pk).exists()


def _sent(iom_actor, dp, **kwargs):
    return referral_through_services(sender=iom_actor, to=dp, path=[(iom_actor, "send")], **kwargs)


def _draft(iom_actor, dp, *, to_office=None, province="", requested=("legal_assistance",)):
    from tests.builders import consent
    from tests.factories import subject_data

    case = services.case_create(actor=iom_actor, subject=subject_data(), summary="")
    return services.referral_create(
        actor=iom_actor,
        case=case,
        to_institution=dp,
        services=list(requested),
        urgency="normal",
        reason="Motivo",
        consent=consent(),
        to_office=to_office,
        province=province,
    )


def _send(actor, referral):
    return services.referral_transition(actor=actor, referral_id=referral.pk, action="send")


# --- offices: services, policy, commands -------------------------------------------------------------------


def test_office_save_is_idempotent_and_audited_without_personal_data(dp):
    office = make_office(dp, "DARIEN", "PA-5")
    assert (office.code, office.province, office.services) == (
        "DARIEN",
        "PA-5",
        ["legal_assistance", "protection"],
    )
    assert office.is_accepting()
    created = _events("office.created")
    assert [e.detail for e in created] == [
        {"code": "DARIEN", "fields": ["languages", "name", "province", "services"]}
    ]
    again, was_created = office_save(
        institution=dp,
        code="DARIEN",
        name=office.name,
        province="PA-5",
        services=["legal_assistance", "protection"],
        languages=["es"],
    )
    assert (again.pk, was_created) == (office.pk, False)
    assert _events("office.changed") == []  # nothing changed, nothing recorded
    office_save(
        institution=dp, code="DARIEN", name="Darién (Metetí)", province="PA-5", services=["protection"]
    )
    assert [e.detail for e in _events("office.changed")] == [
        {"code": "DARIEN", "fields": ["languages", "name", "services"]}
    ]
    assert Office.objects.filter(institution=dp).count() == 1


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"code": "da"}, "code"),
        ({"code": "X"}, "code"),
        ({"code": "A" * 17}, "code"),
        ({"province": "PA-11"}, "province"),
        ({"province": "PA-5 "}, "province"),
        ({"services": []}, "services"),
        ({"services": ["haircut"]}, "services"),
        ({"services": [["legal_assistance"]]}, "services"),
        ({"languages": ["Spanish"]}, "languages"),
        ({"name": "  "}, "name"),
    ],
)
def test_office_save_refuses_each_wrong_field(dp, fields, bad):
    base = {
        "code": "DARIEN",
        "name": "Darién",
        "province": "PA-5",
        "services": ["protection"],
        "languages": ["es"],
    }
    with pytest.raises(ValidationError) as info:
        office_save(institution=dp, **{**base, **fields})
    assert set(info.value.message_dict) == {bad}
    assert not Office.objects.exists()


def test_only_the_institutions_admins_manage_its_offices(dp, iom, dp_admin, dp_supervisor, make_user):
    office = make_office(dp, "DARIEN", "PA-5")
    iom_admin = make_user(iom, Role.ADMIN, username="iom.admin2")
    assert account_policy.may_manage_offices(actor_for_user(dp_admin), office)
    assert not account_policy.may_manage_offices(actor_for_user(dp_supervisor), office)
    assert not account_policy.may_manage_offices(actor_for_user(iom_admin), office)
    with pytest.raises(PermissionDenied):
        office_pause(office=office, actor=actor_for_user(iom_admin))
    with pytest.raises(PermissionDenied):
        office_save(
            institution=dp,
            code="COLON",
            name="Colón",
            province="PA-3",
            services=["protection"],
            actor=actor_for_user(dp_supervisor),
        )
    office_pause(office=office, actor=actor_for_user(dp_admin))


def test_pause_and_resume_are_audited_and_decide_accepting_now(dp):
    office = make_office(dp, "DARIEN", "PA-5")
    today = timezone.localdate()
    until = today + datetime.timedelta(days=3)
    office = office_pause(office=office, until=until, reason="Sin abogado este mes")
    assert not office.is_accepting()
    assert office.is_accepting(until + datetime.timedelta(days=1))  # the date has passed
    assert list(directory.offices(accepting=True)) == []
    assert list(directory.offices(accepting=True, today=until + datetime.timedelta(days=1))) == [office]
    assert list(directory.offices(accepting=False)) == [office]
    [paused] = _events("office.paused")
    assert paused.detail == {"code": "DARIEN", "until": until.isoformat()}
    assert "abogado" not in str(paused.detail)
    assert office_resume(office=office) is True
    assert office_resume(office=office) is False
    office.refresh_from_db()
    assert (office.accepting_referrals, office.paused_until, office.pause_reason) == (True, None, "")
    assert [e.detail for e in _events("office.resumed")] == [{"code": "DARIEN"}]
    with pytest.raises(ValidationError):
        office_pause(office=office, until=today - datetime.timedelta(days=1))


def test_create_office_command(dp, capsys):
    call_command(
        "create_office",
        "DP",
        "DARIEN",
        "Darién",
        "--province",
        "PA-5",
        "--services",
        "legal_assistance,protection",
        "--languages",
        "es,en",
    )
    office = Office.objects.get(institution=dp, code="DARIEN")
    assert (office.services, office.languages) == (["legal_assistance", "protection"], ["es", "en"])
    call_command(
        "create_office",
        "DP",
        "DARIEN",
        "Darién",
        "--province",
        "PA-5",
        "--services",
        "legal_assistance,protection",
        "--languages",
        "es,en",
    )
    assert (
        Office.objects.count() == 1 and len(_events("office.created")) == 1 and not _events("office.changed")
    )
    assert _events("office.created")[0].actor_type == "system"
    with pytest.raises(CommandError, match="province"):
        call_command(
            "create_office", "DP", "COLON", "Colón", "--province", "PA-99", "--services", "protection"
        )
    with pytest.raises(CommandError, match="services"):
        call_command("create_office", "DP", "COLON", "Colón", "--province", "PA-3", "--services", "nope")
    with pytest.raises(CommandError, match="no institution"):
        call_command(
            "create_office", "XX", "COLON", "Colón", "--province", "PA-3", "--services", "protection"
        )


def test_create_staff_user_places_a_person_in_an_office(dp, capsys):
    office = make_office(dp, "DARIEN", "PA-5")
    call_command("create_staff_user", "DP", "ana.darien", "--role", "caseworker", "--office", "DARIEN")
    user = User.objects.get(username="ana.darien")
    assert user.office == office
    names = set(user.groups.values_list("name", flat=True))
    assert names == {"DP:caseworkers", "DP:office:DARIEN"}
    call_command("create_staff_user", "DP", "ana.darien", "--role", "caseworker")  # keeps the office
    user.refresh_from_db()
    assert user.office == office
    call_command("create_staff_user", "DP", "ana.darien", "--role", "caseworker", "--national")
    user.refresh_from_db()
    assert user.office is None
    assert set(user.groups.values_list("name", flat=True)) == {"DP:caseworkers", "DP:intake"}
    with pytest.raises(CommandError, match="no office"):
        call_command("create_staff_user", "DP", "ana.darien", "--role", "caseworker", "--office", "NOPE")


def test_a_user_never_works_in_another_institutions_office(dp, iom):
    office = make_office(dp, "DARIEN", "PA-5")
    with pytest.raises(ValidationError):
        staff_user_create(institution=iom, username="iom.x", role=Role.CASEWORKER, office=office)


def test_office_supervisors_are_in_their_office_groups_only(dp, darien_supervisor):
    names = set(darien_supervisor.groups.values_list("name", flat=True))
    assert names == {"DP:office:DARIEN", "DP:office:DARIEN:supervisors"}


# --- referrals to an office ---------------------------------------------------------------------------------


def test_create_records_to_office_province_and_from_office(iom, dp, darien, iom_actor, make_user):
    referral = _draft(iom_actor, dp, to_office=darien, province="PA-5")
    referral.refresh_from_db()
    assert (referral.to_office, referral.province, referral.from_office) == (darien, "PA-5", None)
    iom_office = make_office(iom, "METETI", "PA-5")
    iom_field = make_user(iom, Role.CASEWORKER, username="iom.meteti", office=iom_office)
    referral = _draft(actor_for_user(iom_field), dp)
    referral.refresh_from_db()
    assert referral.from_office == iom_office


def test_create_refuses_another_institutions_office_and_an_unknown_province(iom, dp, iom_actor):
    iom_office = make_office(iom, "METETI", "PA-5")
    with pytest.raises(InvalidInput) as info:
        _draft(iom_actor, dp, to_office=iom_office)
    assert set(info.value.errors) == {"to_office"}
    with pytest.raises(InvalidInput) as info:
        _draft(iom_actor, dp, province="PA-99")
    assert set(info.value.errors) == {"province"}


def test_send_routes_by_province_and_services(iom, dp, iom_actor, darien, chiriqui):
    shelter_only = make_office(dp, "DARIEN_B", "PA-5", services=("shelter",))  # noqa: F841 - lacks the service
    referral = _send(iom_actor, _draft(iom_actor, dp, province="PA-5"))
    referral.refresh_from_db()
    assert referral.to_office == darien
    [sent] = [e for e in _events("referral.transitioned") if e.detail["action"] == "send"]
    assert sent.detail["office"] == "DARIEN"
    # No province, or no office there offering every service: national intake.
    assert _send(iom_actor, _draft(iom_actor, dp)).to_office_id is None
    assert _send(iom_actor, _draft(iom_actor, dp, province="PA-3")).to_office_id is None
    r = _send(iom_actor, _draft(iom_actor, dp, province="PA-5", requested=("legal_assistance", "shelter")))
    assert r.to_office_id is None


def test_send_skips_a_paused_office_when_routing(iom, dp, iom_actor, darien):
    office_pause(office=darien)
    assert _send(iom_actor, _draft(iom_actor, dp, province="PA-5")).to_office_id is None


def test_send_to_a_paused_office_is_409_with_its_date(iom, dp, iom_actor, darien):
    until = timezone.localdate() + datetime.timedelta(days=10)
    office_pause(office=darien, until=until)
    referral = _draft(iom_actor, dp, to_office=darien)
    with pytest.raises(OfficeNotAccepting) as info:
        _send(iom_actor, referral)
    assert info.value.status_code == 409 and until.isoformat() in info.value.detail
    referral.refresh_from_db()
    assert referral.status == "draft"
    office_resume(office=darien)
    assert _send(iom_actor, referral).status == "requested"


def test_routing_at_send_costs_at_most_two_queries(iom, dp, iom_actor, darien):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _send(iom_actor, _draft(iom_actor, dp))  # warm up: the groups and permission rows of a first send
    plain = _draft(iom_actor, dp)
    with CaptureQueriesContext(connection) as base:
        _send(iom_actor, plain)
    routed = _draft(iom_actor, dp, province="PA-5")
    with CaptureQueriesContext(connection) as with_routing:
        _send(iom_actor, routed)
    assert len(with_routing.captured_queries) - len(base.captured_queries) <= 2
    named = _draft(iom_actor, dp, to_office=darien)
    with CaptureQueriesContext(connection) as with_office:
        _send(iom_actor, named)
    assert len(with_office.captured_queries) - len(base.captured_queries) <= 2
    print(
        f"send: {len(base.captured_queries)} queries at national intake, "
        f"{len(with_routing.captured_queries)} routed by province, "
        f"{len(with_office.captured_queries)} to a named office"
    )


# --- need to know inside an institution ----------------------------------------------------------------


def test_grants_follow_the_office(
    iom,
    dp,
    iom_actor,
    darien,
    chiriqui,
    darien_cw,
    darien_supervisor,
    chiriqui_cw,
    dp_caseworker,
    dp_supervisor,
    service_actor,
):
    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    national_cw, national_sup = actor_for_user(dp_caseworker), actor_for_user(dp_supervisor)
    assert _visible(actor_for_user(darien_cw), referral)
    assert _visible(actor_for_user(darien_supervisor), referral)
    assert _visible(national_cw, referral) and _visible(national_sup, referral)
    assert _visible(service_actor(dp), referral)  # API clients act for the whole institution
    assert not _visible(actor_for_user(chiriqui_cw), referral)
    # At national intake: national staff only.
    national = _send(iom_actor, _draft(iom_actor, dp))
    assert _visible(national_cw, national) and _visible(service_actor(dp), national)
    assert not _visible(actor_for_user(darien_cw), national)
    assert not _visible(actor_for_user(darien_supervisor), national)


def test_another_office_gets_404_and_the_denial_is_recorded(
    iom, dp, iom_actor, darien, chiriqui, chiriqui_cw
):
    from referrals import reads

    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    with pytest.raises(NotVisible):
        reads.referral_read(actor=actor_for_user(chiriqui_cw), referral_id=referral.pk)
    [denied] = _events("access.denied")
    assert denied.object_id == str(referral.pk) and denied.actor_id == str(chiriqui_cw.pk)
    with pytest.raises(NotVisible):
        services.referral_route(
            actor=actor_for_user(chiriqui_cw), referral_id=referral.pk, to_office="CHIRIQUI"
        )


def test_route_moves_grants_notifies_and_is_audited(
    iom, dp, iom_actor, darien, chiriqui, darien_cw, chiriqui_cw, dp_supervisor
):
    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    services.referral_take(actor=actor_for_user(darien_cw), referral_id=referral.pk)
    version = referral.version + 1
    routed = services.referral_route(
        actor=actor_for_user(dp_supervisor),
        referral_id=referral.pk,
        to_office="CHIRIQUI",
        if_match=f'"{version}"',
    )
    assert routed.to_office == chiriqui and routed.status == "requested"
    assert routed.assignee_id is None  # the Darién caseworker no longer works on it
    assert _visible(actor_for_user(chiriqui_cw), routed)
    assert not _visible(actor_for_user(darien_cw), routed)
    [event] = _events("referral.routed")
    assert event.detail == {"from": "DARIEN", "to": "CHIRIQUI", "unassigned": True}
    assert ReferralEvent.objects.filter(referral=routed, action="route").count() == 1
    [note] = Notification.objects.filter(event_type="referral.routed")
    assert note.user == chiriqui_cw and note.data["office"] == "CHIRIQUI"
    from notifications.models import OutboxMessage

    assert OutboxMessage.objects.filter(referral_id=referral.pk).exists()  # the send's
    assert not OutboxMessage.objects.filter(event_type__contains="rout").exists()  # not a webhook event
    # Back to the national intake: the office loses it too.
    services.referral_route(actor=actor_for_user(dp_supervisor), referral_id=referral.pk, to_office=None)
    assert not _visible(actor_for_user(chiriqui_cw), routed)
    assert _visible(actor_for_user(dp_supervisor), routed)


def test_route_is_the_receivers_and_checks_the_office(iom, dp, iom_actor, darien, chiriqui, darien_cw):
    from referrals.errors import WrongSide

    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    with pytest.raises(WrongSide):
        services.referral_route(actor=iom_actor, referral_id=referral.pk, to_office="CHIRIQUI")
    with pytest.raises(InvalidInput):
        services.referral_route(actor=actor_for_user(darien_cw), referral_id=referral.pk, to_office="NOPE")
    office_pause(office=chiriqui)
    with pytest.raises(OfficeNotAccepting):
        services.referral_route(
            actor=actor_for_user(darien_cw), referral_id=referral.pk, to_office="CHIRIQUI"
        )
    # The current office's caseworker routes it (to national intake), and sees it no more.
    services.referral_route(actor=actor_for_user(darien_cw), referral_id=referral.pk, to_office=None)
    assert not _visible(actor_for_user(darien_cw), referral)
    services.referral_transition(actor=iom_actor, referral_id=referral.pk, action="cancel", reason="Se fue")
    office_resume(office=chiriqui)
    with pytest.raises(NotVisible):  # after cancellation, still visible to national staff only (metadata)
        services.referral_route(
            actor=actor_for_user(darien_cw), referral_id=referral.pk, to_office="CHIRIQUI"
        )


def test_route_refuses_a_terminal_referral(iom, dp, iom_actor, darien, dp_supervisor):
    from referrals.errors import InvalidTransition

    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    services.referral_transition(actor=iom_actor, referral_id=referral.pk, action="cancel", reason="Se fue")
    with pytest.raises(InvalidTransition):
        services.referral_route(actor=actor_for_user(dp_supervisor), referral_id=referral.pk, to_office=None)


def test_assignment_stays_inside_the_office(
    iom, dp, iom_actor, darien, chiriqui, chiriqui_cw, darien_cw, dp_supervisor
):
    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    sup = actor_for_user(dp_supervisor)
    assert not policy.may_be_assigned(chiriqui_cw, sup, referral)
    assert policy.may_be_assigned(darien_cw, sup, referral)
    assert set(policy.assignable_users(sup, referral)) == {darien_cw}
    with pytest.raises(InvalidInput):
        services.referral_assign(actor=sup, referral_id=referral.pk, assignee=chiriqui_cw)
    services.referral_assign(actor=sup, referral_id=referral.pk, assignee=darien_cw)


def test_office_staff_cases_are_seen_by_their_office_supervisors(
    dp, iom, darien, darien_cw, darien_supervisor, chiriqui, make_user
):
    from tests.factories import subject_data

    case = services.case_create(actor=actor_for_user(darien_cw), subject=subject_data(), summary="")
    assert selectors.cases_visible_to(actor_for_user(darien_supervisor)).filter(pk=case.pk).exists()
    other_sup = make_user(dp, Role.SUPERVISOR, username="dp.chiriqui.sup", office=chiriqui)
    assert not selectors.cases_visible_to(actor_for_user(other_sup)).filter(pk=case.pk).exists()


def test_installations_without_offices_grant_as_before(iom, dp, iom_actor, dp_caseworker):
    """No office anywhere: sending grants the institution's national groups, as before issue 20."""
    from referrals.models import ReferralGroupObjectPermission

    referral = _send(iom_actor, _draft(iom_actor, dp, province="PA-5"))
    assert referral.to_office_id is None
    groups = set(
        ReferralGroupObjectPermission.objects.filter(content_object=referral).values_list(
            "group__name", flat=True
        )
    )
    assert groups == {"DP:intake", "DP:supervisors", "DP:service"}
    assert _visible(actor_for_user(dp_caseworker), referral)


def test_only_staff_who_may_know_are_told_of_a_new_referral(
    iom, dp, iom_actor, darien, chiriqui, darien_cw, chiriqui_cw, dp_caseworker
):
    from notifications.models import OutboxMessage
    from notifications.relay import recipients

    referral = _send(iom_actor, _draft(iom_actor, dp, to_office=darien))
    outbox = OutboxMessage.objects.get(referral_id=referral.pk, event_type="referral.requested")
    assert set(recipients(outbox)) == {darien_cw, dp_caseworker}
    national = _send(iom_actor, _draft(iom_actor, dp))
    outbox = OutboxMessage.objects.get(referral_id=national.pk, event_type="referral.requested")
    assert set(recipients(outbox)) == {dp_caseworker}
