"""The embedded default with real processes (contract §2, §7.1): without ``REDIS_URL`` and with no further
setting, ``manage.py runserver`` and gunicorn on ``config.wsgi`` deliver a webhook within 10 s of the send
that caused it; other management commands never start the relay; ``NOTIFICATIONS_RELAY_THREAD=false``
switches it off.

One SQLite file (migrated, two institutions and their API clients) serves every test of the module; each
server is a process group of its own (runserver's autoreloader runs the server in a child), stopped by its
id at the end of its test."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.factories import consent_json, subject_json
from tests.processes import stop_group

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
DEADLINE_SECONDS = 10.0
STARTED = "embedded notification relay started"

pytestmark = [pytest.mark.timeout(300)]

SETUP = """
import io
from django.core.management import call_command
call_command("migrate", verbosity=0)
for code in ("IOM", "DP"):
    call_command("create_institution", code, code)
for code, scopes in (("IOM", "referrals:read,referrals:write"), ("DP", "referrals:read,webhooks:manage")):
    out = io.StringIO()
    call_command("create_api_client", code, code + " system", scopes=scopes, stdout=out)
    print(code, out.getvalue().strip().splitlines()[-1])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedded_env(tmp: Path, **extra) -> dict:
    """The environment of the embedded default: no broker, no relay setting, a SQLite file."""
    drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "NOTIFICATIONS_RELAY_THREAD"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        VAR_DIR=str(tmp / "var"),
        HOME=str(tmp),  # gunicorn keeps its control socket under the home directory
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _manage(tmp: Path, *args, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_embedded_env(tmp, **extra),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embedded")
    result = _manage(tmp, "shell", "-c", SETUP)
    assert result.returncode == 0, result.stderr[-2000:]
    tokens = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line[:3] in ("IOM", "DP "))
    assert set(tokens) == {"IOM", "DP"}, result.stdout
    assert STARTED not in result.stderr  # shell, migrate and the bootstrap commands: no relay
    return {"tmp": tmp, "tokens": tokens}


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 — the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((time.monotonic(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A partner's webhook endpoint on a free local port: the (time, payload) of every POST."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def _serving(command: list[str], tmp: Path, log_name: str, port: int, **extra):
    """Runs ``command`` (a server) in a process group of its own until it accepts connections on ``port``;
    yields the path of its log; stops the group at the end."""
    log_path = tmp / log_name
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_embedded_env(tmp, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "not started: " + log_path.read_text()[-3000:]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            yield log_path
        finally:
            stop_group(proc)


def _api(port: int, token: str, method: str, path: str, body=None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 — a local test server
        return json.loads(response.read() or b"{}")


def _send_and_wait(port: int, site: dict, receiver) -> float:
    """DP subscribes to ``referral.requested``; IOM creates and sends a referral to DP. Returns the seconds
    from the send's response to the webhook's arrival (fails after the contract's 10 s)."""
    tokens = site["tokens"]
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    _api(port, tokens["DP"], "POST", "/webhooks/", {"url": url, "events": ["referral.requested"]})
    case = _api(port, tokens["IOM"], "POST", "/cases/", {"subject": subject_json(), "summary": "Resumen"})
    referral = _api(
        port,
        tokens["IOM"],
        "POST",
        "/referrals/",
        {
            "case": case["id"],
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "urgent",
            "reason": "Motivo",
            "consent": consent_json(["identity"]),
        },
    )
    _api(port, tokens["IOM"], "POST", f"/referrals/{referral['id']}/send/", {})
    sent = time.monotonic()
    while time.monotonic() - sent < DEADLINE_SECONDS:
        for at, payload in list(receiver.received):
            if referral["id"] in json.dumps(payload):
                return at - sent
        time.sleep(0.1)
    raise AssertionError(f"no webhook within {DEADLINE_SECONDS} s of the send: {receiver.received!r}")


def test_runserver_delivers_within_10_seconds_without_any_setting(site, receiver):
    port = _free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]  # with its autoreloader
    with _serving(command, site["tmp"], "runserver.log", port) as log:
        elapsed = _send_and_wait(port, site, receiver)
        text = log.read_text()
    assert elapsed <= DEADLINE_SECONDS
    assert text.count(STARTED) == 1, text[-3000:]  # the serving child only, not the reloader


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed in .venv")
def test_gunicorn_on_config_wsgi_delivers_within_10_seconds_without_any_setting(site, receiver):
    port = _free_port()
    command = [str(GUNICORN), "config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    with _serving(command, site["tmp"], "gunicorn.log", port) as log:
        elapsed = _send_and_wait(port, site, receiver)
        text = log.read_text()
    assert elapsed <= DEADLINE_SECONDS
    assert text.count(STARTED) == 1, text[-3000:]


def test_the_setting_false_switches_the_relay_off(site):
    port = _free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with _serving(command, site["tmp"], "off.log", port, NOTIFICATIONS_RELAY_THREAD="false") as log:
        # The handler (config.wsgi) is loaded before the port opens: a relay would have said so by now.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).read()  # noqa: S310
        text = log.read_text()
    assert "Starting development server" in text and STARTED not in text, text[-3000:]


def test_other_management_commands_start_no_relay(site):
    probe = "import threading; print(sorted(t.name for t in threading.enumerate()))"
    result = _manage(site["tmp"], "shell", "-c", probe)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MainThread" in result.stdout and "notifications-relay" not in result.stdout
    for args in (("migrate", "--check"), ("check",)):
        result = _manage(site["tmp"], *args)
        assert result.returncode == 0, result.stderr[-2000:]
        assert STARTED not in result.stderr + result.stdout
