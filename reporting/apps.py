from django.apps import AppConfig


class ReportingConfig(AppConfig):
    """Statistics of referrals for the agreement's follow-up (contract §6.4): API, page and exports."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "reporting"
    verbose_name = "Reporting"
