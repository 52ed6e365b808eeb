"""Statistics of referrals for the agreement's follow-up (contract §6.4, protected as §7.5) — the pure part.

Everything here works on plain values: the query (period, dimensions) is validated by ``parse_query``,
each referral is reduced to a ``ReferralFacts`` record (codes, bands and its record key only, already
projected for the caller's side by ``reporting.reads``), and ``tabulate`` counts them and protects the
counts with the cell-key method (``reporting.perturbation``):

* every row's count, and the total as a cell of its own, is published perturbed: the true count plus an
  adjustment in [−2, +2] fixed by the true count and the cell key (the sum of its referrals' record keys);
  no published count is between 1 and ``min_cell − 1``; rows published as 0 are omitted;
* ``suppressed`` stays in the shape and is always false;
* the median hours to answer is given, rounded to whole hours, only for rows whose true count and number
  of answers are both at least ``min_cell``.
"""

from __future__ import annotations

import datetime
import re
import statistics as stdlib_statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .perturbation import KEY_RANGE, published_count

#: The dimensions, in the contract's order.
DIMENSIONS = (
    "month",
    "from_institution",
    "to_institution",
    "service",
    "urgency",
    "status",
    "sex",
    "age_band",
    "nationality",
    "is_minor",
    "to_office",
    "province",
)
#: Dimensions drawn from the person: a receiver counts them as ``unknown`` without ``identity`` consent.
PERSONAL_DIMENSIONS = frozenset({"sex", "age_band", "nationality", "is_minor"})
UNKNOWN = "unknown"
AGE_BANDS = ("0-11", "12-17", "18-29", "30-59", "60+", UNKNOWN)
MAX_DIMENSIONS = 2
MAX_PERIOD_YEARS = 5
#: The query parameters of the statistics (anything else is refused).
PARAMETERS = ("from", "to", "by")

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class StatisticsQueryError(ValueError):
    """Invalid statistics parameters: ``errors`` maps each parameter to its messages (no input echoed
    beyond short codes)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid statistics query")
        self.errors = errors


@dataclass(frozen=True)
class StatisticsQuery:
    """A validated request: inclusive UTC dates and one or two distinct dimensions."""

    date_from: datetime.date
    date_to: datetime.date
    by: tuple[str, ...]

    def as_detail(self) -> dict:
        """The query for an audit event's detail (codes and dates only)."""
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "by": list(self.by)}


@dataclass(frozen=True, slots=True)
class ReferralFacts:
    """One counted referral, reduced to the codes the dimensions need (already projected for the
    caller: the personal ones are ``unknown`` where consent did not give them)."""

    month: str
    from_institution: str
    to_institution: str
    services: tuple[str, ...]
    urgency: str
    status: str
    sex: str
    age_band: str
    nationality: str
    is_minor: bool | str
    hours_to_answer: float | None
    record_key: int = 0
    #: ``DP/DARIEN``; at the receiver's national intake, its code alone (``DP``) — contract §7.2.
    to_office: str = UNKNOWN
    #: An ISO 3166-2:PA code, or ``unknown`` when the referral has none.
    province: str = UNKNOWN


def add_years(day: datetime.date, years: int) -> datetime.date:
    """The same day ``years`` later (29 February → 28 February), capped at the last representable date."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        if day.year + years > datetime.MAXYEAR:
            return datetime.date.max
        return day.replace(year=day.year + years, day=28)


def _parse_date(raw: str) -> datetime.date | None:
    if not _DATE.match(raw):
        return None
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        return None


def parse_query(params: Mapping[str, list[str]]) -> StatisticsQuery:
    """Validate ``from``, ``to`` and ``by`` (each given once); raise ``StatisticsQueryError`` otherwise.

    ``params`` maps each parameter name to the list of its values (``QueryDict.lists()``).
    """
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - set(PARAMETERS)):
        errors[name[:40]] = ["Unknown parameter."]
    values: dict[str, str] = {}
    for name in PARAMETERS:
        given = list(params.get(name) or [])
        if not given:
            errors[name] = ["This parameter is required."]
        elif len(given) > 1:
            errors[name] = ["Give this parameter once."]
        else:
            values[name] = given[0]
    dates: dict[str, datetime.date] = {}
    for name in ("from", "to"):
        if name in values:
            day = _parse_date(values[name])
            if day is None:
                errors[name] = ["A date YYYY-MM-DD."]
            else:
                dates[name] = day
    if "from" in dates and "to" in dates:
        if dates["from"] > dates["to"]:
            errors["to"] = ["The end of the period comes before its start."]
        elif dates["to"] > add_years(dates["from"], MAX_PERIOD_YEARS):
            errors["to"] = [f"The period is longer than {MAX_PERIOD_YEARS} years."]
    by: tuple[str, ...] = ()
    if "by" in values:
        by = tuple(part.strip() for part in values["by"].split(","))
        if len(by) > MAX_DIMENSIONS:
            errors["by"] = [f"At most {MAX_DIMENSIONS} dimensions."]
        elif any(part not in DIMENSIONS for part in by):
            errors["by"] = ["Unknown dimension; one or two of: " + ", ".join(DIMENSIONS) + "."]
        elif len(set(by)) != len(by):
            errors["by"] = ["A dimension is repeated."]
    if errors:
        raise StatisticsQueryError(errors)
    return StatisticsQuery(date_from=dates["from"], date_to=dates["to"], by=by)


def age_band(date_of_birth: datetime.date | None, on: datetime.date) -> str:
    """The age band of someone born on ``date_of_birth`` on the day ``on`` (``unknown`` without a date)."""
    if date_of_birth is None or date_of_birth > on:
        return UNKNOWN
    age = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    if age < 12:
        return "0-11"
    if age < 18:
        return "12-17"
    if age < 30:
        return "18-29"
    if age < 60:
        return "30-59"
    return "60+"


def _values(facts: ReferralFacts, dimension: str) -> tuple:
    """The key values a referral counts under (several for ``service``)."""
    if dimension == "service":
        return tuple(dict.fromkeys(facts.services)) or (UNKNOWN,)
    return (getattr(facts, dimension),)


def key_text(value) -> str:
    """A key value as text: the order of rows and the cells of exports (``true``/``false`` for booleans)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _order(key: tuple) -> tuple[str, ...]:
    return tuple(key_text(value) for value in key)


def _median_hours(hours: list[float], min_cell: int) -> int | None:
    if len(hours) < min_cell:
        return None
    return round(stdlib_statistics.median(hours))


def tabulate(facts: Iterable[ReferralFacts], by: tuple[str, ...], min_cell: int) -> dict:
    """``{"total", "rows"}`` as the contract publishes them (rows in key order, counts perturbed).

    One pass: each row's true count, the sum of its record keys (its cell key) and its answer times.
    """
    counts: Counter[tuple] = Counter()
    keys_sum: Counter[tuple] = Counter()
    hours: dict[tuple, list[float]] = defaultdict(list)
    total = total_key = 0
    for fact in facts:
        total += 1
        total_key += fact.record_key
        keys = [()]
        for dimension in by:
            keys = [key + (value,) for key in keys for value in _values(fact, dimension)]
        for key in keys:
            counts[key] += 1
            keys_sum[key] += fact.record_key
            if fact.hours_to_answer is not None:
                hours[key].append(fact.hours_to_answer)
    rows = []
    for key in sorted(counts, key=_order):
        true = counts[key]
        published = published_count(true, keys_sum[key] % KEY_RANGE, min_cell)
        if published == 0:
            continue
        rows.append(
            {
                "key": dict(zip(by, key, strict=True)),
                "count": published,
                "suppressed": False,
                "median_hours_to_answer": _median_hours(hours.get(key, []), min_cell)
                if true >= min_cell
                else None,
            }
        )
    return {"total": published_count(total, total_key % KEY_RANGE, min_cell), "rows": rows}
