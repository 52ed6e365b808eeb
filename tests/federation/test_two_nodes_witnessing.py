"""Witnessing across two real nodes (contract §7.3/§7.4): node B (DP) cosigns node A's (IOM) audit
checkpoints over the signed door — the cosignature appears in A's checkpoint — and refuses a checkpoint
inconsistent with the last one it cosigned (a forked log): ``federation.checkpoint_conflict`` recorded at B,
its supervisor alerted in the app, nothing cosigned.

Databases as in ``test_two_nodes`` (two SQLite files, or two PostgreSQL databases named by
``FEDERATION_TEST_DATABASES``), created afresh here.
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from audit import notes

from .test_two_nodes import Node, _databases, _serving, pair

pytestmark = [pytest.mark.timeout(600)]

COSIGNERS = """
import json
from audit.checkpoints import as_served
from audit.models import AuditCheckpoint
found = {c.sequence: [s["vkey"].split("+")[0] for s in as_served(c)["cosignatures"]]
         for c in AuditCheckpoint.objects.exclude(note="")}
print(json.dumps({str(k): v for k, v in found.items()}))
"""

CONFLICTS = """
import json
from audit.models import AuditEvent
from notifications.models import Notification
events = AuditEvent.objects.filter(action="federation.checkpoint_conflict").order_by("sequence")
alerts = Notification.objects.filter(event_type="federation.checkpoint_conflict")
print(json.dumps({"events": [dict(e.detail, outcome=e.outcome) for e in events],
                  "alerts": [[n.user.username, n.data["cause"]] for n in alerts]}))
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("witness-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    pair(a, b)
    b.manage("create_staff_user", "DP", "super1", "--role", "supervisor", "--email", "sup@dp.example")
    with _serving(a), _serving(b):
        yield a, b


def _checkpoint(node: Node) -> int:
    return json.loads(node.manage("audit_checkpoint").stdout.strip().splitlines()[-1])["tree_size"]


def _witness(by: Node, of: Node, *, check=True) -> tuple[int, dict]:
    result = by.manage("federation_witness", of.url, check=check)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def test_b_cosigns_a_then_refuses_a_forked_checkpoint(nodes):
    a, b = nodes
    b_name = b.url.split("//", 1)[1]  # B's witness name: its NODE_URL's host and port
    first = _checkpoint(a)
    code, outcome = _witness(b, a)
    assert code == 0 and outcome == {"peer": a.url, "result": "cosigned", "tree_size": first}
    assert a.shell(COSIGNERS)[str(first)] == [b_name]
    # B pinned A's audit key on first contact, from A's signed answer.
    pinned = b.shell(
        "import json; from federation.models import Peer; p = Peer.objects.get(); "
        "print(json.dumps([p.audit_vkey, p.witnessed_tree_size]))"
    )
    assert pinned[0].startswith(f"127.0.0.1:{a.port}/audit+") and pinned[1] == first

    assert _witness(b, a)[1]["result"] == "unchanged"  # the same checkpoint: nothing new to cosign

    a.manage("create_staff_user", "IOM", "worker1", "--role", "caseworker")  # A's log grows (audited)
    second = _checkpoint(a)
    assert second > first
    code, outcome = _witness(b, a)  # consistent, by a consistency proof from A
    assert code == 0 and outcome["result"] == "cosigned"
    assert (outcome["tree_size"], outcome["previous_tree_size"]) == (second, first)
    assert a.shell(COSIGNERS)[str(second)] == [b_name]

    # A fork: the tree B cosigned at ``second`` is not the one A's log now extends (as if A had rewritten
    # its log and presented a different history) — B's reference is replaced by another root.
    other_root = base64.b64encode(secrets.token_bytes(32)).decode()
    b.manage(
        "shell", "-c",
        f"from federation.models import Peer; Peer.objects.update(witnessed_root_hash='{other_root}')",
    )  # fmt: skip
    a.manage("create_staff_user", "IOM", "worker2", "--role", "caseworker")
    third = _checkpoint(a)
    code, outcome = _witness(b, a, check=False)
    assert code == 1
    assert outcome == {
        "peer": a.url, "result": "conflict", "cause": "fork", "tree_size": third, "previous_tree_size": second
    }  # fmt: skip
    assert str(third) not in a.shell(COSIGNERS) or a.shell(COSIGNERS)[str(third)] == []  # nothing cosigned
    conflicts = b.shell(CONFLICTS)
    facts = {"node": a.url, "cause": "fork", "tree_size": third, "previous_tree_size": second}
    assert conflicts["events"] == [{**facts, "outcome": "failure"}]
    assert conflicts["alerts"] == [["super1", "fork"]]
    status = next(x for x in b.manage("federation_status").stdout.splitlines() if x.startswith(a.url))
    assert f"witnessed {second} (" in status and "CHECKPOINT CONFLICT" in status
    # B keeps the reference it had: the forked checkpoint is refused again on the next pass.
    assert _witness(b, a, check=False)[1]["result"] == "conflict"

    # A log now signed with another key than the one B pinned (as if A's log had been replaced): refused.
    other_key = notes.vkey(pinned[0].split("+")[0], notes.ED25519, secrets.token_bytes(32))
    repin = f"from federation.models import Peer; Peer.objects.update(audit_vkey='{other_key}')"
    b.manage("shell", "-c", repin)
    code, outcome = _witness(b, a, check=False)
    assert code == 1 and outcome["result"] == "conflict" and outcome["cause"] == "key-changed"
    assert [e["cause"] for e in b.shell(CONFLICTS)["events"]] == ["fork", "fork", "key-changed"]

    # B's operator pins the key A's log is signed with (as after a real rotation, compared by phone): the
    # key is accepted, and the reference B cosigned stays — the forked history is still refused.
    result = b.manage("federation_peer_audit_key", a.url, pinned[0])
    assert result.stdout.startswith(f"pinned: {a.url}  audit key {pinned[0]}")
    code, outcome = _witness(b, a, check=False)
    assert code == 1 and (outcome["result"], outcome["cause"]) == ("conflict", "fork")
    assert [e["cause"] for e in b.shell(CONFLICTS)["events"]] == ["fork", "fork", "key-changed", "fork"]
