"""Celery tasks of federation: ids only, idempotent."""

from __future__ import annotations

from celery import shared_task

from . import delivery, retention, witnessing


@shared_task(name="federation.tasks.deliver_outbox", acks_late=True)
def deliver_outbox(peer_id: str | None = None) -> dict:
    """Deliver the outbox (one peer's, after a commit; every peer's, from beat every 2 s)."""
    return delivery.deliver_outbox(peer_id)


@shared_task(name="federation.tasks.witness_peers", acks_late=True)
def witness_peers() -> list[dict]:
    """Cosign every peer's latest audit checkpoint, or refuse an inconsistent one (beat: hourly)."""
    return witnessing.witness_peers()


@shared_task(name="federation.tasks.witness_peer", acks_late=True)
def witness_peer(peer_id: str) -> dict | None:
    """Witness one peer now: handed over after its ``checkpoint.announce`` commits."""
    return witnessing.witness_peer_id(peer_id)


@shared_task(name="federation.tasks.purge", acks_late=True)
def purge() -> dict:
    """Delivered outbox rows and evidence past their retention periods deleted (beat: daily)."""
    return retention.purge()
