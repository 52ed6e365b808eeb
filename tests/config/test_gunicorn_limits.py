"""scripts/web serves with ``--limit-request-line 8190``: a request line of 6 KiB (a long cursor and filters)
reaches Django, one beyond 8190 bytes is refused by gunicorn itself. Runs the real entrypoint, with its
``manage.py`` steps (migrate, collectstatic) replaced by a no-op interpreter."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"

pytestmark = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed in .venv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, target: str) -> tuple[int, bytes]:
    """The status code and the raw head of the response to one GET (sent as is, whatever its length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    return int(head.split(b" ", 2)[1]), head


@pytest.fixture
def web(tmp_path):
    """scripts/web on a free port: its manage.py steps are skipped, gunicorn is the real one."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    python = fake_bin / "python"
    python.write_text("#!/bin/sh\nexit 0\n")  # migrate and collectstatic: not this test's business
    python.chmod(0o755)
    (fake_bin / "gunicorn").symlink_to(GUNICORN)
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        VENV_PYTHON=str(python),
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        WEB_THREADS="1",
        DJANGO_SETTINGS_MODULE="config.settings.test",
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    log = (tmp_path / "web.log").open("w")
    proc = subprocess.Popen([str(ROOT / "scripts" / "web")], cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(20)
    log.close()


def test_the_request_line_limit_is_8190(web):
    # Above gunicorn's default of 4094: reaches Django, which answers as the API does (no token → 401).
    status, head = _get(web, "/api/v1/referrals/?cursor=" + "A" * 6000)
    assert status == 401 and b"application/problem+json" in head
    # Just below and just above the limit (the line is "GET <target> HTTP/1.1").
    fits = 8190 - len("GET  HTTP/1.1")
    status, _head = _get(web, "/api/v1/referrals/?cursor=" + "A" * (fits - len("/api/v1/referrals/?cursor=")))
    assert status == 401
    status, head = _get(web, "/api/v1/referrals/?cursor=" + "A" * 8200)
    assert status == 414 and b"problem+json" not in head  # refused by gunicorn before Django


def test_the_script_keeps_its_other_options():
    script = (ROOT / "scripts" / "web").read_text()
    for option in (
        "--limit-request-line 8190",
        "--timeout 30",
        "--graceful-timeout 20",
        "--max-requests 2000",
        "--access-logfile -",
    ):
        assert option in script
