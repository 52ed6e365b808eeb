"""``/api/v1/docs/``: the partner API's reference (Swagger UI) for signed-in staff, served entirely from
this system's own static files (drf-spectacular-sidecar): no CDN, no outside font, no inline script or
style — the content security policy stays intact, and the page works in a field office without internet.

An anonymous visitor (or a partner system's bearer token, which is no staff session) is sent to the
sign-in page; a user still owing the second factor finishes it first. Never a 5xx.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularSwaggerSplitView

from ..middleware import has_confirmed_device, second_factor_pending


class OfflineSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI with the page's script in its own file (``?script``) and no inline ``<style>``."""

    template_name = "web/api_docs.html"


_swagger = OfflineSwaggerView.as_view(url_name="schema")


@never_cache
def api_docs(request):
    user = request.user  # the web session's user: a bearer token alone signs nobody in here
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
    if second_factor_pending(user):
        target = settings.OTP_VERIFY_URL if has_confirmed_device(user) else settings.OTP_SETUP_URL
        return redirect(f"{target}?{urlencode({'next': request.path})}")
    return _swagger(request)
