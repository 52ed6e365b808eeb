"""The pushed checkpoint's witnessing pass run by a REAL Celery worker (``federation.tasks.witness_peer``):
node B (DP) has a broker — a redis-server of the test's own, on a free port — and a Celery worker; node A
(IOM) relays its outbox itself (no Redis). A makes a checkpoint and announces it to B through its outbox; B
answers at once and, after that message commits, hands its pass of A to the broker
(``witnessing.request_pass``), not to a thread of its own; B's worker runs it — ``checkpoint.latest``,
``checkpoint.cosign`` to A — and A's checkpoint gains B's cosignature within §7.4's 60 s.

Marked ``redis`` like the other real-worker tests (``tests/notifications/test_worker.py``): CI's second pass
runs it; a pass without ``REDIS_URL`` deselects it (reported, not skipped). Databases as in
``test_two_nodes`` (two SQLite files, or two PostgreSQL databases named by ``FEDERATION_TEST_DATABASES``).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.notifications.test_worker import RedisServer, wait_for
from tests.processes import stop_group

from .test_two_nodes import ROOT, Node, _databases, _serving, pair
from .test_two_nodes_pushed_witnessing import BOUND_SECONDS, _cosigned_by
from .test_two_nodes_witnessing import _checkpoint

pytestmark = [pytest.mark.redis, pytest.mark.timeout(600)]


@contextlib.contextmanager
def _worker(node: Node):
    log_path = node.tmp / f"{node.name}-worker.log"
    celery = str(Path(sys.executable).with_name("celery"))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [celery, "-A", "config", "worker", "--loglevel=INFO", "--concurrency=1", "--without-heartbeat",
             "--without-gossip", "--without-mingle", "-n", f"{node.name}-{os.getpid()}@%h"],
            cwd=ROOT, env=node.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            assert wait_for(lambda: b"ready" in log_path.read_bytes(), 60), log_path.read_text()[-3000:]
            yield log_path
        finally:
            stop_group(proc)


@pytest.fixture(scope="module")
def with_worker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker-witness-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    a.extra = {"NOTIFICATIONS_RELAY_THREAD": "true", "NOTIFICATIONS_RELAY_INTERVAL": "0.5"}
    redis = RedisServer()
    redis.start()
    try:
        b.extra = {"REDIS_URL": redis.url}
        pair(a, b)
        with _serving(a), _serving(b), _worker(b) as worker_log:
            yield a, b, worker_log
    finally:
        redis.stop()


def test_the_announced_checkpoint_is_witnessed_by_the_peers_celery_worker(with_worker):
    a, b, worker_log = with_worker
    b_name = b.url.split("//", 1)[1]
    first = _checkpoint(a)
    started = time.monotonic()
    assert _cosigned_by(a, first, b_name, BOUND_SECONDS), (
        "B's worker did not cosign A's checkpoint within 60 s: " + worker_log.read_text()[-3000:]
    )
    assert time.monotonic() - started <= BOUND_SECONDS
    log = worker_log.read_text()
    # The worker ran the task and it cosigned (Celery logs the task's result: the outcome, no personal data).
    done = re.findall(r"federation\.tasks\.witness_peer\[[^\]]+\] succeeded in [0-9.]+s: (\{.*\})", log)
    assert any("'result': 'cosigned'" in outcome for outcome in done), log[-3000:]
    witnessed = b.shell(
        "import json; from federation.models import Peer; "
        "print(json.dumps(Peer.objects.get().witnessed_tree_size))"
    )
    assert witnessed >= first
