"""Throttling per API client and per user: 429 throttled problem+json with Retry-After; keys are ids only."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from .conftest import API, assert_problem


def _rates(api_client="3/min", user="2/min"):
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"api_client": api_client, "user": user}
    return override_settings(REST_FRAMEWORK=rest)


def test_api_client_over_its_rate_gets_429_with_retry_after(iom, api_as):
    client, other = api_as(iom), api_as(iom)
    with _rates(api_client="3/min"):
        for _ in range(3):
            assert client.get(f"{API}/institutions/").status_code == 200
        response = client.get(f"{API}/institutions/")
        body = assert_problem(response, 429, "throttled")
        assert 1 <= int(response["Retry-After"]) <= 61
        assert body["status"] == 429
        # another partner system of the same institution has its own budget
        assert other.get(f"{API}/institutions/").status_code == 200


def test_user_over_its_rate_gets_429(iom, make_user, user_api):
    alice, bob = user_api(make_user(iom)), user_api(make_user(iom))
    with _rates(user="2/min"):
        assert alice.get(f"{API}/cases/").status_code == 200
        assert alice.get(f"{API}/cases/").status_code == 200
        assert_problem(alice.get(f"{API}/cases/"), 429, "throttled")
        assert bob.get(f"{API}/cases/").status_code == 200


def test_writes_are_throttled_too_and_nothing_is_created(iom, dp, api_as):
    from referrals.models import Case

    from .conftest import case_body

    client = api_as(iom)
    with _rates(api_client="1/min"):
        assert client.post(f"{API}/cases/", case_body(), format="json").status_code == 201
        assert_problem(client.post(f"{API}/cases/", case_body(), format="json"), 429, "throttled")
    assert Case.objects.count() == 1


def test_the_default_rates_come_from_the_environment_settings():
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert set(rates) == {"api_client", "user"} and all("/" in r for r in rates.values())


def test_throttle_cache_keys_hold_only_ids(iom, api_as):
    from accounts.models import ApiClient

    client = api_as(iom)
    with _rates(api_client="5/min"):
        client.get(f"{API}/institutions/")
    api_client = ApiClient.objects.latest("created_at")
    assert cache.get(f"throttle:api_client:{api_client.pk}") is not None


@pytest.mark.redis
def test_counters_live_in_redis_when_configured(iom, api_as):
    """With REDIS_URL the cache is Redis (own key prefix, apart from Celery's keys)."""
    import redis
    from django.core.cache import caches

    from accounts.models import ApiClient

    assert "RedisCache" in settings.CACHES["default"]["BACKEND"]
    client = api_as(iom)
    with _rates(api_client="5/min"):
        client.get(f"{API}/institutions/")
    api_client = ApiClient.objects.latest("created_at")
    key = caches["default"].make_key(f"throttle:api_client:{api_client.pk}")
    assert key.startswith("rcm-cache:")
    assert redis.Redis.from_url(settings.REDIS_URL).exists(key) == 1
