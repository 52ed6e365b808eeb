from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit"

    def ready(self):
        from . import checks, signals  # noqa: F401 — signals: the sign-in receivers

        checks.register()
