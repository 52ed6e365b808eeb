"""``manage.py verify_audit`` as a separate process on a database file: the real exit status and output."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITE_EVENTS = """
import django
django.setup()
from audit.recorder import record
for n in range(6):
    record(actor_type="system", action="test.process", institutions=["IOM"], detail={"n": n})
"""


def _manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_exit_status_and_output_of_the_command(tmp_path):
    database = tmp_path / "audit.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    assert _manage(env, "migrate", "-v0").returncode == 0
    subprocess.run([sys.executable, "-c", WRITE_EVENTS], cwd=ROOT, env=env, check=True, timeout=120)

    intact = _manage(env, "verify_audit")
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith("audit chain intact: 6 events, sequence 1..6")

    db = sqlite3.connect(database)
    try:
        (victim,) = db.execute("SELECT id FROM audit_auditevent WHERE sequence = 4").fetchone()
        try:
            db.execute("UPDATE audit_auditevent SET detail = '{\"n\": 99}' WHERE sequence = 4")
            raise AssertionError("the trigger let an UPDATE through")
        except sqlite3.DatabaseError as refused:
            assert "append-only" in str(refused)
        db.execute("DROP TRIGGER audit_auditevent_no_update")  # tampering by hand, as the issue says
        db.execute("UPDATE audit_auditevent SET detail = '{\"n\": 99}' WHERE sequence = 4")
        db.commit()
    finally:
        db.close()

    broken = _manage(env, "verify_audit")
    assert broken.returncode == 1
    uuid_text = f"{victim[:8]}-{victim[8:12]}-{victim[12:16]}-{victim[16:20]}-{victim[20:]}"
    assert f"event {uuid_text} (sequence 4)" in broken.stderr
    assert f"event {uuid_text} (sequence 4)" in broken.stdout
