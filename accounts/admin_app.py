"""The admin app with the operators' site (kept apart from apps.py: one AppConfig per module)."""

from django.contrib.admin.apps import AdminConfig


class OperatorsAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the operators' site (django-otp, superusers only) as ``admin.site``."""

    default_site = "accounts.admin_site.OperatorsAdminSite"
