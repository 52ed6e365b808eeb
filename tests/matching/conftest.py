"""Fixtures of the matching suites."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling state must not leak from one test into another."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def sender_api(iom, api_as):
    """IOM's partner system with every scope."""
    return api_as(iom)


@pytest.fixture
def receiver_api(dp, api_as):
    """The Defensoría's partner system with every scope."""
    return api_as(dp)
