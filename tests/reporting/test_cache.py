"""The figures are cached; any new or changed referral (or edited subject) in the period gives new ones."""

from __future__ import annotations

import datetime

import pytest

from referrals import services
from referrals.models import Case, Referral
from reporting.reads import _cache_key, cached_statistics
from reporting.statistics import StatisticsQuery

from .conftest import MARCH, published, sent_at

QUERY = StatisticsQuery(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31), ("status",))
SEX = StatisticsQuery(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31), ("sex",))


@pytest.fixture(autouse=True)
def _min_cell_1(settings):
    settings.STATISTICS_MIN_CELL = 1  # counts of 1 published as 1: the changes below are visible


def statuses(institution) -> tuple[dict, bool]:
    result = cached_statistics(institution, QUERY)
    return {row["key"]["status"]: row["count"] for row in result.body["rows"]}, result.cached


def test_the_second_read_is_cached_and_equal(dataset, iom):
    first = cached_statistics(iom, QUERY)
    second = cached_statistics(iom, QUERY)
    assert not first.cached and second.cached
    assert first.body == second.body


def test_a_transition_invalidates(dataset, iom, dp_actor):
    accepted, (boy, other_boy), inbound = dataset["accepted"], dataset["minors"], dataset["inbound"]
    before, _ = statuses(iom)
    assert before == published({"accepted": accepted, "requested": [boy, other_boy, *inbound]}, 1)
    services.referral_transition(actor=dp_actor, referral_id=boy.pk, action="accept")
    after, cached = statuses(iom)
    assert not cached
    assert after == published({"accepted": [*accepted, boy], "requested": [other_boy, *inbound]}, 1)


def test_a_new_referral_in_the_period_invalidates(dataset, iom, iom_actor, dp_actor, dp, refer):
    statuses(iom)
    referral = refer(iom_actor, dp_actor, dp, subject={})
    sent_at(referral, MARCH)
    after, cached = statuses(iom)
    requested = [*dataset["minors"], *dataset["inbound"], referral]
    assert not cached and after == published({"accepted": dataset["accepted"], "requested": requested}, 1)


def test_a_bulk_update_that_skips_signals_invalidates(dataset, iom):
    """Services use ``QuerySet.update()`` (consent withdrawal, erasure): the key follows the data."""
    statuses(iom)
    Referral.objects.filter(pk=dataset["minors"][1].pk).update(
        status="cancelled", updated_at=datetime.datetime.now(datetime.UTC)
    )
    after, cached = statuses(iom)
    expected = {
        "accepted": dataset["accepted"],
        "cancelled": [dataset["minors"][1]],
        "requested": [dataset["minors"][0], *dataset["inbound"]],
    }
    assert not cached and after == published(expected, 1)


def test_an_edited_subject_invalidates(dataset, iom, iom_supervisor):
    from accounts.actor import actor_for_user

    def sexes():
        result = cached_statistics(iom, SEX)
        return {row["key"]["sex"]: row["count"] for row in result.body["rows"]}, result.cached

    women, (boy, other_boy) = dataset["accepted"] + dataset["inbound"], dataset["minors"]
    assert sexes() == (published({"female": women, "male": [boy, other_boy]}, 1), False)
    assert sexes()[1] is True
    case = Case.objects.get(pk=boy.case_id)
    services.case_update(actor=actor_for_user(iom_supervisor), case=case, subject={"sex": "other"})
    assert sexes() == (published({"female": women, "male": [other_boy], "other": [boy]}, 1), False)


def test_a_change_outside_the_period_recomputes_the_same_figures(dataset, iom, dp_actor):
    """The fingerprint covers all of the institution's referrals (cheap indexed aggregates, not a scan of
    the period): a change outside the period costs one recomputation and changes nothing."""
    before, _ = statuses(iom)
    april = dataset["not_counted"][2]
    services.referral_transition(actor=dp_actor, referral_id=april.pk, action="accept")
    assert statuses(iom) == (before, False)
    assert statuses(iom) == (before, True)


def test_another_institution_s_referrals_keep_the_cache(dataset, iom, third, dp, make_user, refer):
    from accounts.actor import actor_for_user

    third_actor = actor_for_user(make_user(third, username="third.cw"))
    draft = refer(third_actor, None, dp, subject={}, path=())
    statuses(iom)
    services.referral_transition(actor=third_actor, referral_id=draft.pk, action="send")
    assert statuses(iom)[1] is True


def test_the_cache_key_holds_no_personal_data(dataset, iom):
    key = _cache_key(iom, SEX, 5, "9|1.0|2.0")
    assert key.startswith("reporting:referrals:") and len(key) == len("reporting:referrals:") + 64
    assert all(c in "0123456789abcdef" for c in key.removeprefix("reporting:referrals:"))
