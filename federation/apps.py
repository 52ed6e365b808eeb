from django.apps import AppConfig


class FederationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "federation"
    verbose_name = "Federation"

    def ready(self):
        from referrals import remote

        from . import (
            audit_hooks,  # noqa: F401 — connects the announcement of each new checkpoint to the peers
            checks,
            directory,  # noqa: F401 — registers the ``directory.offices`` message handler
            referrals,  # registers the referral messages and queues them on the core's changes
            tasks,  # noqa: F401 — registers the outbox's task, which enqueue hands over by name
        )

        checks.register()
        remote.register_forwarder(referrals.forward)
