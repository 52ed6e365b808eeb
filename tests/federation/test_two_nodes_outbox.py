"""The outbox across two real nodes (contract §7.4: nothing lost, nothing twice): node A (IOM) queues
messages while node B (DP) is down; A's own periodic machinery — the embedded relay of its gunicorn server,
no Redis — retries with backoff; when B is back every message arrives exactly once. A message whose answer
was lost is posted again and B answers it with its first answer, without running it twice.

A's relay also makes audit checkpoints and announces each to B through the same outbox
(``checkpoint.announce``, ``federation.audit_hooks``): the assertions count the pings only.

Databases as in ``test_two_nodes`` (two SQLite files, or two PostgreSQL databases named by
``FEDERATION_TEST_DATABASES``), created afresh here.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .test_two_nodes import Node, _databases, _serving, pair

pytestmark = [pytest.mark.timeout(600)]

QUEUE_20 = """
import json
from django.db import transaction
from federation import services
from federation.models import Peer
peer = Peer.objects.get()
with transaction.atomic():
    rows = [services.enqueue(peer, "ping", {"echo": f"m{i}"}, sealed=i % 2 == 0) for i in range(20)]
print(json.dumps([str(r.message_id) for r in rows]))
"""

OUTBOX = """
import json
from federation.models import Outgoing
print(json.dumps([[str(r.message_id), r.state, r.attempts, r.last_error, r.response_status]
                  for r in Outgoing.objects.filter(type="ping").order_by("id")]))
"""

QUEUE = """
import json
from federation.models import Outgoing
print(json.dumps([[r.type, r.state, r.attempts, r.last_error] for r in Outgoing.objects.order_by("id")]))
"""

RECEIVED = """
import json
from federation.models import Message
print(json.dumps([str(m.message_id) for m in Message.objects.filter(direction="received", type="ping")]))
"""


def _wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outbox-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    # A relays as a real embedded installation does, quickly and with a short backoff for the test's sake.
    a.extra = {
        "NOTIFICATIONS_RELAY_THREAD": "true",
        "NOTIFICATIONS_RELAY_INTERVAL": "0.5",
        "FEDERATION_RETRY_BASE_SECONDS": "0.5",
        "FEDERATION_RETRY_MAX_SECONDS": "2",
    }
    pair(a, b)
    return a, b


def test_a_peer_down_then_back_gets_every_message_exactly_once(paired):
    a, b = paired
    with _serving(a):
        first = json.loads(
            a.manage("federation_ping", b.url, "--outbox", "--echo", "hola").stdout.splitlines()[-1]
        )
        assert first["queued"] is True
        queued = [first["message_id"], *a.shell(QUEUE_20)]
        # B is down: A's relay tries the head of the queue again and again, with backoff; nothing is lost.
        # (The head of the queue may be a checkpoint's announcement queued before the pings: the same.)
        _wait_for(lambda: a.shell(QUEUE)[0][2] >= 3, 60, "A never retried")
        queue = a.shell(QUEUE)
        assert queue[0][3] == "ConnectionError" and all(row[2] == 0 for row in queue[1:])
        outbox = a.shell(OUTBOX)
        assert [row[0] for row in outbox] == queued and {row[1] for row in outbox} == {"waiting"}
        line = next(x for x in a.manage("federation_status").stdout.splitlines() if x.startswith(b.url))
        waiting = re.search(r"waiting (\d+) \(since ", line)
        assert waiting and int(waiting.group(1)) >= 21 and "last error ConnectionError" in line

        with _serving(b):
            _wait_for(lambda: all(row[1] == "delivered" for row in a.shell(QUEUE)), 90, "not all delivered")
            outbox = a.shell(OUTBOX)
            assert all(row[4] == 200 for row in outbox)
            received = b.shell(RECEIVED)
            assert sorted(received) == sorted(queued)  # every one, once

            # An answer lost on the way back: A posts the same message again; B answers with its first
            # answer and runs nothing twice.
            lost = queued[5]
            a.shell(
                "import json; from federation.models import Message, Outgoing; "
                f"sent = Message.objects.get(direction='sent', message_id='{lost}'); "
                f"print(Outgoing.objects.filter(message_id='{lost}')"
                ".update(state='waiting', attempts=0, body=sent.request_body))"
            )
            _wait_for(lambda: all(row[1] == "delivered" for row in a.shell(QUEUE)), 30, "not delivered again")
            assert sorted(b.shell(RECEIVED)) == sorted(queued)
            lines = a.manage("federation_status").stdout.splitlines()
            line = next(x for x in lines if x.startswith(b.url))
            assert "waiting 0 " in line and "failures 0" in line and "answered with a problem 0" in line


def test_a_peer_that_rate_limits_gets_every_message_once_later(paired):
    """B limits A to 2 messages a second (``FEDERATION_THROTTLE_NODE``): B answers the rest 429 with
    Retry-After, A's outbox posts them again after it; every message arrives, once, and B records one
    ``rate-limited`` refusal per window, naming A."""
    a, b = paired
    b.extra = {"FEDERATION_THROTTLE_NODE": "2/s"}
    try:
        with _serving(b), _serving(a):
            queued = a.shell(QUEUE_20)
            _wait_for(
                lambda: {row[1] for row in a.shell(OUTBOX) if row[0] in queued} == {"delivered"},
                120,
                "not all delivered",
            )
            outbox = [row for row in a.shell(OUTBOX) if row[0] in queued]
            assert all(row[4] == 200 for row in outbox)
            assert max(row[2] for row in outbox) >= 2  # some were throttled, then posted again
            received = b.shell(RECEIVED)
            assert set(queued) <= set(received) and len(received) == len(set(received))
            limited = [r for r in b.refusals() if r["cause"] == "rate-limited"]
            assert limited and all(r["claimed_node"] == a.url for r in limited)
    finally:
        b.extra = {}
