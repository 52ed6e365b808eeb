"""Issue 19, item 8: the working day's counts and lists are read in the core, scoped to the reader, and
"overdue" is one rule whichever page, list or reminder asks."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.actor import actor_for_user
from accounts.choices import Role
from referrals import worklists
from referrals.choices import overdue
from referrals.models import Referral
from referrals.selectors import overdue_unanswered
from tests.web.conftest import logged_in_client


@pytest.fixture
def two_caseworkers(iom, make_user):
    ana = make_user(iom, Role.CASEWORKER, username="ana.iom")
    beto = make_user(iom, Role.CASEWORKER, username="beto.iom")
    return actor_for_user(ana), actor_for_user(beto)


def _due(referral, hours: float) -> None:
    Referral.objects.filter(pk=referral.pk).update(
        response_due_at=timezone.now() + datetime.timedelta(hours=hours)
    )


def test_a_caseworker_counts_only_the_cases_and_referrals_it_may_see(
    two_caseworkers, dp, make_referral, iom_supervisor_actor
):
    ana, beto = two_caseworkers
    late = make_referral(ana, dp, path=[(ana, "send")])
    _due(late, -5)
    make_referral(beto, dp, path=[(beto, "send")])

    stats = worklists.response_times(beto, direction="outbound")
    assert stats.total == 1
    assert stats.overdue == 0 and stats.overdue_referrals == []  # ana's late referral is not beto's to see
    rows, _queue = worklists.team_workload(beto)
    counts = {row.user.username: (row.cases_open, row.outbound_open) for row in rows}
    assert counts == {"ana.iom": (0, 0), "beto.iom": (1, 1)}

    # The supervisor sees every case of the institution: the whole team.
    stats = worklists.response_times(iom_supervisor_actor, direction="outbound")
    assert stats.total == 2 and [r.pk for r in stats.overdue_referrals] == [late.pk]
    rows, _queue = worklists.team_workload(iom_supervisor_actor)
    counts = {row.user.username: (row.cases_open, row.outbound_open) for row in rows}
    assert counts == {"ana.iom": (1, 1), "beto.iom": (1, 1)}


def test_overdue_is_one_rule_for_the_lists_the_dashboards_and_the_reminders(
    iom_actor, dp_actor, dp, dp_caseworker, dp_supervisor, make_referral
):
    requested_late = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    received_late = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "receive")])
    accepted_late = make_referral(iom_actor, dp, path=[(iom_actor, "send"), (dp_actor, "accept")])
    on_time = make_referral(iom_actor, dp, path=[(iom_actor, "send")])
    for referral in (requested_late, received_late, accepted_late):
        _due(referral, -2)
    _due(on_time, 2)
    expected = {requested_late.pk, received_late.pk}

    assert set(Referral.objects.filter(overdue()).values_list("pk", flat=True)) == expected
    assert {r.pk for r in overdue_unanswered(100)} == expected  # the SLA reminders' source
    supervisor = actor_for_user(dp_supervisor)
    assert {r.pk for r in worklists.response_times(supervisor).overdue_referrals} == expected
    assert set(worklists.filtered(supervisor, {"overdue": True}).values_list("pk", flat=True)) == expected
    page = logged_in_client(dp_caseworker).get("/referrals/?overdue=on").content.decode()
    assert {r.pk for r in (requested_late, received_late, accepted_late, on_time) if r.reference in page} == (
        expected
    )
    # The list puts the overdue first; the page's "time left" is negative exactly for them.
    first_two = list(worklists.filtered(supervisor, {}).values_list("pk", flat=True))[:2]
    assert set(first_two) == expected
    now = timezone.now()
    made = [requested_late.pk, received_late.pk, accepted_late.pk, on_time.pk]
    late_by_time_left = {
        r.pk
        for r in Referral.objects.filter(pk__in=made)
        if (left := worklists.time_left(r, now)) is not None and left < datetime.timedelta(0)
    }
    assert late_by_time_left == expected
