"""``manage.py audit_archive --before YYYY-MM``: closed months as JSON-lines segments with their checkpoints,
verified offline (from the files alone, no database) by ``verify_audit --segment``."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

import pytest
from django.core.management import call_command, execute_from_command_line
from django.utils import timezone

from audit import checkpoints, recorder
from audit.archive import verify_segment
from audit.models import AuditEvent

UTC = datetime.UTC


@pytest.fixture
def months(db, monkeypatch):
    """Events in two closed months (September and October of last year) and in the current month."""
    now = timezone.now()
    year = now.year - 1
    moments = [datetime.datetime(year, 9, d, 12, tzinfo=UTC) for d in (1, 15, 30)]
    moments += [datetime.datetime(year, 10, d, 8, tzinfo=UTC) for d in (1, 2, 20, 31)]
    for n, moment in enumerate(moments):
        monkeypatch.setattr(recorder, "timezone", SimpleNamespace(now=lambda moment=moment: moment))
        recorder.record(actor_type="system", action="test.event", institutions=["IOM"], detail={"n": n})
        if n in (2, 5):  # checkpoints signed along the way: one at the end of September, one in October
            head = AuditEvent.objects.order_by("-sequence").first()
            checkpoints.create(sequence=head.sequence, hash_=head.hash, verified=False)
    monkeypatch.setattr(recorder, "timezone", timezone)
    recorder.record(actor_type="system", action="test.event", detail={"n": "now"})
    return {"year": year, "current": now.strftime("%Y-%m")}


@pytest.fixture
def verify(capsys, monkeypatch):
    from django.core.management import base

    monkeypatch.setattr(base.connections, "close_all", lambda: None)

    def run(*paths):
        args = [item for path in paths for item in ("--segment", str(path))]
        try:
            execute_from_command_line(["manage.py", "verify_audit", *args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def archived(months, tmp_path, capsys):
    call_command("audit_archive", "--before", months["current"], "--dir", str(tmp_path))
    out = capsys.readouterr().out
    year = months["year"]
    september, october = tmp_path / f"audit-{year}-09.jsonl", tmp_path / f"audit-{year}-10.jsonl"
    assert "2 segment(s) written" in out
    return september, october


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_round_trip(archived, verify, django_assert_num_queries):
    september, october = archived
    sep, octo = _lines(september), _lines(october)
    assert sep[0]["segment"]["first_sequence"] == 1 and sep[0]["segment"]["last_sequence"] == 3
    assert octo[0]["segment"]["first_sequence"] == 4 and octo[0]["segment"]["last_sequence"] == 7
    assert [line["event"]["sequence"] for line in sep[1:4]] == [1, 2, 3]
    assert [line["checkpoint"]["sequence"] for line in sep if "checkpoint" in line] == [3]
    assert [line["checkpoint"]["sequence"] for line in octo if "checkpoint" in line] == [6]
    stored = AuditEvent.objects.get(sequence=2)
    assert sep[2]["event"]["id"] == str(stored.id) and sep[2]["event"]["hash"] == stored.hash
    with django_assert_num_queries(0):  # offline: the files alone
        assert verify_segment(september).ok and verify_segment(october).ok
    code, out, err = verify(september, october)
    assert code == 0, err
    assert "month" in out and "4 events, sequence 4..7, 1 signed checkpoints" in out


def test_an_altered_event_line(archived, verify):
    september, _ = archived
    lines = september.read_text().splitlines()
    event = json.loads(lines[2])
    event["event"]["outcome"] = "denied"
    lines[2] = json.dumps(event)
    september.write_text("\n".join(lines) + "\n")
    code, _out, err = verify(september)
    assert code == 1 and "broken at sequence 2" in err and "altered" in err


def test_a_removed_event_line(archived, verify):
    _, october = archived
    lines = october.read_text().splitlines()
    del lines[4]  # the last event of October
    october.write_text("\n".join(lines) + "\n")
    code, _out, err = verify(october)
    assert code == 1 and "ends before the last sequence" in err


def test_segments_must_link_in_order(archived, verify):
    september, october = archived
    code, _out, err = verify(october, september)
    assert code == 1 and "not the previous segment's last hash" in err


def test_a_forged_checkpoint_line(archived, verify):
    september, _ = archived
    lines = september.read_text().splitlines()
    checkpoint = json.loads(lines[-1])
    checkpoint["checkpoint"]["at"] = "2000-01-01T00:00:00Z"
    lines[-1] = json.dumps(checkpoint)
    september.write_text("\n".join(lines) + "\n")
    code, _out, err = verify(september)
    assert code == 1 and "signature does not verify" in err


def test_not_a_segment(tmp_path, verify, db):
    path = tmp_path / "other.jsonl"
    path.write_text("hello\n")
    code, _out, err = verify(path)
    assert code == 1 and "not an audit segment" in err


@pytest.mark.parametrize("before", ["2999-01", "2026-13", "soon"])
def test_only_closed_months_and_a_valid_month(months, tmp_path, before):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("audit_archive", "--before", before, "--dir", str(tmp_path))


def test_rerunning_rewrites_the_same_files(archived, months, tmp_path, capsys):
    september, october = archived
    first = september.read_bytes(), october.read_bytes()
    call_command("audit_archive", "--before", months["current"], "--dir", str(tmp_path))
    assert (september.read_bytes(), october.read_bytes()) == first
