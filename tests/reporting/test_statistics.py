"""The pure computation of §6.4: query validation, age bands, counting and the protection of small counts."""

from __future__ import annotations

import datetime

import pytest

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


# --- counting and suppression --------------------------------------------------------------------------


def test_exact_counts_in_key_order():
    table = tabulate(facts(6, sex="female") + facts(7, sex="male") + facts(5, sex="unknown"), ("sex",), 5)
    assert table == {
        "total": 18,
        "rows": [
            {"key": {"sex": "female"}, "count": 6, "suppressed": False, "median_hours_to_answer": None},
            {"key": {"sex": "male"}, "count": 7, "suppressed": False, "median_hours_to_answer": None},
            {"key": {"sex": "unknown"}, "count": 5, "suppressed": False, "median_hours_to_answer": None},
        ],
    }


def test_exactly_five_is_published_and_exactly_four_is_not():
    table = tabulate(facts(5, sex="female") + facts(4, sex="male") + facts(3, sex="other"), ("sex",), 5)
    rows = rows_by(table, "sex")
    assert rows["female"] == {
        "key": {"sex": "female"},
        "count": 5,
        "suppressed": False,
        "median_hours_to_answer": None,
    }
    assert rows["male"] == {
        "key": {"sex": "male"},
        "count": None,
        "suppressed": True,
        "median_hours_to_answer": None,
    }
    assert rows["other"]["suppressed"] is True
    assert table["total"] == 12


def test_one_small_row_among_equals_takes_the_first_in_key_order():
    table = tabulate(facts(5, sex="female") + facts(4, sex="male") + facts(5, sex="other"), ("sex",), 5)
    assert [r["key"]["sex"] for r in table["rows"] if r["suppressed"]] == ["female", "male"]
    assert rows_by(table, "sex")["other"]["count"] == 5


def test_one_small_row_takes_the_next_smallest_with_it():
    table = tabulate(
        facts(9, urgency="normal") + facts(2, urgency="emergency") + facts(6, urgency="urgent"),
        ("urgency",),
        5,
    )
    rows = rows_by(table, "urgency")
    assert rows["emergency"]["suppressed"] and rows["emergency"]["count"] is None
    assert rows["urgent"]["suppressed"] and rows["urgent"]["count"] is None  # 6 < 9: the next smallest
    assert rows["normal"]["count"] == 9 and not rows["normal"]["suppressed"]
    assert table["total"] == 17


def test_ties_are_broken_by_key_order():
    table = tabulate(
        facts(1, status="accepted") + facts(8, status="received") + facts(8, status="completed"),
        ("status",),
        5,
    )
    assert [r["key"]["status"] for r in table["rows"]] == ["accepted", "completed", "received"]
    assert [r["suppressed"] for r in table["rows"]] == [True, True, False]


def test_two_small_rows_need_no_complement():
    table = tabulate(facts(3, sex="female") + facts(4, sex="male") + facts(6, sex="unknown"), ("sex",), 5)
    rows = rows_by(table, "sex")
    assert rows["female"]["suppressed"] and rows["male"]["suppressed"]
    assert rows["unknown"] == {
        "key": {"sex": "unknown"},
        "count": 6,
        "suppressed": False,
        "median_hours_to_answer": None,
    }


def test_zero_rows_and_a_small_total():
    assert tabulate([], ("month",), 5) == {"total": None, "rows": []}
    table = tabulate(facts(3, sex="female") + facts(1, sex="male"), ("sex",), 5)
    assert table["total"] is None
    assert table["rows"] and all(row["suppressed"] and row["count"] is None for row in table["rows"])


def test_a_single_small_row_alone_is_suppressed_and_the_total_withheld():
    table = tabulate(facts(4), ("nationality",), 5)
    assert table == {
        "total": None,
        "rows": [
            {"key": {"nationality": "VEN"}, "count": None, "suppressed": True, "median_hours_to_answer": None}
        ],
    }


def test_services_overlap_and_get_no_complement():
    data = facts(6, services=("legal_assistance", "protection")) + facts(
        2, services=("health", "legal_assistance")
    )
    table = tabulate(data, ("service",), 5)
    rows = rows_by(table, "service")
    assert rows["legal_assistance"]["count"] == 8
    assert rows["protection"]["count"] == 6
    assert rows["health"]["suppressed"]
    assert table["total"] == 8  # referrals, not service requests


def test_two_dimensions_suppress_per_cell_and_complement_within_each_first_value():
    data = (
        facts(7, month="2026-01", sex="female")
        + facts(6, month="2026-01", sex="male")
        + facts(2, month="2026-01", sex="unknown")
        + facts(5, month="2026-02", sex="female")
        + facts(9, month="2026-02", sex="male")
        + facts(3, month="2026-03", sex="female")
        + facts(1, month="2026-03", sex="male")
    )
    table = tabulate(data, ("month", "sex"), 5)
    cells = {(r["key"]["month"], r["key"]["sex"]): r for r in table["rows"]}
    assert list(cells) == [
        ("2026-01", "female"),
        ("2026-01", "male"),
        ("2026-01", "unknown"),
        ("2026-02", "female"),
        ("2026-02", "male"),
        ("2026-03", "female"),
        ("2026-03", "male"),
    ]
    assert [cells[k]["suppressed"] for k in cells] == [False, True, True, False, False, True, True]
    assert cells[("2026-01", "female")]["count"] == 7
    assert cells[("2026-02", "female")]["count"] == 5
    assert table["total"] == 33


def test_two_dimensions_with_service_second_get_no_complement():
    data = facts(7, month="2026-01", services=("health", "protection")) + facts(
        2, month="2026-01", services=("shelter",)
    )
    cells = {
        (r["key"]["month"], r["key"]["service"]): r for r in tabulate(data, ("month", "service"), 5)["rows"]
    }
    assert cells[("2026-01", "shelter")]["suppressed"]
    assert cells[("2026-01", "health")]["count"] == 7 and cells[("2026-01", "protection")]["count"] == 7


def test_median_hours_needs_min_cell_answers():
    data = (
        [fact(sex="female", hours_to_answer=h) for h in (1.0, 2.0, 3.0, 10.0, 20.0)]
        + [fact(sex="male", hours_to_answer=h) for h in (1.0, 2.0, 3.0, 4.0)]
        + facts(3, sex="male")
        + facts(6, sex="other", hours_to_answer=None)
    )
    rows = rows_by(tabulate(data, ("sex",), 5), "sex")
    assert rows["female"]["median_hours_to_answer"] == 3.0
    assert rows["male"]["count"] == 7 and rows["male"]["median_hours_to_answer"] is None  # 4 answers only
    assert rows["other"]["median_hours_to_answer"] is None


def test_is_minor_keys_are_booleans_or_unknown():
    data = facts(5, is_minor=True) + facts(6, is_minor=False) + facts(5, is_minor="unknown")
    assert [r["key"]["is_minor"] for r in tabulate(data, ("is_minor",), 5)["rows"]] == [
        False,
        True,
        "unknown",
    ]
