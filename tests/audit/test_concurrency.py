"""Concurrent writers on PostgreSQL: several OS processes, each with its own connection, appending at the
same moment (some in transactions that roll back) leave one intact chain — no fork, no gap, no duplicate.
Twice: sealing inline (the test settings: each writer seals in its own transaction, under the head's lock),
and queued as in production (writers only queue; some seal after their commits, concurrently, the others
never — as if they died after committing — and a last sequencer run seals what is left)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from audit import sequencer
from audit.models import AuditEvent, AuditQueue
from audit.verification import verify_chain

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 6
EVENTS_EACH = 40

WRITER = """
import os, sys, time
import django
django.setup()
from django.db import transaction
from audit.recorder import record

worker, count, start, queued = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
if queued:
    from django.conf import settings
    from audit import sequencer
    settings.AUDIT_SEAL_INLINE = False
    if worker % 2:  # dies after each commit before sealing: its events wait in the queue
        sequencer._seal_after_commit = lambda: None
while time.time() < start:  # every process starts writing at the same moment
    time.sleep(0.001)
for n in range(count):
    record(actor_type="system", action="test.concurrent", institutions=["IOM"], detail={"w": worker, "n": n})
    if n % 5 == 0:  # a writer whose transaction rolls back must not leave a gap in the sequence
        try:
            with transaction.atomic():
                record(actor_type="system", action="test.rolled_back", detail={"w": worker})
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    if n % 7 == 0:  # and several events in one transaction stay contiguous with the others'
        with transaction.atomic():
            record(actor_type="system", action="test.batch", detail={"w": worker, "n": n})
            record(actor_type="system", action="test.batch", detail={"w": worker, "n": n})
print("done", worker)
"""


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queued", [False, True], ids=["inline", "queued"])
def test_concurrent_processes_leave_an_intact_chain(queued):
    assert connection.vendor == "postgresql"
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    start = time.time() + 4.0  # time enough for every interpreter to start and set Django up
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(worker), str(EVENTS_EACH), str(start), str(int(queued))],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(PROCESSES)
    ]
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err[-2000:]
        assert out.startswith("done")

    if queued:
        sequencer.seal_pending(wait=True)  # the next sequencer run
        assert not AuditQueue.objects.exists()
    batches = sum(1 for n in range(EVENTS_EACH) if n % 7 == 0) * 2
    expected = PROCESSES * (EVENTS_EACH + batches)
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    assert AuditEvent.objects.count() == expected
    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == list(range(1, expected + 1))
    # The writers really interleaved (they were not simply serialized one process after the other).
    order = list(AuditEvent.objects.filter(action="test.concurrent").values_list("detail", flat=True))
    switches = sum(1 for a, b in zip(order, order[1:], strict=False) if a["w"] != b["w"])
    assert switches >= PROCESSES
    result = verify_chain()
    assert result.ok, result.summary()
    assert result.checked == expected
