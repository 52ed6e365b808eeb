import logging
import os
import sys
import threading
import time

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)
_started = False

#: Embedded mode's stand-in for beat's hourly housekeeping (expired Idempotency-Key claims).
HOUSEKEEPING_INTERVAL_SECONDS = 3600.0


def _serving() -> bool:
    argv = " ".join(sys.argv)
    if "gunicorn" in argv or "uvicorn" in argv:
        return True
    return "runserver" in sys.argv and os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv


def relay_once(*, housekeeping: bool = False) -> None:
    """One pass of the embedded relay: outbox sweep, SLA reminders, and the hourly housekeeping when due.

    Never raises: a failed pass is logged by exception type only and the next one tries again.
    """
    from django.db import close_old_connections

    from accounts.idempotency import purge_expired

    from . import relay

    try:
        close_old_connections()
        relay.sweep()
        relay.sla_reminders()
        if housekeeping:
            purge_expired()
    except Exception as exc:  # noqa: BLE001 — keep relaying; log the type only
        logger.warning("embedded relay sweep failed (%s)", type(exc).__name__)
    finally:
        close_old_connections()


def _relay_loop(interval: float, stop: threading.Event, clock=time.monotonic) -> None:
    """Sweep every ``interval`` seconds until ``stop`` is set; housekeeping on the first pass, then hourly."""
    from django.db import connections

    next_housekeeping = clock()
    try:
        while not stop.wait(interval):
            due = clock() >= next_housekeeping
            if due:
                next_housekeeping = clock() + HOUSEKEEPING_INTERVAL_SECONDS
            relay_once(housekeeping=due)
    finally:
        connections.close_all()  # this thread's own connections (none left open for the next test or exit)


def start_relay_thread(interval: float | None = None) -> tuple[threading.Thread, threading.Event]:
    """Start the embedded relay (a daemon thread sweeping every ``interval`` seconds).

    Returns the thread and the event that stops it (``stop.set(); thread.join()``): the web process never
    stops it, tests do.
    """
    if interval is None:
        interval = float(settings.NOTIFICATIONS_RELAY_INTERVAL)
    stop = threading.Event()
    thread = threading.Thread(
        target=_relay_loop, args=(interval, stop), name="notifications-relay", daemon=True
    )
    thread.start()
    return thread, stop


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
        start_relay_thread()
