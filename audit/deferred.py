"""Events that must outlive the transaction they were noticed in.

A refused access (``access.denied``) is often noticed inside a service's transaction — a locked
re-read, an idempotent create — that then rolls back, and the event would go with it. Such events are
recorded through :func:`record_surviving`: at once when no transaction is open; otherwise when the
transaction commits, or — if it rolls back — by :func:`flush` once the request or the Celery task is over
(``DeferredAuditMiddleware``; ``task_began`` / ``task_ended``, connected to Celery's task signals by the
audit app). Units nest (a task run eagerly inside a request): each keeps its own baseline and queue, and
the outer one gets back what the inner one could not record yet. Plain values only, as everywhere in the
recorder.
"""

from __future__ import annotations

import threading

from django.db import transaction

from .recorder import record

_pending = threading.local()


def _queue() -> list[dict]:
    if not hasattr(_pending, "events"):
        _pending.events = []
    return _pending.events


def _depth() -> int:
    return len(transaction.get_connection().atomic_blocks)


def record_surviving(**kwargs) -> None:
    """``record(**kwargs)`` now, or once the current transaction has ended, whether it commits or not.

    "Now" when no transaction was opened since the request (or task) began: the depth it began at is
    the baseline (a test's own transaction, for instance, is not the caller's work).
    """
    if _depth() <= getattr(_pending, "baseline", 0):
        record(**kwargs)
        return
    _queue().append(kwargs)
    transaction.on_commit(flush)


def flush() -> int:
    """Record the events still waiting (after a rollback, or a commit); returns how many."""
    events, _pending.events = _queue(), []
    for kwargs in events:
        record(**kwargs)
    return len(events)


def _outer_units() -> list[tuple[int, list[dict]]]:
    if not hasattr(_pending, "outer"):
        _pending.outer = []
    return _pending.outer


def enter_unit() -> int:
    """Mark the start of a unit of work (a request, a task, a test): transactions open now are not its own.
    An enclosing unit's baseline and waiting events are set aside until this one ends."""
    _outer_units().append((getattr(_pending, "baseline", 0), _queue()))
    _pending.events = []
    _pending.baseline = _depth()
    return _pending.baseline


def leave_unit(baseline: int) -> None:
    """The unit of work is over: record what its rolled-back transactions did not keep, and give the
    enclosing unit (if any) its baseline back, with the events still waiting for a transaction to end."""
    if _depth() <= baseline:
        flush()
    outer = _outer_units()
    outer_baseline, outer_events = outer.pop() if outer else (0, [])
    _pending.baseline = outer_baseline
    _pending.events = outer_events + _queue()


def task_began(task_id=None, **_signal) -> None:
    """Celery's ``task_prerun``: a task is a unit of work like a request."""
    if not hasattr(_pending, "tasks"):
        _pending.tasks = {}
    _pending.tasks[task_id] = enter_unit()


def task_ended(task_id=None, **_signal) -> None:
    """Celery's ``task_postrun`` (after success, failure or retry alike)."""
    tasks = getattr(_pending, "tasks", {})
    if task_id in tasks:
        leave_unit(tasks.pop(task_id))


class DeferredAuditMiddleware:
    """Records, after the view, the events a rolled-back transaction of the request did not keep."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        baseline = enter_unit()
        try:
            return self.get_response(request)
        finally:
            leave_unit(baseline)
