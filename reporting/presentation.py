"""The statistics as people read them: translated labels, a cross table for two dimensions, charts, and the
rows of the CSV and XLSX exports (the same published, perturbed figures as the API), each with the note
that says how they are protected (contract §7.5)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.choices import Province
from referrals.choices import Service, Sex, Status, Urgency
from web.charts import BarChart, horizontal_bars

from .statistics import UNKNOWN, key_text

DIMENSION_LABELS = {
    "month": gettext_lazy("Month"),
    "from_institution": gettext_lazy("Sending institution"),
    "to_institution": gettext_lazy("Receiving institution"),
    "service": gettext_lazy("Service"),
    "urgency": gettext_lazy("Urgency"),
    "status": gettext_lazy("Current status"),
    "sex": gettext_lazy("Sex"),
    "age_band": gettext_lazy("Age when referred"),
    "nationality": gettext_lazy("Nationality"),
    "is_minor": gettext_lazy("Minor"),
    "to_office": gettext_lazy("Receiving office"),
    "province": gettext_lazy("Province"),
}
#: What a combination without any referral shows in a cross table.
NONE_MARK = "–"


def dimension_label(dimension: str) -> str:
    return str(DIMENSION_LABELS.get(dimension, dimension))


def value_label(dimension: str, value) -> str:
    """A key value in the page's language (codes of institutions, offices and countries stay codes)."""
    if value == UNKNOWN:
        return _("Unknown")
    if dimension == "is_minor":
        return _("Yes") if value is True else _("No")
    if dimension == "month":
        try:
            year, month = (int(part) for part in str(value).split("-"))
            return formats.date_format(datetime.date(year, month, 1), "YEAR_MONTH_FORMAT")
        except ValueError:
            return str(value)
    choices = {
        "service": Service,
        "status": Status,
        "urgency": Urgency,
        "sex": Sex,
        "province": Province,
    }.get(dimension)
    if choices is not None and value in choices.values:
        return str(choices(value).label)
    if dimension == "age_band":
        return _("%(band)s years") % {"band": value}
    return str(value)


def number_text(value: int) -> str:
    return formats.number_format(value, force_grouping=True)


def count_text(row: dict | None) -> str:
    return NONE_MARK if row is None else number_text(row["count"])


def count_value(row: dict | None) -> int | str:
    """A cell for a spreadsheet: the count as a number, or the mark of an empty combination."""
    return NONE_MARK if row is None else row["count"]


def median_text(row: dict) -> str:
    value = row["median_hours_to_answer"]
    return "" if value is None else formats.number_format(value, force_grouping=True)


@dataclass
class CrossTable:
    """Two dimensions: the first down, the second across."""

    first: str
    second: str
    columns: list[tuple[str, str]]  # (key text, label)
    rows: list[dict] = field(default_factory=list)  # {"label", "cells": [text], "values": [number or mark]}


def cross_table(body: dict) -> CrossTable:
    first, second = body["by"]
    columns: dict[str, str] = {}
    lines: dict[str, dict] = {}
    for row in body["rows"]:
        down, across = row["key"][first], row["key"][second]
        columns.setdefault(key_text(across), value_label(second, across))
        line = lines.setdefault(key_text(down), {"label": value_label(first, down), "by_column": {}})
        line["by_column"][key_text(across)] = row
    ordered = sorted(columns)
    table = CrossTable(first=first, second=second, columns=[(key, columns[key]) for key in ordered])
    for key in sorted(lines):
        line = lines[key]
        cells = [line["by_column"].get(c) for c in ordered]
        table.rows.append(
            {
                "label": line["label"],
                "cells": [count_text(cell) for cell in cells],
                "values": [count_value(cell) for cell in cells],
            }
        )
    return table


def simple_rows(body: dict) -> list[dict]:
    dimension = body["by"][0]
    return [
        {
            "label": value_label(dimension, row["key"][dimension]),
            "count": count_text(row),
            "median": median_text(row),
        }
        for row in body["rows"]
    ]


def chart(body: dict) -> BarChart:
    """Bars of the first (or only) dimension of ``body``."""
    dimension = body["by"][0]
    items = [
        (value_label(dimension, row["key"][dimension]), row["count"], "bar-active") for row in body["rows"]
    ]
    return horizontal_bars(
        items, title=_("Referrals by %(dimension)s") % {"dimension": dimension_label(dimension)}
    )


def export_header(body: dict) -> list[str]:
    return [
        *(dimension_label(d) for d in body["by"]),
        _("Referrals"),
        _("Median hours to answer"),
    ]


def export_rows(body: dict) -> list[list]:
    """The flat table of the exports: one line per row, the total, then the protection's footnote."""
    lines = []
    for row in body["rows"]:
        lines.append(
            [
                *(value_label(d, row["key"][d]) for d in body["by"]),
                row["count"],
                "" if row["median_hours_to_answer"] is None else row["median_hours_to_answer"],
            ]
        )
    padding = [""] * (len(body["by"]) - 1)
    lines.append([_("Total"), *padding, body["total"], ""])
    lines.append([])
    lines.append([protection_note(body)])
    return lines


def period_text(body: dict) -> str:
    start = datetime.date.fromisoformat(body["from"])
    end = datetime.date.fromisoformat(body["to"])
    return _("%(start)s to %(end)s (UTC)") % {
        "start": formats.date_format(start, "SHORT_DATE_FORMAT"),
        "end": formats.date_format(end, "SHORT_DATE_FORMAT"),
    }


def protection_note(body: dict) -> str:
    """The footnote of the page and the exports: how the published counts are protected."""
    return _(
        "Protected counts: to prevent identifying people, every count, the total included, is adjusted by "
        "at most ±%(max)d in a fixed way (the same referrals always give the same figure), and no count "
        "from 1 to %(below)d is published — such counts show as 0 or as %(min)d or more. Rows, columns "
        "and the total may therefore not add up exactly. Medians, in whole hours, are given only for rows "
        "of at least %(min)d referrals with at least %(min)d answers."
    ) % {"max": body["max_adjustment"], "below": body["min_cell"] - 1, "min": body["min_cell"]}
