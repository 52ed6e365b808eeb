"""The tree in the database and its API (contract §7.3): stored subtrees, roots recomputed by the tests'
own RFC 9162 code from the events, proofs checked by the RFC's verification algorithms, the visibility
rules, the 400s, and that neither an append nor a proof reads the whole log."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import checkpoints, tree
from audit.models import AuditEvent, AuditTreeNode
from audit.recorder import record
from tests.api.helpers import assert_problem

from . import rfc9162

INCLUSION = "/api/v1/audit/proofs/inclusion/"
CONSISTENCY = "/api/v1/audit/proofs/consistency/"


def _events(n: int, institution: str = "IOM") -> list[AuditEvent]:
    return [record(actor_type="system", action="test.event", institutions=[institution]) for _ in range(n)]


def _inputs() -> list[bytes]:
    return [
        rfc9162.event_leaf_input(h)
        for h in AuditEvent.objects.order_by("sequence").values_list("hash", flat=True)
    ]


def _checkpoint(size: int):
    event = AuditEvent.objects.get(sequence=size)
    return checkpoints.create(sequence=size, hash_=event.hash, verified=False)


def _b(values):
    return [base64.b64decode(v) for v in values]


@pytest.mark.django_db
def test_the_stored_tree_grows_in_steps_to_the_same_nodes_and_roots():
    _events(23)
    assert tree.extend(7) == 7 and tree.extend(7) == 0
    assert tree.extend(23) == 16
    stepwise = dict(AuditTreeNode.objects.values_list("id", "hash"))
    inputs = _inputs()
    # every complete subtree of level ≥ 1 is stored, and only those
    expected = {
        tree.node_id(level, index): rfc9162.mth(inputs[index << level : (index + 1) << level])
        for level in range(1, 5)
        for index in range(23 >> level)
    }
    assert {k: bytes(v) for k, v in stepwise.items()} == expected
    for size in range(24):
        assert tree.root(size) == rfc9162.mth(inputs[:size])


@pytest.mark.django_db
def test_a_checkpoint_signs_the_root_of_its_events():
    _events(9)
    made = checkpoints.as_served(_checkpoint(9))
    assert made["tree_size"] == 9
    assert base64.b64decode(made["root_hash"]) == rfc9162.mth(_inputs())


@pytest.mark.django_db
def test_an_append_does_not_touch_the_tree_and_a_proof_reads_a_few_rows():
    _events(40)
    _checkpoint(40)
    with CaptureQueriesContext(connection) as append:
        record(actor_type="system", action="test.event")
    assert not [q for q in append.captured_queries if "audittree" in q["sql"].lower()]
    with CaptureQueriesContext(connection) as proof:
        tree.inclusion_proof(12, 40)
        tree.consistency_proof(13, 40)
    # per proof: the stored size, one query for nodes, one for leaves; never a scan of the events
    assert len(proof.captured_queries) <= 6
    assert not [
        q for q in proof.captured_queries if "audit_auditevent" in q["sql"] and " IN " not in q["sql"]
    ]


@pytest.mark.django_db
def test_inclusion_proof_of_a_visible_event_verifies(iom, auditor):
    events = _events(13)
    made = checkpoints.as_served(_checkpoint(13))
    root = base64.b64decode(made["root_hash"])
    client = auditor(iom)
    for event in (events[0], events[6], events[12]):
        response = client.get(INCLUSION, {"event": str(event.id), "tree_size": "13"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"leaf_index", "tree_size", "leaf_hash", "hashes"}
        assert body["leaf_index"] == event.sequence - 1 and body["tree_size"] == 13
        leaf = rfc9162.sha256(b"\x00" + bytes.fromhex(event.hash))
        assert base64.b64decode(body["leaf_hash"]) == leaf
        assert rfc9162.verify_inclusion(body["leaf_index"], 13, leaf, _b(body["hashes"]), root)
    # in a smaller signed tree too
    _events(4)
    _checkpoint(17)
    small = client.get(INCLUSION, {"event": str(events[6].id), "tree_size": "13"}).json()
    assert rfc9162.verify_inclusion(6, 13, leaf_of(events[6]), _b(small["hashes"]), root)


def leaf_of(event) -> bytes:
    return rfc9162.sha256(b"\x00" + bytes.fromhex(event.hash))


@pytest.mark.django_db
def test_an_event_the_caller_may_not_see_is_404_like_one_that_does_not_exist(iom, dp, auditor):
    events = _events(3, institution="IOM")
    _checkpoint(3)
    hidden = auditor(dp).get(INCLUSION, {"event": str(events[1].id), "tree_size": "3"})
    assert_problem(hidden, 404, "not-found")
    missing = auditor(dp).get(INCLUSION, {"event": "00000000-0000-0000-0000-000000000000", "tree_size": "3"})
    assert_problem(missing, 404, "not-found")
    assert hidden.json()["detail"] == missing.json()["detail"]
    assert auditor(iom).get(INCLUSION, {"event": str(events[1].id), "tree_size": "3"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"tree_size": "5"},  # beyond the latest checkpoint (3)
        {"tree_size": "x"},
        {"tree_size": "-1"},
        {"tree_size": "2.5"},
        {"tree_size": ""},
        {},
        {"tree_size": "1"},  # the event (sequence 2) is not in a tree of one leaf
        {"tree_size": "3", "other": "1"},
        {"tree_size": "9" * 40},
    ],
)
def test_bad_inclusion_queries_are_400(iom, auditor, query):
    events = _events(3)
    _checkpoint(3)
    response = auditor(iom).get(INCLUSION, {"event": str(events[1].id), **query})
    assert_problem(response, 400, "validation-error")


@pytest.mark.django_db
def test_a_malformed_event_id_is_400(iom, auditor):
    _events(3)
    _checkpoint(3)
    assert_problem(auditor(iom).get(INCLUSION, {"event": "nope", "tree_size": "3"}), 400, "validation-error")


@pytest.mark.django_db
def test_consistency_proofs_verify_between_signed_sizes(iom, dp, auditor):
    _events(6)
    first = checkpoints.as_served(_checkpoint(6))
    _events(15)
    second = checkpoints.as_served(_checkpoint(21))
    roots = {c["tree_size"]: base64.b64decode(c["root_hash"]) for c in (first, second)}
    for client in (auditor(iom), auditor(dp)):  # sizes and hashes only: every institution
        response = client.get(CONSISTENCY, {"from": "6", "to": "21"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"from", "to", "hashes"} and (body["from"], body["to"]) == (6, 21)
        assert rfc9162.verify_consistency(6, 21, roots[6], roots[21], _b(body["hashes"]))
    inputs = _inputs()
    for old in range(1, 21):
        hashes = _b(auditor(iom).get(CONSISTENCY, {"from": str(old), "to": "21"}).json()["hashes"])
        assert rfc9162.verify_consistency(old, 21, rfc9162.mth(inputs[:old]), roots[21], hashes)
    assert auditor(iom).get(CONSISTENCY, {"from": "21", "to": "21"}).json()["hashes"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"from": "5", "to": "4"},  # M > N
        {"from": "1", "to": "22"},  # beyond the latest checkpoint
        {"from": "a", "to": "4"},
        {"from": "1", "to": "4.0"},
        {"from": "1"},
        {"to": "4"},
        {"from": "1", "to": "4", "x": "y"},
    ],
)
def test_bad_consistency_queries_are_400(iom, auditor, query):
    _events(21)
    _checkpoint(21)
    assert_problem(auditor(iom).get(CONSISTENCY, query), 400, "validation-error")


@pytest.mark.django_db
def test_no_proof_before_the_first_checkpoint(iom, auditor):
    events = _events(2)
    assert_problem(auditor(iom).get(CONSISTENCY, {"from": "1", "to": "2"}), 400, "validation-error")
    response = auditor(iom).get(INCLUSION, {"event": str(events[0].id), "tree_size": "1"})
    assert_problem(response, 400, "validation-error")


@pytest.mark.django_db
@pytest.mark.parametrize("path", [INCLUSION, CONSISTENCY])
def test_proofs_need_the_audit_scope(iom, api_as, path):
    from rest_framework.test import APIClient

    assert_problem(APIClient().get(path), 401, "not-authenticated")
    assert_problem(api_as(iom, scopes=["referrals:read"]).get(path), 403, "permission-denied")


# --- verification recomputes the roots; a checkpoint is never signed over an inconsistent tree ----------


def _forged_root_checkpoint(size: int) -> dict:
    """A checkpoint correctly signed with the log's key, but over a root that is not its events' (a log
    that signed a wrong tree): only recomputing the root from the events shows it."""
    from audit import notes

    served = checkpoints.as_served(_checkpoint(size))
    wrong = rfc9162.sha256(b"not the root")
    origin = notes.origin()
    served["root_hash"] = base64.b64encode(wrong).decode()
    served["note"] = notes.sign_note(
        notes.checkpoint_body(origin, size, wrong), checkpoints.private_key(), origin
    )
    return served


@pytest.mark.django_db
def test_verify_audit_recomputes_the_roots_of_checkpoints(tmp_path, capsys):
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from audit.models import AuditCheckpoint
    from audit.verification import TREE_ROOT, verify_chain

    _events(12)
    forged = _forged_root_checkpoint(7)
    AuditCheckpoint.objects.all().delete()
    assert verify_chain().ok
    assert verify_chain(checkpoints=[checkpoints.parse(forged)]).reason == TREE_ROOT
    path = tmp_path / "copy.jsonl"
    path.write_text(json.dumps(forged) + "\n")
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit", "--checkpoints", str(path))
    assert "root_hash is not the Merkle root" in str(failure.value)
    good = checkpoints.as_served(_checkpoint(12))
    path.write_text(json.dumps(good) + "\n")
    call_command("verify_audit", "--checkpoints", str(path))
    assert "audit chain intact: 12 events" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_note_that_does_not_match_its_fields_is_a_bad_signature():
    from audit.verification import CHECKPOINT_SIGNATURE, verify_chain

    _events(5)
    served = checkpoints.as_served(_checkpoint(5))
    other = checkpoints.as_served(_checkpoint(4))
    mixed = checkpoints.parse({**served, "note": other["note"]})
    assert verify_chain(checkpoints=[mixed]).reason == CHECKPOINT_SIGNATURE


def _event_scans(queries) -> list[str]:
    """The queries that read a range of events (the verification's and the extension's streams)."""
    sqls = [q["sql"].replace('"', "") for q in queries]
    return [sql for sql in sqls if "FROM audit_auditevent" in sql and "sequence >" in sql]


@pytest.mark.django_db
def test_the_checkpoint_job_reads_the_new_events_once_and_writes_the_nodes_it_verified():
    from audit.tasks import verify_and_checkpoint

    _events(13)
    _checkpoint(5)  # stored tree of 5 leaves; the next checkpoint verifies and extends from there
    _events(18)
    with CaptureQueriesContext(connection) as job:
        result, made = verify_and_checkpoint()
    assert result.ok and made is not None and made.sequence == 31
    assert len(_event_scans(job.captured_queries)) == 1  # one stream, for both the chain and the tree
    inputs = _inputs()
    expected = {
        tree.node_id(level, index): rfc9162.mth(inputs[index << level : (index + 1) << level])
        for level in range(1, 5)
        for index in range(31 >> level)
    }
    assert {k: bytes(v) for k, v in AuditTreeNode.objects.values_list("id", "hash")} == expected
    assert base64.b64decode(checkpoints.as_served(made)["root_hash"]) == rfc9162.mth(inputs)


@pytest.mark.django_db
def test_computed_nodes_that_do_not_start_at_the_stored_size_are_not_used():
    """The tree grew meanwhile (another checkpoint): the computed nodes are stale, the events are read."""
    from audit.verification import verify_chain

    _events(12)
    _checkpoint(4)
    result = verify_chain(incremental=True, extension=True)
    assert result.extension is not None and (result.extension.start, result.extension.size) == (4, 12)
    assert tree.extend(8) == 4
    with CaptureQueriesContext(connection) as extending:
        assert tree.extend(12, result.extension) == 4
    assert len(_event_scans(extending.captured_queries)) == 1
    for size in range(13):
        assert tree.root(size) == rfc9162.mth(_inputs()[:size])


@pytest.mark.django_db
def test_no_checkpoint_is_signed_over_an_altered_tree():
    from audit.models import AuditCheckpoint
    from audit.tasks import verify_and_checkpoint
    from audit.verification import TREE_NODE

    from .conftest import raw

    _events(8)
    first = _checkpoint(8)
    _events(5)
    # someone rewrites a stored subtree that the previous checkpoint covers
    raw("UPDATE audit_audittreenode SET hash = %s WHERE id = %s", [bytes(32), tree.node_id(3, 0)])
    with pytest.raises(checkpoints.Inconsistent):
        checkpoints.create(sequence=13, hash_=AuditEvent.objects.get(sequence=13).hash, verified=False)
    result, made = verify_and_checkpoint()
    assert made is None and not result.ok and result.reason == TREE_NODE  # caught while verifying
    assert list(AuditCheckpoint.objects.values_list("id", flat=True)) == [first.id]


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["altered", "deleted"])
def test_verification_recomputes_every_stored_node(how):
    from audit.verification import TREE_NODE, verify_chain

    from .conftest import raw

    _events(12)
    _checkpoint(12)
    assert verify_chain().ok
    # a subtree no checkpoint's root alone reveals (inside the first 8 leaves): only proofs would break
    if how == "altered":
        raw("UPDATE audit_audittreenode SET hash = %s WHERE id = %s", [bytes(32), tree.node_id(1, 2)])
    else:
        raw("DELETE FROM audit_audittreenode WHERE id = %s", [tree.node_id(1, 2)])
    result = verify_chain()
    assert not result.ok and result.reason == TREE_NODE and result.bad_sequence == 6
    assert "stored node of the Merkle tree" in result.summary()


@pytest.mark.django_db
def test_a_tree_truncated_below_the_latest_checkpoint_is_a_clear_503_and_fails_verification(iom, auditor):
    """The stored tree cut below a signed size (its nodes and its size, as a database owner could): the
    proofs answer 503 ``audit-tree-unavailable`` problem+json, never a 500; verify_audit names the cause."""
    from audit.models import AuditTreeState
    from audit.verification import TREE_TRUNCATED, verify_chain

    events = _events(21)
    _checkpoint(21)
    assert verify_chain().ok
    AuditTreeNode.objects.all().delete()
    AuditTreeState.objects.filter(id=1).update(size=0)
    response = auditor(iom).get(INCLUSION, {"event": str(events[3].id), "tree_size": "21"})
    body = assert_problem(response, 503, "audit-tree-unavailable")
    assert "truncated" in body["detail"]
    assert_problem(auditor(iom).get(CONSISTENCY, {"from": "4", "to": "21"}), 503, "audit-tree-unavailable")
    result = verify_chain()
    assert not result.ok and result.reason == TREE_TRUNCATED and result.bad_sequence == 21
    assert "fewer events than a signed checkpoint" in result.summary()
