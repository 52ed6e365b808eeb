"""A period filter is also a sequence range (so a page in chain order reads only the period), and stays
exact when the writers' clocks differ by up to ``CLOCK_MARGIN``."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from audit import recorder
from audit.selectors import CLOCK_MARGIN, EventFilters, events_filtered

UTC = datetime.UTC
T0 = datetime.datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def skewed(iom, iom_actor, monkeypatch):
    """Events written in this order by writers whose clocks differ by up to 4 minutes: the 3rd (T0−3min)
    came after the 2nd (T0+1min), the 5th (T0+1min) after the 4th (T0+3min)."""
    minutes = [-60, 1, -3, 3, 1, 120, 121]
    events = []
    for offset in minutes:
        moment = T0 + datetime.timedelta(minutes=offset)
        monkeypatch.setattr(recorder, "timezone", SimpleNamespace(now=lambda moment=moment: moment))
        events.append(recorder.record(actor=iom_actor, action="case.viewed"))
    return events


def _sequences(actor, **period) -> list[int]:
    queryset = events_filtered(actor, EventFilters(**period)).order_by("sequence")
    return list(queryset.values_list("sequence", flat=True))


def test_since_and_until_are_exact_with_skewed_clocks(skewed, iom_actor):
    assert datetime.timedelta(minutes=4) < CLOCK_MARGIN  # the fixture's clocks differ by up to 4 minutes
    by_time = {e.sequence: e.at for e in skewed}
    for since, until in [
        (T0, None),
        (T0 + datetime.timedelta(minutes=2), None),
        (None, T0 + datetime.timedelta(minutes=2)),
        (T0 - datetime.timedelta(minutes=1), T0 + datetime.timedelta(minutes=2)),
        (T0 + datetime.timedelta(hours=3), None),
        (None, T0 - datetime.timedelta(hours=3)),
    ]:
        expected = sorted(
            s for s, at in by_time.items() if (since is None or at >= since) and (until is None or at < until)
        )
        assert _sequences(iom_actor, since=since, until=until) == expected, (since, until)
