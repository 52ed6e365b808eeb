"""The pure computation of §6.4 and §7.5: query validation, age bands, counting and the perturbation."""

from __future__ import annotations

import datetime

import pytest

from reporting.perturbation import KEY_RANGE, published_count
from reporting.statistics import (
    ReferralFacts,
    StatisticsQueryError,
    add_years,
    age_band,
    parse_query,
    tabulate,
)


def fact(**overrides) -> ReferralFacts:
    values = {
        "month": "2026-03",
        "from_institution": "IOM",
        "to_institution": "DP",
        "services": ("legal_assistance",),
        "urgency": "normal",
        "status": "requested",
        "sex": "female",
        "age_band": "30-59",
        "nationality": "VEN",
        "is_minor": False,
        "hours_to_answer": None,
    }
    values.update(overrides)
    return ReferralFacts(**values)


def facts(n: int, **overrides) -> list[ReferralFacts]:
    return [fact(**overrides) for _ in range(n)]


def rows_by(table: dict, dimension: str) -> dict:
    return {row["key"][dimension]: row for row in table["rows"]}


# --- query validation ---------------------------------------------------------------------------------


def q(**params) -> dict:
    return {name: value if isinstance(value, list) else [value] for name, value in params.items()}


def test_a_valid_query():
    query = parse_query(q(**{"from": "2026-01-01", "to": "2026-12-31", "by": "month,service"}))
    assert query.date_from == datetime.date(2026, 1, 1)
    assert query.date_to == datetime.date(2026, 12, 31)
    assert query.by == ("month", "service")
    assert query.as_detail() == {"from": "2026-01-01", "to": "2026-12-31", "by": ["month", "service"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-30", "to": "2026-03-01", "by": "month"}, "from"),
        ({"from": "2026-1-1", "to": "2026-03-01", "by": "month"}, "from"),
        ({"from": "20260101", "to": "2026-03-01", "by": "month"}, "from"),
        ({"from": "2026-01-01", "to": "2026-01-01T00:00:00Z", "by": "month"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01", "by": "month"}, "to"),
        ({"from": "2020-01-01", "to": "2025-01-02", "by": "month"}, "to"),
        ({"from": "2026-01-01", "to": "2026-03-01", "by": "weekday"}, "by"),
        ({"from": "2026-01-01", "to": "2026-03-01", "by": "month,month"}, "by"),
        ({"from": "2026-01-01", "to": "2026-03-01", "by": "month,sex,service"}, "by"),
        ({"from": "2026-01-01", "to": "2026-03-01", "by": ""}, "by"),
        ({"from": "2026-01-01", "to": "2026-03-01"}, "by"),
        ({"to": "2026-03-01", "by": "month"}, "from"),
        ({"from": "2026-01-01", "to": "2026-03-01", "by": "month", "page": "2"}, "page"),
        ({"from": ["2026-01-01", "2026-01-02"], "to": "2026-03-01", "by": "month"}, "from"),
    ],
)
def test_bad_queries_are_refused(params, field):
    with pytest.raises(StatisticsQueryError) as caught:
        parse_query(q(**params))
    assert field in caught.value.errors


def test_five_years_is_the_longest_period():
    assert parse_query(q(**{"from": "2020-01-01", "to": "2025-01-01", "by": "month"})).by == ("month",)
    assert add_years(datetime.date(2024, 2, 29), 5) == datetime.date(2029, 2, 28)
    assert add_years(datetime.date(9998, 1, 1), 5) == datetime.date.max


@pytest.mark.parametrize(
    ("born", "band"),
    [
        (datetime.date(2026, 3, 1), "0-11"),
        (datetime.date(2014, 3, 11), "0-11"),  # 11 the day before the 12th birthday
        (datetime.date(2014, 3, 10), "12-17"),
        (datetime.date(2008, 3, 11), "12-17"),
        (datetime.date(2008, 3, 10), "18-29"),
        (datetime.date(1996, 3, 10), "30-59"),
        (datetime.date(1966, 3, 11), "30-59"),
        (datetime.date(1966, 3, 10), "60+"),
        (None, "unknown"),
        (datetime.date(2027, 1, 1), "unknown"),
    ],
)
def test_age_bands(born, band):
    assert age_band(born, datetime.date(2026, 3, 10)) == band


# --- counting and perturbation (contract §7.5) -------------------------------------------------------------


def keyed(n: int, key_total: int, **overrides) -> list[ReferralFacts]:
    """``n`` facts whose record keys add up to ``key_total`` (the first carries it, the others 0)."""
    return [fact(record_key=key_total if i == 0 else 0, **overrides) for i in range(n)]


#: Cell keys whose adjustment is 0, −2 and +2 in the rows from min_cell + 2 on (BASE: ½ exact, 1/20 at ±2).
EXACT, MINUS_TWO, PLUS_TWO = 2048, 0, KEY_RANGE - 1


def test_counts_are_the_true_count_plus_the_table_s_adjustment_in_key_order():
    table = tabulate(
        keyed(8, EXACT, sex="female") + keyed(9, MINUS_TWO, sex="male") + keyed(7, PLUS_TWO, sex="unknown"),
        ("sex",),
        5,
    )
    assert table["rows"] == [
        {"key": {"sex": "female"}, "count": 8, "suppressed": False, "median_hours_to_answer": None},
        {"key": {"sex": "male"}, "count": 7, "suppressed": False, "median_hours_to_answer": None},
        {"key": {"sex": "unknown"}, "count": 9, "suppressed": False, "median_hours_to_answer": None},
    ]
    # The total is a cell of its own: 24 true, cell key (2048 + 0 + 4095) mod 4096 = 2047 → exact.
    assert table["total"] == 24


def test_the_total_is_perturbed_as_its_own_cell():
    table = tabulate(keyed(10, 100, sex="female") + keyed(10, 4000 - 100, sex="male"), ("sex",), 5)
    assert table["total"] == published_count(20, 4000, 5)
    assert table["total"] == 20 + 2  # 4000 is in the +2 band


def test_no_published_count_between_1_and_min_cell_minus_1():
    for n in range(1, 5):
        for key in range(0, KEY_RANGE, 7):
            table = tabulate(keyed(n, key), ("nationality",), 5)
            assert [row["count"] for row in table["rows"]] in ([], [5])
            assert table["total"] in (0, 5)


def test_rows_published_as_zero_are_left_out_and_suppressed_is_always_false():
    table = tabulate(keyed(2, 17, sex="male") + keyed(12, 1234, sex="female"), ("sex",), 5)
    assert [row["key"]["sex"] for row in table["rows"]] == ["female"]  # 2 → 0 with min_cell 5
    assert [row["suppressed"] for row in table["rows"]] == [False]
    assert tabulate([], ("month",), 5) == {"total": 0, "rows": []}


def test_services_overlap_each_row_with_its_own_cell_key():
    data = keyed(6, 1500, services=("legal_assistance", "protection")) + [
        fact(services=("health", "legal_assistance"), record_key=3000) for _ in range(2)
    ]
    rows = rows_by(tabulate(data, ("service",), 5), "service")
    assert rows["legal_assistance"]["count"] == published_count(8, (1500 + 6000) % KEY_RANGE, 5)
    assert rows["protection"]["count"] == published_count(6, 1500, 5)
    assert "health" not in rows  # 2 → 0


def test_two_dimensions_have_one_cell_per_combination():
    data = (
        keyed(7, EXACT, month="2026-01", sex="female")
        + keyed(6, EXACT, month="2026-01", sex="male")
        + keyed(9, PLUS_TWO, month="2026-02", sex="male")
    )
    cells = {
        (r["key"]["month"], r["key"]["sex"]): r["count"] for r in tabulate(data, ("month", "sex"), 5)["rows"]
    }
    assert cells == {("2026-01", "female"): 7, ("2026-01", "male"): 6, ("2026-02", "male"): 11}


def test_the_same_referrals_give_the_same_count_whatever_the_grouping():
    data = [fact(record_key=k, sex="female") for k in (5, 900, 77, 3000, 12, 4000, 256)]
    by_sex = tabulate(data, ("sex",), 5)
    by_month = tabulate(data, ("month",), 5)
    assert by_sex["rows"][0]["count"] == by_month["rows"][0]["count"] == by_sex["total"] == by_month["total"]


def test_median_hours_are_whole_hours_for_rows_of_at_least_min_cell():
    data = (
        [fact(sex="female", hours_to_answer=h, record_key=0) for h in (1.0, 2.0, 3.4, 10.0, 20.0)]
        + [fact(sex="male", hours_to_answer=h, record_key=0) for h in (1.0, 2.0, 3.0, 4.0)]
        + keyed(3, 0, sex="male")
        + [fact(sex="other", hours_to_answer=h, record_key=0) for h in (1.0, 2.0, 3.0, 4.0)]
    )
    rows = rows_by(tabulate(data, ("sex",), 5), "sex")
    assert rows["female"]["median_hours_to_answer"] == 3  # 3.4 rounded to whole hours
    assert rows["male"]["median_hours_to_answer"] is None  # 7 referrals, 4 answers only
    assert rows["other"]["median_hours_to_answer"] is None  # true count 4 (published 5): no median


def test_is_minor_keys_are_booleans_or_unknown():
    data = (
        keyed(7, EXACT, is_minor=True) + keyed(6, EXACT, is_minor=False) + keyed(7, EXACT, is_minor="unknown")
    )
    assert [r["key"]["is_minor"] for r in tabulate(data, ("is_minor",), 5)["rows"]] == [
        False,
        True,
        "unknown",
    ]
