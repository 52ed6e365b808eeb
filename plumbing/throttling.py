"""Rate limits per API client and per user (issue 6), counted in the Django cache (Redis when configured).

Cache keys carry only the principal's id (``throttle:api_client:<uuid>``), never anything personal.
Rates come from ``THROTTLE_API_CLIENT`` / ``THROTTLE_USER`` (``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']``),
read at request time so that a settings override applies at once.
"""

from __future__ import annotations

import logging

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
