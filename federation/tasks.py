"""Celery tasks of federation: ids only, idempotent."""

from __future__ import annotations

from celery import shared_task

from . import delivery


@shared_task(name="federation.tasks.deliver_outbox", acks_late=True)
def deliver_outbox(peer_id: str | None = None) -> dict:
    """Deliver the outbox (one peer's, after a commit; every peer's, from beat every 2 s)."""
    return delivery.deliver_outbox(peer_id)
