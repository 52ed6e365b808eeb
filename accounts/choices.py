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


class Service(models.TextChoices):
    """The services of contract §4: what a referral asks for and what an office offers (the directory)."""

    LEGAL_ASSISTANCE = "legal_assistance", _("Legal assistance")
    HUMAN_RIGHTS_COMPLAINT = "human_rights_complaint", _("Human-rights complaint")
    PROTECTION = "protection", _("Protection")
    HEALTH = "health", _("Health")
    MENTAL_HEALTH_PSYCHOSOCIAL = "mental_health_psychosocial", _("Mental health and psychosocial support")
    SHELTER = "shelter", _("Shelter")
    BASIC_NEEDS = "basic_needs", _("Basic needs")
    DOCUMENTATION_REGULARIZATION = "documentation_regularization", _("Documentation and regularization")
    FAMILY_REUNIFICATION = "family_reunification", _("Family reunification")
    CHILD_PROTECTION = "child_protection", _("Child protection")
    GBV_RESPONSE = "gbv_response", _("Gender-based violence response")
    ANTI_TRAFFICKING = "anti_trafficking", _("Anti-trafficking")
    ASSISTED_VOLUNTARY_RETURN = "assisted_voluntary_return", _("Assisted voluntary return")
    OTHER = "other", _("Other")


class Province(models.TextChoices):
    """Where a person needs help and where an office is: the ISO 3166-2 subdivisions of Panama (contract
    §7.2) — provinces and indigenous comarcas. The one list of these codes; names are the official ones."""

    BOCAS_DEL_TORO = "PA-1", "Bocas del Toro"
    COCLE = "PA-2", "Coclé"
    COLON = "PA-3", "Colón"
    CHIRIQUI = "PA-4", "Chiriquí"
    DARIEN = "PA-5", "Darién"
    HERRERA = "PA-6", "Herrera"
    LOS_SANTOS = "PA-7", "Los Santos"
    PANAMA = "PA-8", "Panamá"
    VERAGUAS = "PA-9", "Veraguas"
    PANAMA_OESTE = "PA-10", "Panamá Oeste"
    EMBERA = "PA-EM", "Emberá"
    GUNA_YALA = "PA-KY", "Guna Yala"
    NGABE_BUGLE = "PA-NB", "Ngäbe-Buglé"
    NASO_TJER_DI = "PA-NT", "Naso Tjër Di"
