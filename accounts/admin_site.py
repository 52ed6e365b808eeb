"""The operators' admin site: django-otp's ``OTPAdminSite`` (a verified second factor is required), for
active superusers only, with no sign-in form of its own. Installed as the default admin site through
``accounts.apps.OperatorsAdminConfig`` — Django's supported way to replace ``admin.site`` — so every
``@admin.register`` of the project lands on it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


class OperatorsAdminSite(OTPAdminSite):
    site_header = _("Referral case manager: operators")
    site_title = _("Operators")
    index_title = _("Installation")
    enable_nav_sidebar = False

    def __init__(self, name="admin"):
        super().__init__(name)

    def has_permission(self, request) -> bool:
        """Active superusers who finished the second sign-in step (django-otp's check, plus superuser)."""
        user = request.user
        return bool(super().has_permission(request) and user.is_superuser)

    def admin_view(self, view, cacheable=False):
        """A signed-in user who may not use the admin gets a 403, not a sign-in form."""
        inner = super().admin_view(view, cacheable)

        def refuse_others(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        refuse_others.__wrapped__ = view
        return refuse_others

    def login(self, request, extra_context=None):
        """The web sign-in (password, then TOTP) is the only sign-in."""
        if not request.user.is_authenticated:
            return redirect_to_login(request.GET.get("next") or "/admin/", settings.LOGIN_URL)
        if self.has_permission(request):
            return redirect("admin:index")
        raise PermissionDenied
