""".ci/run empties its Redis database before and after the PostgreSQL + Redis pass, also when that pass
fails. Runs the real script in a scratch copy of the repository where every command it calls (the test
suite, .ci/extra, .ci/smoke, ruff, manage.py, redis-cli, pg_isready) is a stub that logs its call."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STUB = """#!/usr/bin/env bash
echo "{name} $* REDIS_URL=${{REDIS_URL:-}}" >> "$CI_STUB_LOG"
{extra}
exit 0
"""


def _stub(path: Path, name: str, extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUB.format(name=name, extra=extra))
    path.chmod(0o755)


def _run_ci(tmp_path: Path, *, fail_postgres_pass: bool = False) -> tuple[int, list[str]]:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", repo / ".ci" / "run")
    fail = 'if [ -n "${REDIS_URL:-}" ]; then exit 1; fi' if fail_postgres_pass else ""
    _stub(repo / "scripts" / "test", "scripts/test", fail)
    _stub(repo / ".ci" / "extra", ".ci/extra")
    _stub(repo / ".ci" / "smoke", ".ci/smoke")
    _stub(repo / ".venv" / "bin" / "ruff", "ruff")
    _stub(repo / ".venv" / "bin" / "lint-imports", "lint-imports")
    _stub(repo / ".venv" / "bin" / "python", "python")
    bin_dir = tmp_path / "bin"
    _stub(bin_dir / "redis-cli", "redis-cli")
    _stub(bin_dir / "pg_isready", "pg_isready")
    log = tmp_path / "calls.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "DATABASE_URL", "REDIS_URL"))}
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", CI_STUB_LOG=str(log))
    result = subprocess.run(
        ["bash", str(repo / ".ci" / "run")], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    return result.returncode, log.read_text().splitlines()


def _redis_and_pass(calls: list[str]) -> list[str]:
    """The calls that matter: FLUSHDB, the suite on PostgreSQL + Redis, .ci/extra."""
    kept = []
    for call in calls:
        if "FLUSHDB" in call:
            kept.append("flush " + call.split(" -u ", 1)[1].split(" ", 1)[0])
        elif call.startswith(("scripts/test", ".ci/extra")) and "REDIS_URL=redis" in call:
            kept.append(call.split(" ", 1)[0])
    return kept


def test_the_redis_database_is_flushed_before_and_after_the_postgresql_pass(tmp_path):
    code, calls = _run_ci(tmp_path)
    assert code == 0, calls
    assert _redis_and_pass(calls) == [
        "flush redis://127.0.0.1:6379/15",
        "scripts/test",
        ".ci/extra",
        "flush redis://127.0.0.1:6379/15",
    ]
    embedded = [c for c in calls if c.startswith("scripts/test") and c.endswith("REDIS_URL=")]
    assert len(embedded) == 1  # the SQLite pass runs without Redis, before any flush
    assert calls.index(embedded[0]) < next(i for i, c in enumerate(calls) if "FLUSHDB" in c)


def test_the_redis_database_is_flushed_even_when_the_pass_fails(tmp_path):
    code, calls = _run_ci(tmp_path, fail_postgres_pass=True)
    assert code != 0
    assert _redis_and_pass(calls) == [
        "flush redis://127.0.0.1:6379/15",
        "scripts/test",
        "flush redis://127.0.0.1:6379/15",
    ]
