"""scripts/web serves with ``--limit-request-line 8190``: a request line of 6 KiB (a long cursor and filters)
reaches Django, one beyond 8190 bytes is refused by gunicorn itself; and it leaves no control socket in the
home directory (gunicorn 25.1+ creates ``~/.gunicorn/gunicorn.ctl`` unless told not to). Runs the real
entrypoint, with its ``manage.py`` steps (migrate, collectstatic) replaced by a no-op interpreter.

scripts/run (the embedded one-command start) is run with every command it calls stubbed: its messages and
its gunicorn options."""

from __future__ import annotations

import os
import shutil
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
    (tmp_path / "home").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "DJANGO_SETTINGS_MODULE", "XDG_RUNTIME_DIR"}
    }
    env.update(
        VENV_PYTHON=str(python),
        HOME=str(tmp_path / "home"),
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


def _post_chunked(port: int, target: str, body: bytes, content_type: str) -> tuple[int, bytes, bytes]:
    """The status, head and body of a POST whose body is sent chunked (no Content-Length), 64 KiB a chunk."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for start in range(0, len(body), 65536):
                chunk = body[start : start + 65536]
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (413) before the whole body was sent
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, rest


def test_a_chunked_body_over_1_mib_is_413_through_gunicorn(web):
    """gunicorn decodes the chunks; the WSGI guard of config/wsgi.py reads at most 1 MiB + 1 byte and Django
    refuses the rest: problem+json under /api/, the page in the web."""
    big = b'{"summary": "' + b"x" * (1024 * 1024) + b'"}'
    status, head, body = _post_chunked(web, "/api/v1/cases/", big, "application/json")
    assert status == 413 and b"application/problem+json" in head, head
    assert b"/problems/payload-too-large" in body
    # A small chunked body is read whole and reaches the API (no token here: 401, not 400 or 413).
    status, head, _body = _post_chunked(web, "/api/v1/cases/", b'{"summary": "s"}', "application/json")
    assert status == 401 and b"application/problem+json" in head
    form = b"username=x&password=" + b"y" * (1024 * 1024)
    status, head, body = _post_chunked(web, "/accounts/login/", form, "application/x-www-form-urlencoded")
    assert status == 413 and b"text/html" in head, head
    assert b"demasiado grande" in body


def test_the_script_keeps_its_other_options():
    script = (ROOT / "scripts" / "web").read_text()
    for option in (
        "--limit-request-line 8190",
        "--timeout 30",
        "--graceful-timeout 20",
        "--max-requests 2000",
        "--access-logfile -",
        "--no-control-socket",
    ):
        assert option in script


def test_no_control_socket_is_left_in_the_home_directory(web, tmp_path):
    status, _head = _get(web, "/healthz")  # the workers are up: the arbiter has finished starting
    assert status in (200, 503)
    time.sleep(1)
    assert list((tmp_path / "home").rglob("*")) == []  # neither ~/.gunicorn/ nor gunicorn.ctl


def _run_embedded(tmp_path, **env_overrides) -> tuple[str, list[str]]:
    """scripts/run in a scratch copy where bootstrap, python and gunicorn are stubs: output, gunicorn args."""
    tmp_path = tmp_path / str(len(list(tmp_path.iterdir())))
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "run", repo / "scripts" / "run")
    calls = tmp_path / "gunicorn.args"
    stubs = {
        repo / "scripts" / "bootstrap": "exit 0",
        repo / ".venv" / "bin" / "python": "exit 0",
        repo / ".venv" / "bin" / "gunicorn": f'printf "%s\\n" "$@" > {calls}',
    }
    for path, body in stubs.items():
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VAR_DIR"}}
    env.update(env_overrides)
    result = subprocess.run(
        ["bash", str(repo / "scripts" / "run")], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, calls.read_text().split()


def test_scripts_run_names_the_database_it_migrates(tmp_path):
    out, args = _run_embedded(tmp_path)
    assert "==> migrating the database (var/db.sqlite3)" in out
    assert "--no-control-socket" in args
    url = "postgres://rcm:s3cret@db.example.org:5432/rcm"
    out, _args = _run_embedded(tmp_path, DATABASE_URL=url)
    assert "==> migrating the database named by DATABASE_URL" in out
    assert "sqlite" not in out and "s3cret" not in out and "example.org" not in out
