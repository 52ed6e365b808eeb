"""Cursor pagination everywhere, page_size defaults and clamping, updated_since and ordering."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from referrals.models import Referral

from .conftest import API, assert_problem


def _pages(client, url):
    items = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"results", "next", "previous"}
        items += body["results"]
        url = body["next"]
    return items


def test_default_page_size_is_50_and_clamped_to_100(iom, iom_api, iom_actor, make_case):
    for _ in range(105):
        make_case(iom_actor)
    assert len(iom_api.get(f"{API}/cases/").json()["results"]) == 50
    assert len(iom_api.get(f"{API}/cases/?page_size=1000").json()["results"]) == 100
    assert len(iom_api.get(f"{API}/cases/?page_size=7").json()["results"]) == 7
    for bad in ("-3", "abc", "0", "1.5"):  # contract §7.5: a bad value is a 400 naming the parameter
        refused = iom_api.get(f"{API}/cases/?page_size={bad}")
        assert refused.status_code == 400 and set(refused.json()["errors"]) == {"page_size"}
    everything = _pages(iom_api, f"{API}/cases/?page_size=40")
    assert len(everything) == len({c["id"] for c in everything}) == 105


def test_bad_cursors_are_400_problems(iom_api, sent_referral):
    sent_referral()
    for cursor in ("garbage", "%%%", "eD0x", "x" * 600):
        for path in ("/referrals/", "/cases/", "/institutions/"):
            assert_problem(iom_api.get(f"{API}{path}?cursor={cursor}"), 400, "validation-error")
    # well-formed cursors whose position is not a date ("p=2026", "p=not-a-date", "o=-1")
    for cursor in ("cD0yMDI2", "cD1ub3QtYS1kYXRl", "bz0tMQ=="):
        for path in ("/referrals/", "/cases/", f"/referrals/{sent_referral().pk}/events/"):
            assert_problem(iom_api.get(f"{API}{path}?cursor={cursor}"), 400, "validation-error")


def test_referral_lists_page_through_every_item_once_in_each_ordering(iom_api, dp_api, sent_referral):
    ids = {str(sent_referral().pk) for _ in range(7)}
    for ordering in ("created_at", "-created_at", "updated_at", "-updated_at"):
        items = _pages(dp_api, f"{API}/referrals/?direction=inbound&page_size=3&ordering={ordering}")
        assert [i["id"] for i in items if i["id"] in ids] and {i["id"] for i in items} == ids
        key = ordering.lstrip("-")
        values = [i[key] for i in items]
        assert values == sorted(values, reverse=ordering.startswith("-"))
    assert_problem(dp_api.get(f"{API}/referrals/?ordering=reason"), 400, "validation-error")


def test_updated_since_is_inclusive_for_polling(iom_api, dp_api, sent_referral):
    old, new = sent_referral(), sent_referral()
    moment = timezone.now().replace(microsecond=0) + timedelta(minutes=5)
    Referral.objects.filter(pk=old.pk).update(updated_at=moment - timedelta(seconds=1))
    Referral.objects.filter(pk=new.pk).update(updated_at=moment)
    stamp = moment.isoformat().replace("+00:00", "Z")
    got = [i["id"] for i in _pages(dp_api, f"{API}/referrals/?updated_since={stamp}")]
    assert got == [str(new.pk)]
    offset = moment.astimezone(timezone.get_fixed_timezone(-300)).isoformat()  # '+' sent unescaped → ' '
    assert [i["id"] for i in dp_api.get(f"{API}/referrals/?updated_since={offset}").json()["results"]] == got
    for bad in ("yesterday", "2026-01-01", "2026-01-01T00:00:00", "9" * 50):
        assert_problem(dp_api.get(f"{API}/referrals/?updated_since={bad}"), 400, "validation-error")


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_queries_per_page_do_not_grow_with_the_page_size(dp_api, sent_referral):
    for _ in range(12):
        sent_referral()
    dp_api.get(f"{API}/institutions/")  # the token's first use records last_used_at (once a minute)
    small = _queries(dp_api, f"{API}/referrals/?direction=inbound&page_size=2")
    large = _queries(dp_api, f"{API}/referrals/?direction=inbound&page_size=12")
    assert small == large


def test_extreme_time_offsets_are_never_a_database_error(iom_api, sent_referral):
    """Python accepts offsets up to ±23:59 and year 1; PostgreSQL does not: times are compared in UTC."""
    sent_referral()
    for stamp in (
        "0295-07-09T07:42:48.0%2B21:00",
        "0001-01-01T00:00:00%2B23:59",
        "9999-12-31T23:59:59-23:59",
    ):
        response = iom_api.get(
            f"{API}/referrals/?direction=outbound&ordering=-updated_at&updated_since={stamp}"
        )
        assert response.status_code in (200, 400), (stamp, response.status_code)
    import base64

    for position in ("0295-07-09 07:42:48+21:00", "0001-01-01 00:00:00+23:59"):
        cursor = base64.b64encode(f"p={position}".encode()).decode()
        response = iom_api.get(f"{API}/referrals/", {"cursor": cursor})
        assert response.status_code in (200, 400), (position, response.status_code)
