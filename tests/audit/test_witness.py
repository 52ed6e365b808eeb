"""``manage.py audit_witness`` against a live server (pytest-django's ``live_server``, 127.0.0.1): a good
run cosigns and stores; a truncated log and a forked log are refused (exit 1, nothing cosigned)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import checkpoints
from audit.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditCosignature,
    AuditEvent,
    AuditTreeNode,
    AuditTreeState,
)
from audit.recorder import record

from .conftest import raw, triggers_dropped

pytestmark = pytest.mark.django_db(transaction=True)


def _events(n: int) -> None:
    for i in range(n):
        record(actor_type="system", action="test.event", institutions=["IOM"], detail={"n": i})


def _checkpoint() -> AuditCheckpoint:
    head = AuditEvent.objects.order_by("-sequence").first()
    return checkpoints.create(sequence=head.sequence, hash_=head.hash, verified=False)


@pytest.fixture
def witness(live_server, dp, make_token, tmp_path, capsys):
    """``witness(init=False)`` → runs the command as the DP's witness of this log: (exit code, output)."""
    token = make_token(dp, ["audit:read"])
    state = tmp_path / "witness.json"

    def run(init: bool = False):
        args = [live_server.url, "--token", token, "--state", str(state)]
        if init:
            args += ["--init", checkpoints.public_key_document()["vkey"], "--name", "dp.example.org/witness"]
        try:
            call_command("audit_witness", *args)
            code = 0
        except CommandError as exc:
            code = exc.returncode
            print(exc)  # noqa: T201 — into the captured output
        out = capsys.readouterr()
        return code, out.out + out.err

    run.state = state
    return run


def _cut_after(sequence: int) -> None:
    """A hostile database administrator: triggers lifted, events after ``sequence`` deleted, the head, the
    stored tree and the database's own checkpoints rewound, so that the log looks whole."""
    last = AuditEvent.objects.get(sequence=sequence)
    with triggers_dropped():
        raw("DELETE FROM audit_auditevent WHERE sequence > %s", [sequence])
    AuditChainHead.objects.filter(id=1).update(sequence=sequence, last_hash=last.hash)
    AuditCheckpoint.objects.all().delete()
    AuditCosignature.objects.all().delete()
    AuditTreeNode.objects.all().delete()
    AuditTreeState.objects.all().delete()


def test_a_good_run_cosigns_and_the_next_checks_consistency(witness):
    _events(10)
    first = _checkpoint()
    code, out = witness(init=True)
    assert code == 0, out
    assert "cosigned tree size 10 (first checkpoint witnessed)" in out
    stored = AuditCosignature.objects.get()
    assert stored.tree_size == 10 and stored.vkey.startswith("dp.example.org/witness+")
    state = json.loads(witness.state.read_text())
    assert state["checkpoint"]["tree_size"] == 10
    assert state["checkpoint"]["root_hash"] == first.root_hash
    assert oct(witness.state.stat().st_mode & 0o777) == "0o600"

    _events(7)
    _checkpoint()
    code, out = witness()
    assert code == 0, out
    assert "cosigned tree size 17 (consistent with tree size 10)" in out
    assert list(AuditCosignature.objects.values_list("tree_size", flat=True)) == [10, 17]
    served = checkpoints.as_served(checkpoints.latest())
    assert served["cosignatures"][0]["vkey"] == stored.vkey
    assert served["note"].count("\u2014 dp.example.org/witness ") == 1

    code, out = witness()  # nothing new: the same checkpoint is cosigned again, consistently
    assert code == 0, out


def test_init_refuses_to_overwrite_the_pinned_key(witness):
    _events(2)
    _checkpoint()
    assert witness(init=True)[0] == 0
    code, out = witness(init=True)
    assert code == 1 and "exists already" in out


def test_a_checkpoint_signed_by_another_key_is_refused(witness, settings):
    _events(3)
    _checkpoint()
    assert witness(init=True)[0] == 0
    settings.AUDIT_SIGNING_KEY = bytes(range(32))  # the log's key replaced (or a forger's)
    _events(2)
    AuditCheckpoint.objects.all().delete()
    _checkpoint()
    code, out = witness()
    assert code == 1 and "does not verify with the pinned key" in out
    assert list(AuditCosignature.objects.values_list("tree_size", flat=True)) == [3]


def test_a_truncated_log_is_refused(witness):
    _events(10)
    _checkpoint()
    assert witness(init=True)[0] == 0
    _cut_after(6)
    _checkpoint()  # the log now signs tree size 6
    before = witness.state.read_text()
    code, out = witness()
    assert code == 1
    assert "the log shrank: tree size 6 after 10" in out
    assert not AuditCosignature.objects.exists()
    assert witness.state.read_text() == before  # the witness keeps the checkpoint it trusts


def test_a_forked_log_is_refused(witness):
    _events(10)
    _checkpoint()
    assert witness(init=True)[0] == 0
    _cut_after(6)
    _events(8)  # another history from sequence 7 on, longer than what the witness saw
    _checkpoint()
    code, out = witness()
    assert code == 1
    assert "tree size 14 is not consistent with 10" in out and "forked" in out
    assert not AuditCosignature.objects.exists()
    assert json.loads(witness.state.read_text())["checkpoint"]["tree_size"] == 10


def test_the_same_size_with_another_root_is_refused(witness):
    _events(10)
    _checkpoint()
    assert witness(init=True)[0] == 0
    _cut_after(6)
    _events(4)
    _checkpoint()
    code, out = witness()
    assert code == 1 and "not consistent" in out
    assert not AuditCosignature.objects.exists()
