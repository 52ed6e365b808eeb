"""Linking cases as the same person (services): visible cases of one institution, once per pair, audited;
only a supervisor undoes a link; the demo data comes indexed."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.actor import actor_for_user
from accounts.choices import Role
from audit.models import AuditEvent
from matching import services
from matching.models import CaseLink, MatchProfile
from plumbing.problems import ProblemError
from referrals.models import Case


@pytest.fixture
def supervisor_actor(iom, make_user):
    return actor_for_user(make_user(iom, Role.SUPERVISOR, username="links.sup"))


@pytest.fixture
def pair(iom_actor, make_case):
    return make_case(iom_actor), make_case(iom_actor)


def test_link_then_unlink_by_a_supervisor_both_audited(iom_actor, supervisor_actor, pair):
    first, second = pair
    link = services.case_link(actor=iom_actor, case=second, other=first)
    assert {link.case_a_id, link.case_b_id} == {first.pk, second.pk}
    assert [x.pk for x in services.links_of(iom_actor, first)] == [link.pk]
    assert [x.pk for x in services.links_of(iom_actor, second)] == [link.pk]
    linked = AuditEvent.objects.get(action="case.linked")
    assert set(linked.detail["cases"]) == {first.reference, second.reference}
    assert linked.actor_label == iom_actor.label

    with pytest.raises(ProblemError) as refused:
        services.case_unlink(actor=iom_actor, link_id=link.pk)
    assert refused.value.status_code == 403
    services.case_unlink(actor=supervisor_actor, link_id=link.pk)
    assert services.links_of(iom_actor, first) == []
    unlinked = AuditEvent.objects.get(action="case.unlinked")
    assert unlinked.detail["link"] == str(link.pk) and unlinked.actor_label == supervisor_actor.label
    # Linked again later: a new link (the undone one stays for the record).
    services.case_link(actor=iom_actor, case=first, other=second)
    assert CaseLink.objects.count() == 2 and CaseLink.objects.filter(unlinked_at__isnull=True).count() == 1


def test_cases_of_another_institution_or_not_visible_cannot_be_linked(iom_actor, dp_actor, make_case, pair):
    first, _second = pair
    foreign = make_case(dp_actor)
    with pytest.raises(ProblemError) as refused:
        services.case_link(actor=iom_actor, case=first, other=foreign)
    assert refused.value.status_code == 404
    with pytest.raises(ProblemError):
        services.case_link(actor=dp_actor, case=foreign, other=first)
    assert not CaseLink.objects.exists() and not AuditEvent.objects.filter(action="case.linked").exists()


def test_a_supervisor_of_another_institution_cannot_undo_a_link(iom_actor, dp, make_user, pair):
    link = services.case_link(actor=iom_actor, case=pair[0], other=pair[1])
    other_supervisor = actor_for_user(make_user(dp, Role.SUPERVISOR, username="dp.sup"))
    with pytest.raises(ProblemError) as refused:
        services.case_unlink(actor=other_supervisor, link_id=link.pk)
    assert refused.value.status_code == 404


def test_linking_needs_write_scope(iom, service_actor, make_case):
    writer = service_actor(iom)
    first, second = make_case(writer), make_case(writer)
    reader = service_actor(iom, scopes=["referrals:read"])
    with pytest.raises(ProblemError) as refused:
        services.case_link(actor=reader, case=first, other=second)
    assert refused.value.status_code == 403


def test_seed_demo_cases_are_indexed(db):
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    live = Case.objects.filter(erased_at__isnull=True).count()
    assert live and MatchProfile.objects.count() == live
