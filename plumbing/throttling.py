"""Rate limits per API client and per user (issue 6), counted in the Django cache (Redis when configured).

Cache keys carry only the principal's id (``throttle:api_client:<uuid>``), never anything personal.
Rates come from ``THROTTLE_API_CLIENT`` / ``THROTTLE_USER`` (``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']``),
read at request time so that a settings override applies at once. :func:`hit` is a fixed-window counter in
the same cache for a door outside DRF (the federation door, ``federation.throttling``): one integer per key
and window, where DRF's throttles keep a list of every request's time (too heavy at thousands a minute).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiClient, User

logger = logging.getLogger(__name__)


class _PrincipalRateThrottle(SimpleRateThrottle):
    cache_format = "throttle:%(scope)s:%(ident)s"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        # The rate is read per request (DRF reads it once per throttle instance, which is per request too).
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache (Redis) is down: serve rather than fail every request
            logger.warning("throttle cache unavailable (%s); request allowed", self.scope)
            return True

    def ident_of(self, request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        ident = self.ident_of(request)
        if ident is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiClientRateThrottle(_PrincipalRateThrottle):
    """Requests of one partner system (API client), whatever its IP."""

    scope = "api_client"

    def ident_of(self, request):
        auth = getattr(request, "auth", None)
        return str(auth.pk) if isinstance(auth, ApiClient) else None


class UserRateThrottle(_PrincipalRateThrottle):
    """Requests of one staff user (session)."""

    scope = "user"

    def ident_of(self, request):
        if isinstance(getattr(request, "auth", None), ApiClient):
            return None
        user = getattr(request, "user", None)
        return str(user.pk) if isinstance(user, User) and user.is_authenticated else None


# --- A fixed-window counter for doors outside DRF (the federation door) ---------------------------------

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"30000/min"`` → ``(30000, 60)``: a count per second, minute, hour or day (DRF's notation: the
    period's first letter counts). ValueError otherwise."""
    count, _, period = (rate or "").partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None or int(count) < 1:
        raise ValueError("a rate is a count per period, e.g. 600/min")
    return int(count), seconds


@dataclass(frozen=True)
class Window:
    """One hit counted: ``count`` hits in the current window (this one included) of ``limit`` allowed;
    ``retry_after`` seconds until the window ends."""

    count: int
    limit: int
    retry_after: int
    #: How many hits this one counted (a batch of messages counts each).
    amount: int = 1

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def first_refused(self) -> bool:
        """The hit that went over the limit: the one a door records, once per window."""
        return self.count - self.amount <= self.limit < self.count


def hit(scope: str, ident: str, rate: str, *, now: float | None = None, amount: int = 1) -> Window | None:
    """Count one hit (or ``amount``) of ``ident`` (an id or a digest, never anything personal) under
    ``scope`` in a fixed window of the rate's period, in the Django cache (Redis with ``REDIS_URL``, shared
    by every process; the local memory cache otherwise). ``None`` when the cache cannot be reached: the
    request is served rather than refused. ``cache.add`` then ``cache.incr`` are atomic in both caches."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    start = int(now // period) * period
    key = f"throttle:{scope}:{ident}:{start}"
    try:
        count = _count(key, period + 1, amount)
    except Exception:  # noqa: BLE001 — the cache (Redis) is down: serve rather than fail every request
        logger.warning("throttle cache unavailable (%s); request allowed", scope)
        return None
    retry_after = max(1, int(start + period - now + 0.999))
    return Window(count=count, limit=limit, retry_after=retry_after, amount=amount)


@functools.cache
def _redis_client(url: str) -> redis.Redis:
    """redis-py's own client for the cache's server (its public API; thread-safe, pooled, per process)."""
    options = settings.CACHES["default"].get("OPTIONS", {})
    return redis.Redis.from_url(url, **{k: v for k, v in options.items() if k.startswith("socket_")})


def _count(key: str, timeout: int, amount: int = 1) -> int:
    """Add ``amount`` to the window's counter and return it. With Redis one round trip (INCR and EXPIRE in a
    pipeline, on redis-py's client for the cache's server and under the cache's own key: Django's ``add``
    then ``incr`` take three); otherwise ``add`` then ``incr``."""
    backend = caches["default"]
    location = settings.CACHES["default"].get("LOCATION")
    if isinstance(backend, RedisCache) and isinstance(location, str):
        full = backend.make_and_validate_key(key)
        pipe = _redis_client(location).pipeline(transaction=False)
        pipe.incr(full, amount)
        pipe.expire(full, timeout)
        count, _expiry = pipe.execute()
        return int(count)
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between the two calls
        cache.add(key, amount, timeout=timeout)
        return amount
