"""Bearer-token authentication for API clients (contract §3: unknown/expired/revoked → 401)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from audit.recorder import record_refused_token

from .models import ApiClient, hash_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            self._refuse(request, "malformed")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            self._refuse(request, "malformed")
        client = ApiClient.objects.select_related("institution").filter(token_hash=hash_token(token)).first()
        if client is None:
            self._refuse(request, "unknown")
        if client.revoked_at is not None:
            self._refuse(request, "revoked", client)
        if client.expires_at is not None and client.expires_at <= timezone.now():
            self._refuse(request, "expired", client)
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > timedelta(minutes=1):
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return (client, client)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    def _refuse(self, request, reason: str, client: ApiClient | None = None):
        record_refused_token(request=request, reason=reason, client=client)
        raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
