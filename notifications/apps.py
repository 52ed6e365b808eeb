import logging
import os
import sys
import threading

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)
_started = False


def _serving() -> bool:
    argv = " ".join(sys.argv)
    if "gunicorn" in argv or "uvicorn" in argv:
        return True
    return "runserver" in sys.argv and os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv


def _relay_loop(interval: float) -> None:
    import time

    from django.db import close_old_connections

    from . import relay

    while True:
        time.sleep(interval)
        try:
            close_old_connections()
            relay.sweep()
            relay.sla_reminders()
        except Exception as exc:  # noqa: BLE001 — keep relaying; log the type only
            logger.warning("embedded relay sweep failed (%s)", type(exc).__name__)
        finally:
            close_old_connections()


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        global _started
        if _started or not getattr(settings, "NOTIFICATIONS_RELAY_THREAD", True):
            return
        if getattr(settings, "REDIS_URL", None) or not _serving():
            return
        _started = True
        interval = float(getattr(settings, "NOTIFICATIONS_RELAY_INTERVAL", 3))
        threading.Thread(
            target=_relay_loop, args=(interval,), name="notifications-relay", daemon=True
        ).start()
