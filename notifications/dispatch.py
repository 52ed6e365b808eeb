"""Handing outbox rows and deliveries to Celery after commit (by task name: no import of the tasks
module, which imports the relay). Never raises: what the broker misses, the sweep relays."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)


def broker_enabled() -> bool:
    return bool(getattr(settings, "REDIS_URL", None)) or bool(
        getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    )


def dispatch_after_commit(outbox_id) -> None:
    """Hand the outbox row to Celery; never raises (the sweep picks up what the broker missed)."""
    if not broker_enabled():
        return  # embedded mode: the relay thread's sweep delivers within its interval
    try:
        current_app.tasks["notifications.tasks.process_outbox"].apply_async(
            args=[str(outbox_id)], retry=False
        )
    except Exception as exc:  # broker down: the row stays pending for the sweep
        logger.warning(
            "outbox %s not handed to the broker (%s); the sweep will relay it", outbox_id, type(exc).__name__
        )


def enqueue_delivery(delivery_id, countdown: float = 0) -> None:
    if not broker_enabled():
        return
    try:
        current_app.tasks["notifications.tasks.deliver"].apply_async(
            args=[str(delivery_id)], countdown=countdown, retry=False
        )
    except Exception as exc:
        logger.warning("delivery %s not handed to the broker (%s)", delivery_id, type(exc).__name__)
