"""The statistics page's period picker: the same parameters as the API (``from``, ``to``, ``by``), with the
two dimensions as two selects (``by`` then ``then``), validated by the one parser of §6.4."""

from __future__ import annotations

import datetime

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from .presentation import DIMENSION_LABELS
from .statistics import DIMENSIONS, StatisticsQuery, StatisticsQueryError, parse_query

MESSAGES = {
    "from": _("Enter the first day of the period."),
    "to": _("Enter a last day after the first, at most 5 years later."),
    "by": _("Choose a dimension, and a different one to cross it with."),
}


def default_period(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The last twelve months: from the first day of the month eleven months back to today (a newcomer
    sees the figures there are, not an empty last month)."""
    months = today.year * 12 + today.month - 1 - 11
    return datetime.date(months // 12, months % 12 + 1, 1), today


class StatisticsForm(forms.Form):
    """``from``/``to`` (dates) and one or two dimensions; ``query`` once valid."""

    def __init__(self, data, *, today: datetime.date):
        start, end = default_period(today)
        if not data:
            data = {"from": start.isoformat(), "to": end.isoformat(), "by": "service"}
        super().__init__(data)
        choices = [(d, DIMENSION_LABELS[d]) for d in DIMENSIONS]
        self.fields["from"] = forms.DateField(
            label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        )
        self.fields["to"] = forms.DateField(
            label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        )
        self.fields["by"] = forms.ChoiceField(label=_("Figures by"), choices=choices)
        self.fields["then"] = forms.ChoiceField(
            label=_("and by (optional)"), choices=[("", "—"), *choices], required=False
        )
        self.query: StatisticsQuery | None = None

    def clean(self):
        data = self.cleaned_data
        raw = {name: [str(self.data.get(name, ""))] for name in ("from", "to")}
        raw["by"] = [",".join(v for v in (self.data.get("by", ""), self.data.get("then", "")) if v)]
        try:
            self.query = parse_query(raw)
        except StatisticsQueryError as exc:
            for name in exc.errors:
                if name in MESSAGES and not self.errors.get(name):
                    self.add_error(name, MESSAGES[name])
        return data

    def params(self) -> str:
        """The query string of this period and these dimensions (for the export links)."""
        query = QueryDict(mutable=True)
        query["from"] = self.query.date_from.isoformat()
        query["to"] = self.query.date_to.isoformat()
        query["by"] = self.query.by[0]
        if len(self.query.by) > 1:
            query["then"] = self.query.by[1]
        return query.urlencode()
