"""``audit.deferred`` units of work beyond requests: a Celery task is one (an event noticed in its
rolled-back transaction is recorded when the task ends, whether it succeeds or fails), and units nest
without losing the enclosing unit's waiting events."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from audit import deferred
from audit.models import AuditEvent
from config.celery import app


class Refused(Exception):
    pass


def _refusal(marker: str) -> dict:
    return {
        "actor_type": "system",
        "action": "access.denied",
        "object_type": "referral",
        "object_id": marker,
        "outcome": "denied",
        "detail": {"cause": "not-visible"},
    }


@app.task(name="tests.audit.refused_inside_rolled_back_work")
def refused_inside_rolled_back_work(marker: str, fail: bool = False) -> str:
    try:
        with transaction.atomic():
            deferred.record_surviving(**_refusal(marker))
            raise Refused
    except Refused:
        pass
    if fail:
        raise RuntimeError("the task fails after its refusal")
    return marker


def _recorded(marker: str) -> bool:
    return AuditEvent.objects.filter(action="access.denied", object_id=marker).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fail", [False, True])
def test_a_task_records_the_refusal_its_rolled_back_transaction_lost(fail):
    marker = uuid.uuid4().hex
    result = refused_inside_rolled_back_work.apply(args=[marker, fail])  # runs the task, with its signals
    assert result.failed() is fail
    # Recorded when the task ended — not later, when the test (the enclosing unit) ends.
    assert _recorded(marker)


@pytest.mark.django_db
def test_units_nest_without_losing_the_enclosing_units_events():
    outer = deferred.enter_unit()
    marker = uuid.uuid4().hex
    try:
        with transaction.atomic():
            deferred.record_surviving(**_refusal(marker))  # waits for this transaction to end
            inner = deferred.enter_unit()  # a unit inside (a task run eagerly within a request)
            deferred.leave_unit(inner)
            assert not _recorded(marker)
            raise Refused
    except Refused:
        pass
    assert not _recorded(marker)  # rolled back: waiting for its unit to end
    deferred.leave_unit(outer)
    assert _recorded(marker)
