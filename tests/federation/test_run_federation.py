"""``./scripts/run --federation`` for real: two nodes start on two ports, each with its own SQLite database
and keys, paired by exchanging cards, with demo data for the one institution each hosts; both answer, and
each one's ``federation_status`` shows the other (in contact: the script pings each way). Referrals cross:
IOM's demo referrals to the Defensoría are at DP's node with the consented fields only, one accepted there
(and so at IOM's node, their authority), DP's note on another at IOM's node. The script runs in a process
group of its own, stopped by its id at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import stop_group

from .test_two_nodes import _free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.timeout(600)]


def _node_env(base: Path, name: str, port: int) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env = {k: v for k, v in env.items() if not k.startswith(("NODE_", "FEDERATION_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(base / name),
        DATABASE_URL=f"sqlite:///{base / name / 'db.sqlite3'}",
        NODE_URL=f"http://127.0.0.1:{port}",
    )
    return env


def _manage(base: Path, name: str, port: int, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_node_env(base, name, port),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# A node's referrals between IOM and DP, as stored (the copy at DP's node holds only consented fields).
REFERRALS = """
import json
from referrals.models import Referral, Subject
rows = []
for r in Referral.objects.filter(from_institution__code="IOM", to_institution__code="DP").order_by("id"):
    s = Subject.objects.get(case=r.case)
    rows.append({"reference": r.reference, "status": r.status, "version": r.version, "services": r.services,
                 "from_node": r.from_institution.node, "to_node": r.to_institution.node,
                 "assignee": r.assignee.username if r.assignee else None,
                 "notes": [n.author_institution.code for n in r.notes.all()],
                 "subject": {f: bool(getattr(s, f)) for f in ("given_name", "phone", "document_number",
                                                               "protection_needs")}})
print(json.dumps(rows))
"""


def test_run_federation_starts_two_paired_nodes_with_their_own_demo_data(tmp_path):
    base = tmp_path / "fed"
    port_iom, port_dp = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(FEDERATION_DIR=str(base), PORT_IOM=str(port_iom), PORT_DP=str(port_dp), HOME=str(tmp_path))
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["./scripts/run", "--federation"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "Two federated nodes running" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, "not started: " + log_path.read_text()[-4000:]
            time.sleep(0.5)
        output = log_path.read_text()
        assert f"http://127.0.0.1:{port_iom}/" in output and f"http://127.0.0.1:{port_dp}/" in output
        assert "iom.caseworker" in output and "dp.caseworker" in output and "demo-pass-2026" in output
        assert "Referral case manager running at" not in output  # not the single node of ./scripts/run
        for port in (port_iom, port_dp):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
                assert response.status == 200

        def peer_line(name, port, peer_port):
            status = _manage(base, name, port, "federation_status")
            return next(x for x in status.splitlines() if x.startswith(f"http://127.0.0.1:{peer_port} "))

        # Each node announces its first checkpoint to the other through the outbox; one made before the other
        # node listened is retried with backoff (at most 30 s apart): the outboxes empty within a minute.
        deadline = time.monotonic() + 60
        while True:
            lines = peer_line("iom", port_iom, port_dp), peer_line("dp", port_dp, port_iom)
            if all("waiting 0" in line for line in lines) or time.monotonic() > deadline:
                break
            time.sleep(1)
        for line, code in zip(lines, ("DP", "IOM"), strict=True):
            assert f"institutions {code} " in line and "waiting 0" in line
            assert "last contact never" not in line

        # Each node has its own keys and hosts its own institution only, with its own demo data.
        cards = [
            json.loads(_manage(base, name, port, "federation_card").strip().splitlines()[-1])
            for name, port in (("iom", port_iom), ("dp", port_dp))
        ]
        assert [c["institutions"] for c in cards] == [["IOM"], ["DP"]]
        assert cards[0]["signing_key"] != cards[1]["signing_key"]
        counts = [
            json.loads(
                _manage(
                    base, name, port, "shell", "-c",
                    "import json; from accounts.models import User; from referrals.models import Case; "
                    "staff = User.objects.filter(institution__isnull=False); "
                    "names = sorted(staff.values_list('username', flat=True)); "
                    "print(json.dumps([names, Case.objects.filter(institution__node='').count()]))",
                ).strip().splitlines()[-1]
            )
            for name, port in (("iom", port_iom), ("dp", port_dp))
        ]  # fmt: skip
        assert counts[0][0] == ["iom.admin", "iom.caseworker", "iom.caseworker2", "iom.supervisor"]
        assert counts[1] == [["dp.admin", "dp.caseworker", "dp.supervisor"], 0] and counts[0][1] > 0

        # Referrals crossed: at DP's node, IOM's demo referrals (copies: IOM is a remote institution there)
        # with the consented fields only; the one DP accepted is accepted at IOM's node too; DP's note.
        referrals = {
            name: json.loads(_manage(base, name, port, "shell", "-c", REFERRALS).strip().splitlines()[-1])
            for name, port in (("iom", port_iom), ("dp", port_dp))
        }
        output = log_path.read_text()
        at_iom, at_dp = referrals["iom"], referrals["dp"]
        assert len(at_dp) == 3 and {r["reference"] for r in at_dp} == {r["reference"] for r in at_iom}, output
        assert all(r["from_node"] == f"http://127.0.0.1:{port_iom}" for r in at_dp)
        assert all(r["to_node"] == f"http://127.0.0.1:{port_dp}" for r in at_iom)
        by_service = {r["services"][0]: r for r in at_dp}
        legal = by_service["legal_assistance"]
        assert legal["status"] == "accepted" and legal["assignee"] == "dp.caseworker"
        assert legal["subject"]["protection_needs"] and not legal["subject"]["phone"]  # consented or not
        assert not legal["subject"]["document_number"]
        complaint = by_service["human_rights_complaint"]
        assert complaint["status"] == "requested" and complaint["subject"]["phone"]
        assert complaint["notes"] == ["DP"]
        assert by_service["child_protection"]["subject"]["document_number"]
        assert not by_service["child_protection"]["subject"]["protection_needs"]
        at_iom = {r["reference"]: r for r in at_iom}
        assert at_iom[legal["reference"]]["status"] == "accepted"
        assert at_iom[legal["reference"]]["version"] == legal["version"]
        # DP's note reached IOM's node through DP's outbox (relayed about every second)
        deadline = time.monotonic() + 60
        while at_iom[complaint["reference"]]["notes"] != ["DP"] and time.monotonic() < deadline:
            time.sleep(1)
            rows = _manage(base, "iom", port_iom, "shell", "-c", REFERRALS).strip().splitlines()[-1]
            at_iom = {r["reference"]: r for r in json.loads(rows)}
        assert at_iom[complaint["reference"]]["notes"] == ["DP"]
    finally:
        stop_group(proc, 30)
