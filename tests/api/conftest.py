"""Fixtures of the partner-API suites: the two parties of the agreement acting as API clients and as staff."""

from __future__ import annotations

import pytest

from .helpers import build_referral


@pytest.fixture
def referral_in(iom, dp, iom_actor, dp_actor, iom_supervisor_actor):
    """``referral_in(status, **kw)``: an IOM → DP referral built through the services."""

    def make(status="draft", **kwargs):
        kwargs.setdefault("supervisor", iom_supervisor_actor)
        return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status=status, **kwargs)

    return make
