"""Human references: the format, one counter per institution, kind and year (a new year starts again at 1),
and on SQLite (the counter advanced inside the create's own transaction) no number lost to a failed create.
PostgreSQL's own-transaction counter is tested under concurrency in test_concurrency.py."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection, transaction
from django.utils import timezone

from referrals import references, services
from referrals.models import ReferenceCounter
from tests.builders import referral_through_services
from tests.factories import subject_data

pytestmark = pytest.mark.django_db


def _number(reference: str) -> int:
    return int(reference.rsplit("-", 1)[1])


def test_the_reference_formats_are_unchanged(iom, dp, iom_actor):
    year = timezone.now().year
    case = services.case_create(actor=iom_actor, subject=subject_data())
    referral = referral_through_services(sender=iom_actor, to=dp, case=case)
    assert re.fullmatch(rf"IOM-{year}-\d{{6}}", case.reference), case.reference
    assert re.fullmatch(rf"IOM-R-{year}-\d{{6}}", referral.reference), referral.reference
    # Cases and referrals count apart; each count goes up by one with each create.
    second = referral_through_services(sender=iom_actor, to=dp, case=case)
    assert _number(second.reference) == _number(referral.reference) + 1
    assert _number(services.case_create(actor=iom_actor, subject=subject_data()).reference) == (
        _number(case.reference) + 1
    )
    counter = ReferenceCounter.objects.get(institution=iom, kind="ref", year=year)
    assert counter.value == _number(second.reference)


def test_a_new_year_starts_again_at_one(iom, dp, iom_actor, monkeypatch):
    last_second = datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    monkeypatch.setattr(timezone, "now", lambda: last_second)
    december = [referral_through_services(sender=iom_actor, to=dp).reference for _ in range(2)]
    monkeypatch.setattr(timezone, "now", lambda: last_second + datetime.timedelta(seconds=2))
    january = referral_through_services(sender=iom_actor, to=dp).reference
    assert [r.rsplit("-", 1)[0] for r in december] == ["IOM-R-2026", "IOM-R-2026"]
    assert _number(december[1]) == _number(december[0]) + 1
    assert january == "IOM-R-2027-000001"
    # The old year's counter is left as it was: a late 2026 number can never come back.
    assert ReferenceCounter.objects.get(institution=iom, kind="ref", year=2026).value == _number(december[1])


def test_institutions_count_apart(iom, dp, iom_actor, dp_actor):
    mine = [references.next_reference(iom, "ref") for _ in range(3)]
    theirs = references.next_reference(dp, "ref")
    assert [_number(r) for r in mine] == [_number(mine[0]) + i for i in range(3)]
    assert theirs.startswith("DP-R-") and _number(theirs) == 1


def test_a_failed_create_gives_its_number_back_on_sqlite_and_leaves_a_gap_on_postgresql(iom, dp, iom_actor):
    first = referral_through_services(sender=iom_actor, to=dp).reference
    with pytest.raises(RuntimeError), transaction.atomic():
        references.next_reference(iom, "ref")
        raise RuntimeError("the create fails after taking its number")
    following = referral_through_services(sender=iom_actor, to=dp).reference
    # SQLite: the counter rolled back with the create. PostgreSQL: the number was taken in a transaction of
    # its own and stays taken (docs/api.md: references are unique and increasing, with possible gaps).
    gap = 1 if references.uses_own_transaction() else 0
    assert references.uses_own_transaction() == (connection.vendor == "postgresql")
    assert _number(following) == _number(first) + 1 + gap
