"""The checkpoint pushed to the peers (contract §7.4: a peer cosigns "within 60 s of each checkpoint (the
checkpoint reaches it as a message through the outbox)"), across two real nodes: node A (IOM) makes a
checkpoint; its outbox — delivered by the embedded relay of A's server, no Redis — announces it to node B (DP)
with a ``checkpoint.announce``; B answers at once and, after that message commits, runs its witnessing pass of
A by itself. Nobody runs ``federation_witness``: the cosignature appears in A's checkpoint within the bound.

Databases as in ``test_two_nodes`` (two SQLite files, or two PostgreSQL databases named by
``FEDERATION_TEST_DATABASES``), created afresh here.
"""

from __future__ import annotations

import time

import pytest

from .test_two_nodes import Node, _databases, _serving, pair
from .test_two_nodes_witnessing import COSIGNERS, _checkpoint

pytestmark = [pytest.mark.timeout(600)]

BOUND_SECONDS = 60  # §7.4

B_SIDE = """
import json
from federation.models import Message, Peer
peer = Peer.objects.get()
print(json.dumps({"witnessed": peer.witnessed_tree_size,
                  "received": sorted({m.type for m in Message.objects.filter(direction="received")}),
                  "sent": sorted({m.type for m in Message.objects.filter(direction="sent")})}))
"""


@pytest.fixture(scope="module")
def relaying(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pushed-witness-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    a.extra = {"NOTIFICATIONS_RELAY_THREAD": "true", "NOTIFICATIONS_RELAY_INTERVAL": "0.5"}
    pair(a, b)
    with _serving(a), _serving(b):
        yield a, b


def _cosigned_by(node: Node, tree_size: int, name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if name in node.shell(COSIGNERS).get(str(tree_size), []):
            return True
        time.sleep(0.5)
    return False


def test_a_checkpoint_reaches_the_peer_through_the_outbox_and_is_cosigned_without_asking(relaying):
    a, b = relaying
    b_name = b.url.split("//", 1)[1]
    first = _checkpoint(a)
    assert _cosigned_by(a, first, b_name, BOUND_SECONDS), "B did not cosign A's checkpoint within 60 s"
    seen = b.shell(B_SIDE)
    assert seen["witnessed"] >= first
    assert "checkpoint.announce" in seen["received"]  # pushed by A, not asked for by a command at B
    assert {"checkpoint.latest", "checkpoint.cosign"} <= set(seen["sent"])

    a.manage("create_staff_user", "IOM", "worker1", "--role", "caseworker")  # A's log grows
    second = _checkpoint(a)
    assert second > first
    assert _cosigned_by(a, second, b_name, BOUND_SECONDS), "B did not cosign A's next checkpoint"
    # B's reference moved on by a consistency proof from the first to the second: no conflict at B.
    conflicts = b.shell(
        "import json; from audit.models import AuditEvent; "
        "print(json.dumps(AuditEvent.objects.filter(action='federation.checkpoint_conflict').count()))"
    )
    assert conflicts == 0
