"""Celery tasks of the HTTP plumbing: counts only in results (the task keeps its historical name)."""

from __future__ import annotations

from celery import shared_task

from . import idempotency


@shared_task(name="plumbing.tasks.purge_idempotency_keys", acks_late=True)
def purge_idempotency_keys() -> int:
    """Delete the expired ``Idempotency-Key`` claims (scheduled hourly by beat); returns how many.

    Idempotent and safe to run twice at once (a plain DELETE of rows past ``expires_at``). Embedded mode
    (no broker, no beat) does not need it: the web process's relay thread runs the same purge hourly,
    and one claim in 200 purges too.
    """
    return idempotency.purge_expired()
