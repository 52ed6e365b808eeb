"""Celery tasks of the referrals app: ids and counts only in arguments and results."""

from __future__ import annotations

from celery import shared_task

from . import retention


@shared_task(name="referrals.tasks.apply_retention", acks_late=True)
def apply_retention() -> dict:
    """Erase the closed cases older than ``RETENTION_DAYS`` (scheduled daily by beat)."""
    return retention.apply_retention()
