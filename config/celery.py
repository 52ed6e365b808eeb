"""The Celery app. With REDIS_URL: a real worker and beat; without, the web process relays the outbox."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("referrals")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "notifications-sweep": {"task": "notifications.tasks.sweep_outbox", "schedule": 10.0},
    "notifications-sla-reminders": {"task": "notifications.tasks.send_sla_reminders", "schedule": 300.0},
    "audit-seal-pending": {"task": "audit.tasks.seal_pending", "schedule": 5.0},
    "audit-verify-chain": {"task": "audit.tasks.verify_audit_chain", "schedule": 3600.0},
    "audit-checkpoint-when-due": {"task": "audit.tasks.checkpoint_when_due", "schedule": 30.0},
    "referrals-retention": {"task": "referrals.tasks.apply_retention", "schedule": 86400.0},
    "plumbing-purge-idempotency-keys": {"task": "plumbing.tasks.purge_idempotency_keys", "schedule": 3600.0},
    # Without Redis the embedded relay runs it on each pass (its period is under the relay's interval).
    "federation-deliver-outbox": {"task": "federation.tasks.deliver_outbox", "schedule": 2.0},
    "federation-witness-peers": {"task": "federation.tasks.witness_peers", "schedule": 3600.0},
    "federation-purge": {"task": "federation.tasks.purge", "schedule": 86400.0},
}
