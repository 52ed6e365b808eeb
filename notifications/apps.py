import logging
import threading
import time
from collections.abc import Iterable

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)
_started = False

#: Beat's entries that every relay pass already does (the outbox sweep, the SLA reminders).
RELAY_PASS_ENTRIES = frozenset({"notifications-sweep", "notifications-sla-reminders"})


def _housekeeping() -> dict[str, tuple[float, str]]:
    """Embedded mode's stand-in for beat: beat's other entries (config/celery.py), name → (period, task)."""
    from celery import current_app as app

    return {
        name: (float(entry["schedule"]), entry["task"])
        for name, entry in app.conf.beat_schedule.items()
        if name not in RELAY_PASS_ENTRIES
    }


HOUSEKEEPING = _housekeeping()


def relay_once(*, housekeeping: Iterable[str] = ()) -> None:
    """One pass of the embedded relay: outbox sweep, SLA reminders, then the housekeeping jobs that are due.

    Never raises: a failed step is logged by exception type only, the other steps still run, and the
    next pass tries again.
    """
    from django.db import close_old_connections

    from . import relay

    steps = [("sweep", relay.sweep), ("sla_reminders", relay.sla_reminders)]
    steps += [(name, import_string(HOUSEKEEPING[name][1])) for name in housekeeping]
    try:
        for name, step in steps:
            close_old_connections()
            try:
                step()
            except Exception as exc:  # noqa: BLE001 — keep relaying; log the type only
                logger.warning("embedded relay: %s failed (%s)", name, type(exc).__name__)
    finally:
        close_old_connections()


#: The wake-up events of this process's relay threads, and the housekeeping jobs a woken pass runs even
#: when not yet due (``wake_relay``).
_wakers: list[threading.Event] = []
_wanted: set[str] = set()


def wake_relay(*jobs: str) -> None:
    """Ask this process's embedded relay for a pass now rather than at the end of its interval (after a
    commit that queued something to deliver: a notification, or — with ``jobs`` naming beat's entry, e.g.
    ``federation-deliver-outbox`` — a federation message). Without a relay thread in this process (a worker,
    a command) it does nothing: the next pass, or the broker, delivers."""
    if not _wakers:
        return
    _wanted.update(name for name in jobs if name in HOUSEKEEPING)
    for waker in _wakers:
        waker.set()


def _pause(stop, wake: threading.Event | None, interval: float) -> bool:
    """Wait up to ``interval`` seconds, less when woken; True once ``stop`` is set."""
    if wake is None:
        return stop.wait(interval)
    deadline = time.monotonic() + interval
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if wake.wait(min(left, 0.2)):
            wake.clear()
            return stop.is_set()
    return True


def _relay_loop(
    interval: float, stop: threading.Event, clock=time.monotonic, wake: threading.Event | None = None
) -> None:
    """Sweep every ``interval`` seconds (sooner when woken) until ``stop`` is set; each housekeeping job on
    the first pass, then at its own period."""
    from django.db import connections

    next_due = dict.fromkeys(HOUSEKEEPING, clock())
    try:
        while not _pause(stop, wake, interval):
            now = clock()
            wanted = set(_wanted)
            _wanted.difference_update(wanted)
            due = [name for name, at in next_due.items() if now >= at or name in wanted]
            for name in due:
                next_due[name] = now + HOUSEKEEPING[name][0]
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
    stop, wake = threading.Event(), threading.Event()
    _wakers.append(wake)
    thread = threading.Thread(
        target=_relay_loop,
        args=(interval, stop),
        kwargs={"wake": wake},
        name="notifications-relay",
        daemon=True,
    )
    thread.start()
    return thread, stop


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import (
            audit_hooks,  # noqa: F401 — connects the receivers of the audit app's signals
            tasks,  # noqa: F401 — registers the tasks, which dispatch hands over by name
        )


def start_embedded_relay() -> bool:
    """Called by the serving entrypoints only (``config/wsgi.py``, ``config/asgi.py``; ``manage.py runserver``
    loads the former through ``WSGI_APPLICATION``): starts the embedded relay once per process when there is
    no broker, unless ``NOTIFICATIONS_RELAY_THREAD`` is false (its default is true without ``REDIS_URL``).
    Other management commands, workers and tests never load these modules, so they never relay."""
    global _started
    if _started or not settings.NOTIFICATIONS_RELAY_THREAD or getattr(settings, "REDIS_URL", None):
        return False
    _started = True
    start_relay_thread()
    logger.info("embedded notification relay started (no REDIS_URL)")
    return True
