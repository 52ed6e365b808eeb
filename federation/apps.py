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
            receipts,  # noqa: F401 — read receipts: the personal_read receiver, the referral.reads handler
            referrals,  # registers the referral messages and queues them on the core's changes
            tasks,  # noqa: F401 — registers the outbox's task, which enqueue hands over by name
            withdrawals,  # noqa: F401 — consent withdrawal: its receiver, handler and answer's hook
        )

        checks.register()
        remote.register_forwarder(referrals.forward)
