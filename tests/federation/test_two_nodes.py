"""Two real nodes (contract §7.4): two gunicorn servers on two ports, two databases, their own keys, paired
with ``federation_peer_add``; signed pings both ways (clear and sealed), evidence each side can check with
the other's card, a replayed message answered with its first answer, an altered one and one from an unknown
node refused and recorded at the receiver.

The databases are two SQLite files, or — when the suite runs on PostgreSQL (``DATABASE_URL=postgres://…``)
— the databases ``wt_fed_a`` and ``wt_fed_b`` on the same server (``FEDERATION_TEST_DATABASES`` may name
two others: ``a,b``), dropped and created here. Each server is a process group of its own, stopped by its
id at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import evidence, protocol
from tests.processes import stop_group

from .conftest import new_remote

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PATH = "/federation/v1/messages/"

pytestmark = [pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _databases(tmp: Path) -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp / 'a.sqlite3'}", f"sqlite:///{tmp / 'b.sqlite3'}"
    import psycopg

    base, _, _name = url.rpartition("/")
    names = os.environ.get("FEDERATION_TEST_DATABASES", "wt_fed_a,wt_fed_b").split(",")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{names[0]}", f"{base}/{names[1]}"


@dataclass
class Node:
    name: str
    code: str
    database: str
    tmp: Path
    port: int = field(default_factory=_free_port)
    signing: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    encryption: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    card: str = ""
    extra: dict = field(default_factory=dict)  # more environment (the relay, the outbox's backoff)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in drop and not k.startswith(("NODE_", "FEDERATION_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=self.database,
            VAR_DIR=str(self.tmp / self.name),
            HOME=str(self.tmp),
            SITE_URL=self.url,
            NODE_URL=self.url,
            NODE_SIGNING_KEY=base64.urlsafe_b64encode(self.signing).decode(),
            NODE_ENCRYPTION_KEY=base64.urlsafe_b64encode(self.encryption).decode(),
            FEDERATION_ALLOW_PRIVATE_URLS="true",
            NOTIFICATIONS_RELAY_THREAD="false",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra)
        return env

    def manage(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result

    def shell(self, code: str):
        return json.loads(self.manage("shell", "-c", code).stdout.strip().splitlines()[-1])

    def refusals(self) -> list[dict]:
        return self.shell(
            "import json; from audit.models import AuditEvent; from audit.sequencer import seal_pending; "
            "seal_pending(wait=True); "  # the node's sequencer thread seals within 0.2 s: do not race it
            "events = AuditEvent.objects.filter(action='federation.refused').order_by('sequence'); "
            "print(json.dumps([dict(e.detail, institutions=e.institutions) for e in events]))"
        )


@contextlib.contextmanager
def _serving(node: Node):
    log_path = node.tmp / f"{node.name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(GUNICORN), "config.wsgi:application", "--bind", f"127.0.0.1:{node.port}", "--workers", "1",
             "--threads", "4", "--no-control-socket"],
            cwd=ROOT, env=node.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "not started: " + log_path.read_text()[-3000:]
                try:
                    with urllib.request.urlopen(node.url + "/healthz", timeout=2):
                        break
                except (OSError, urllib.error.URLError):
                    time.sleep(0.3)
            yield log_path
        finally:
            stop_group(proc)


def pair(a: Node, b: Node) -> None:
    """Two nodes made ready to talk: both migrated (at once), each with its institution, each pinning the
    other's card."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.manage("migrate", "--noinput", "-v0"), (a, b)))
    for node in (a, b):
        node.manage("create_institution", node.code, node.code)
        node.card = node.manage("federation_card").stdout.strip().splitlines()[-1]
    a.manage("federation_peer_add", b.card)
    b.manage("federation_peer_add", a.card)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-nodes")
    db_a, db_b = _databases(tmp)
    a, b = Node("iom", "IOM", db_a, tmp), Node("dp", "DP", db_b, tmp)
    pair(a, b)
    with _serving(a), _serving(b):
        yield a, b


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _as_node(node: Node, to: Node, body: bytes, *, message_id: str | None = None):
    """A message signed with ``node``'s own key (the test holds it), as that node would send it."""
    return protocol.sign_request(
        key=Ed25519PrivateKey.from_private_bytes(node.signing),
        sender=node.url,
        recipient=to.url,
        method="POST",
        path=PATH,
        body=body,
        message_id=message_id or protocol.new_message_id(),
        created=int(time.time()),
    )


def test_signed_pings_both_ways_with_evidence_each_side_can_check(nodes):
    a, b = nodes
    referral = str(uuid.uuid4())
    for sender, receiver, sealed in ((a, b, False), (b, a, True)):
        args = ["federation_ping", receiver.url, "--echo", f"hola from {sender.code}", "--referral", referral]
        out = sender.manage(*args, *(["--sealed"] if sealed else [])).stdout.strip().splitlines()[-1]
        answer = json.loads(out)
        assert answer["status"] == 200 and answer["pong"] is True and answer["sealed"] is sealed
        assert answer["echo"] == f"hola from {sender.code}"

    lines_a = [json.loads(x) for x in a.manage("federation_evidence", referral).stdout.strip().splitlines()]
    lines_b = [json.loads(x) for x in b.manage("federation_evidence", referral).stdout.strip().splitlines()]
    assert [(x["direction"], x["peer"]) for x in lines_a] == [("sent", b.url), ("received", b.url)]
    assert [(x["direction"], x["peer"]) for x in lines_b] == [("received", a.url), ("sent", a.url)]
    # A third party holding only B's card checks what B signed in A's records, and the other way round.
    assert evidence.verify_line(lines_a[0], b.card) == {"response": "verified"}
    assert evidence.verify_line(lines_a[1], b.card) == {"request": "verified"}
    assert evidence.verify_line(lines_b[0], a.card) == {"request": "verified"}
    assert evidence.verify_line(lines_b[1], a.card) == {"response": "verified"}
    # Both sides keep the same signed message: A's "sent" is B's "received", byte for byte.
    assert lines_a[0]["request"] == lines_b[0]["request"] and lines_a[0]["response"] == lines_b[0]["response"]
    # The sealed ping (B → A): no clear text in the evidence.
    assert (
        "hola from DP" not in json.dumps(lines_b[1])
        and "hola" not in base64.b64decode(lines_b[1]["request"]["body"]).decode()
    )

    status = a.manage("federation_status").stdout
    peer_line = next(line for line in status.splitlines() if line.startswith(b.url))
    assert "last contact never" not in peer_line and "failures 0" in peer_line and "waiting 0" in peer_line


def test_replayed_altered_and_unknown_messages(nodes):
    a, b = nodes
    before = len(b.refusals())
    body = json.dumps({"type": "ping", "payload": {"echo": "replay me"}}).encode()
    headers = _as_node(a, b, body)
    first = _post(b.url + PATH, body, headers)
    again = _post(b.url + PATH, body, headers)
    assert first[0] == again[0] == 200
    assert again[2] == first[2] and again[1]["signature"] == first[1]["signature"]  # the first answer
    protocol.verify_response(
        request=protocol.RequestParts("POST", PATH, headers),
        status=200,
        headers=again[1],
        body=again[2],
        public_key=protocol.unb64(json.loads(b.card)["signing_key"]),
        responder=b.url,
    )
    stored = b.shell(
        "import json; from federation.models import Message; "
        f"print(json.dumps(Message.objects.filter(message_id='{headers['federation-message-id']}').count()))"
    )
    assert stored == 1

    altered = body.replace(b"replay me", b"altered!!")
    assert _post(b.url + PATH, altered, headers)[0] == 401
    stranger = new_remote("http://127.0.0.1:1", ("XX",))
    body2, headers2 = stranger.request({"type": "ping", "payload": {}}, to=b.url)
    assert _post(b.url + PATH, body2, headers2)[0] == 401
    assert _post(b.url + PATH, b"{}", {})[0] == 401  # unsigned

    refusals = b.refusals()[before:]
    assert [r["cause"] for r in refusals] == ["altered-body", "unknown-node", "unsigned"]
    assert refusals[0]["claimed_node"] == a.url and refusals[1]["claimed_node"] == "http://127.0.0.1:1"
    assert all(r["institutions"] == ",DP," and "altered!!" not in json.dumps(r) for r in refusals)


def test_copies_of_one_message_arriving_at_once_run_once_and_get_one_answer(nodes):
    a, b = nodes
    body = json.dumps({"type": "ping", "payload": {"echo": "at once"}}).encode()
    headers = _as_node(a, b, body)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _i: _post(b.url + PATH, body, headers), range(8)))
    assert {status for status, _h, _b in answers} == {200}
    assert len({content for _s, _h, content in answers}) == 1
    count = b.shell(
        "import json; from federation.models import Message; "
        f"print(json.dumps(Message.objects.filter(message_id='{headers['federation-message-id']}').count()))"
    )
    assert count == 1


def test_a_peer_that_is_down_fails_the_ping_and_is_counted(nodes):
    a, _b = nodes
    down = new_remote(f"http://127.0.0.1:{_free_port()}", ("DOWN",))
    a.manage("federation_peer_add", down.card)
    result = a.manage("federation_ping", down.url, check=False)
    assert result.returncode == 1 and "could not be reached (ConnectionError)" in result.stderr
    line = next(x for x in a.manage("federation_status").stdout.splitlines() if x.startswith(down.url))
    # Two failed sends: the offices asked for right after pinning (federation_peer_add), then the ping.
    assert "last contact never" in line and "failures 2 (last 20" in line
