from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "referrals"
    verbose_name = "Referrals"

    def ready(self):
        from notifications.channels import register_status_labels
        from notifications.relay import register_overdue_source

        from . import checks, selectors
        from .choices import status_label

        checks.register()
        # The SLA reminders of the notifications app find overdue referrals here (it never imports them).
        register_overdue_source(selectors.overdue_unanswered)
        register_status_labels(status_label)
