from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    CASEWORKER = "caseworker", _("Caseworker")
    SUPERVISOR = "supervisor", _("Supervisor")
    ADMIN = "admin", _("Institution admin")


class Scope(models.TextChoices):
    REFERRALS_READ = "referrals:read", "referrals:read"
    REFERRALS_WRITE = "referrals:write", "referrals:write"
    REFERRALS_VOID = "referrals:void", "referrals:void"
    AUDIT_READ = "audit:read", "audit:read"
    WEBHOOKS_MANAGE = "webhooks:manage", "webhooks:manage"
    STATISTICS_READ = "statistics:read", "statistics:read"


class GroupKind(models.TextChoices):
    """The per-institution groups object permissions are granted to."""

    CASEWORKERS = "caseworkers", _("Caseworkers")
    INTAKE = "intake", _("Intake")
    SUPERVISORS = "supervisors", _("Supervisors")
    ADMINS = "admins", _("Admins")
    SERVICE = "service", _("Service account (API clients)")
