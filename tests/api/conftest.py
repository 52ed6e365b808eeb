"""Fixtures of the partner-API suites: the two parties of the agreement acting as API clients and as staff."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from .helpers import build_referral


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling and idempotency state must not leak from one test into another."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sender_api(iom, api_as):
    """IOM's partner system with every scope (including referrals:void)."""
    return api_as(iom)


@pytest.fixture
def receiver_api(dp, api_as):
    """The Defensoría's partner system with every scope."""
    return api_as(dp)


@pytest.fixture
def referral_in(iom, dp, iom_actor, dp_actor, iom_supervisor_actor):
    """``referral_in(status, **kw)``: an IOM → DP referral built through the services."""

    def make(status="draft", **kwargs):
        kwargs.setdefault("supervisor", iom_supervisor_actor)
        return build_referral(sender=iom_actor, receiver=dp_actor, to=dp, status=status, **kwargs)

    return make
