"""Celery tasks: ids only, idempotent, acks_late (a killed worker's task is redelivered)."""

from __future__ import annotations

from celery import shared_task

from . import relay


@shared_task(name="notifications.tasks.process_outbox", acks_late=True, reject_on_worker_lost=True)
def process_outbox(outbox_id: str) -> int:
    return relay.process_outbox(outbox_id)


@shared_task(name="notifications.tasks.deliver", acks_late=True, reject_on_worker_lost=True)
def deliver(delivery_id: str) -> str:
    return relay.deliver(delivery_id)


@shared_task(name="notifications.tasks.sweep_outbox", acks_late=True)
def sweep_outbox() -> dict:
    return relay.sweep()


@shared_task(name="notifications.tasks.send_sla_reminders", acks_late=True)
def send_sla_reminders() -> int:
    return relay.sla_reminders()
