"""The web UI's gate: anonymous visitors go to the sign-in page, users whose role needs a second factor
finish the TOTP step before anything else, and every page speaks the user's own language."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

from referrals.crypto import CryptoError

logger = logging.getLogger(__name__)

#: Served without a web session: the partner API authenticates itself (its docs page signs visitors in
#: itself), so does the federation door (node signatures), health, static files and the favicon are public.
EXEMPT_PREFIXES = ("/api/", "/federation/", "/static/", "/healthz", "/i18n/", "/favicon.ico")


def needs_second_factor(user) -> bool:
    """Supervisors, admins, caseworkers whose institution requires it, and superusers.

    ``user`` may be something else than a staff account: DRF puts the authenticated API client on the
    request, and a template rendered for it (the API docs) asks too — an API client has no second factor.
    """
    return bool(getattr(user, "requires_2fa", False) or getattr(user, "is_superuser", False))


def second_factor_pending(user) -> bool:
    """Signed in with a password, but the TOTP step is still to do."""
    if not needs_second_factor(user):
        return False
    is_verified = getattr(user, "is_verified", None)
    return not (is_verified is not None and is_verified())


def has_confirmed_device(user) -> bool:
    from django_otp import user_has_device

    return user_has_device(user, confirmed=True)


class WebAccessMiddleware:
    """Runs after authentication and django-otp's middleware (which sets ``user.is_verified``)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.otp_paths = {settings.OTP_VERIFY_URL, settings.OTP_SETUP_URL, "/accounts/logout/"}

    def __call__(self, request):
        path = request.path_info
        if path.startswith(EXEMPT_PREFIXES):
            return self.get_response(request)
        user = request.user
        if not user.is_authenticated:
            if path == settings.LOGIN_URL:
                return self.get_response(request)
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        language = getattr(user, "language", "")
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        if second_factor_pending(user) and path not in self.otp_paths:
            target = settings.OTP_VERIFY_URL if has_confirmed_device(user) else settings.OTP_SETUP_URL
            nxt = request.get_full_path() if request.method == "GET" and path != settings.LOGIN_URL else "/"
            return redirect(f"{target}?{urlencode({'next': nxt})}")
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            # Signed-in pages may show personal data: never kept by a browser or a proxy.
            add_never_cache_headers(response)
        return response

    def process_exception(self, request, exception):
        """A missing or wrong encryption key: a clear 503 page, never ciphertext and never a 500.

        The partner API answers the same condition with problem+json (config/problems.py)."""
        if request.path_info.startswith("/api/") or not isinstance(exception, CryptoError):
            return None
        logger.error("Personal data could not be decrypted (%s); check the keys.", type(exception).__name__)
        response = render(request, "503_keys.html", status=503)
        response["Retry-After"] = "300"
        return response
