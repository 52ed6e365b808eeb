"""The federation outbox between two real nodes (issue 23's delivery targets): catching up after the peer
was down, and the delay from enqueue to delivery with the embedded relay (no Redis).

    .venv/bin/python bench/federation_outbox.py               # 1,000 waiting, then 30 one by one
    .venv/bin/python bench/federation_outbox.py --waiting 200 --live 10 --relay-interval 1

Two gunicorn servers (one worker each, as ``./scripts/run``) on two SQLite databases in a temporary directory,
their own keys, paired. Node A (IOM) queues ``--waiting`` sealed pings while B (DP) is down; B starts; the
figure is messages per second from B's first answer to A's outbox empty (A's relay every
``--relay-interval`` seconds, by default the default, 3). Then, both up, ``--live`` pings are queued one at a
time: enqueue-to-delivered delay (A's timestamps), median and p95. Each server is a process group of its
own, stopped by its id at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, name: str, code: str, tmp: Path):
        self.name, self.code, self.tmp, self.port = name, code, tmp, _free_port()
        self.workers = 1  # gunicorn worker processes (``./scripts/run``: one)
        self.gunicorn_args: list[
            str
        ] = []  # more of gunicorn's options (e.g. ``--config bench/request_cpu.py``)
        self.proc: subprocess.Popen | None = None  # the server while ``serving``
        self.url = f"http://127.0.0.1:{self.port}"
        keys = {k: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() for k in ("s", "e")}
        drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}
        self.env = {
            k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("NODE_", "FED"))
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=f"sqlite:///{tmp / name / 'db.sqlite3'}",
            VAR_DIR=str(tmp / name),
            SITE_URL=self.url,
            NODE_URL=self.url,
            NODE_SIGNING_KEY=keys["s"],
            NODE_ENCRYPTION_KEY=keys["e"],
            FEDERATION_ALLOW_PRIVATE_URLS="true",
        )

    def manage(self, *args) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode:
            raise SystemExit(result.stderr[-2000:])
        return result.stdout

    def shell(self, code: str):
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (its process group), from /proc."""
        if self.proc is None:
            return 0.0
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # the process group
                    ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    @contextlib.contextmanager
    def serving(self):
        log = (self.tmp / f"{self.name}.log").open("w")
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", "8", "--no-control-socket", *self.gunicorn_args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.proc = proc
        try:
            while True:
                try:
                    with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit((self.tmp / f"{self.name}.log").read_text()[-3000:]) from None
                    time.sleep(0.2)
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            self.proc = None
            log.close()


ENQUEUE = """
import json
from django.db import transaction
from federation import services
from federation.models import Peer
peer = Peer.objects.get()
with transaction.atomic():
    for i in range({n}):
        services.enqueue(peer, "ping", {{"echo": "x" * 200}}, sealed=True)
print(json.dumps({n}))
"""
WAITING = (
    "import json; from federation.models import Outgoing; "
    "print(json.dumps(Outgoing.objects.filter(state='waiting').count()))"
)
DELAYS = (
    "import json; from federation.models import Outgoing; "
    "rows = Outgoing.objects.filter(state='delivered').order_by('-id')[:{n}]; "
    "print(json.dumps([(r.delivered_at - r.created_at).total_seconds() for r in rows]))"
)
FIRST_RECEIVED = (
    "import json; from federation.models import Message; "
    "m = Message.objects.filter(direction='received').order_by('created_at').first(); "
    "print(json.dumps(m.created_at.timestamp() if m else None))"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--live", type=int, default=30)
    parser.add_argument("--relay-interval", type=float, default=3.0, help="A's NOTIFICATIONS_RELAY_INTERVAL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        a, b = Node("iom", "IOM", tmp), Node("dp", "DP", tmp)
        a.env["NOTIFICATIONS_RELAY_INTERVAL"] = str(args.relay_interval)
        for node in (a, b):
            node.manage("migrate", "--noinput", "-v0")
            node.manage("create_institution", node.code, node.code)
        card_a = a.manage("federation_card").strip().splitlines()[-1]
        card_b = b.manage("federation_card").strip().splitlines()[-1]
        a.manage("federation_peer_add", card_b)
        b.manage("federation_peer_add", card_a)
        with a.serving():
            a.shell(ENQUEUE.format(n=args.waiting))
            time.sleep(4)  # A's relay finds B down at least once
            with b.serving():
                while a.shell(WAITING):
                    time.sleep(0.5)
                done = time.time()
                first = b.shell(FIRST_RECEIVED)
                rate = args.waiting / (done - first)
                print(
                    f"catch-up: {args.waiting} sealed pings in {done - first:.1f} s = {rate:.0f} messages/s"
                )
                for _ in range(args.live):
                    a.shell(ENQUEUE.format(n=1))
                    while a.shell(WAITING):
                        time.sleep(0.1)
                delays = sorted(a.shell(DELAYS.format(n=args.live)))
                p95 = delays[min(len(delays) - 1, int(round(0.95 * len(delays))) - 1)]
                print(
                    f"enqueue to delivered, embedded relay ({args.relay_interval:g} s interval), "
                    f"{args.live} one at a time: "
                    f"median {statistics.median(delays):.2f} s, p95 {p95:.2f} s, max {delays[-1]:.2f} s"
                )


if __name__ == "__main__":
    main()
