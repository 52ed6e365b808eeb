"""Referrals across two real nodes (issue 23's targets): the send's answer, delivery, a forwarded action and
catching up after the receiver's node was down.

    .venv/bin/python bench/federation_referrals.py                  # 40 of each, 1,000 waiting
    .venv/bin/python bench/federation_referrals.py --n 20 --waiting 300

Two gunicorn servers (one worker, 8 threads, the embedded relay: no Redis, as ``./scripts/run``) on two SQLite
databases in a temporary directory (``--postgres URL``: two databases ``bench_fed_a``/``bench_fed_b``, or
``--db-prefix``'s, created on that server instead), their own keys, paired. Node A hosts IOM and UNHCR; node
B hosts the Defensoría (DP).

1. **Send**: ``POST /referrals/{id}/send/`` of drafts to DP (remote: the delivery is queued) and to UNHCR
   (local), alternated; median answer times and their ratio (target ≤ 1.3×).
2. **Delivery**: for each remote send, A's outbox row from queued to delivered (B's verified answer):
   median, p95 and max (target p95 ≤ 2 s with the embedded relay).
3. **Forwarded action**: ``accept`` on B's copies (forwarded to A, the authority) against ``accept`` by UNHCR
   on A of local referrals; medians and ratio (target ≤ 2×). Then the same in CPU time, which the load others
   put on the machine does not change (``bench/request_cpu.py``: the CPU time of the thread serving each
   request): B's request plus A's door for the message it forwarded, against A's request for a local one.
4. **Catching up**: B down, ``--waiting`` referrals sent at A (through the services, in one process); B
   starts; referrals per second from B's first delivery received to A's outbox empty (target ≥ 50/s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.federation_outbox import ROOT, Node  # noqa: E402

SUBJECT = {
    "given_name": "Marta",
    "family_name": "Quispe",
    "date_of_birth": "1990-04-02",
    "nationality": "VEN",
    "phone": "+50760000001",
    "document_type": "passport",
    "document_number": "V12345678",
}
CONSENT = {
    "given": True,
    "given_by": "self",
    "method": "verbal",
    "obtained_at": "2026-12-01T10:00:00Z",
    "data_categories": ["identity", "contact"],
}


def api(node: Node, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict, float]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(node.url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read() or b"null")
            return response.status, payload, time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), time.perf_counter() - started


def draft(node: Node, token: str, to: str) -> str:
    status, case, _ = api(node, token, "POST", "/api/v1/cases/", {"subject": SUBJECT})
    assert status == 201, case
    body = {
        "case": case["id"],
        "to_institution": to,
        "services": ["legal_assistance"],
        "urgency": "normal",
        "reason": "Orientación legal",
        "consent": CONSENT,
    }
    status, referral, _ = api(node, token, "POST", "/api/v1/referrals/", body)
    assert status == 201, referral
    return referral["id"]


@contextlib.contextmanager
def worker(node: Node, redis_url: str):
    """A Celery worker for ``node`` (its settings and database) when ``redis_url`` is given."""
    if not redis_url:
        yield
        return
    log = (node.tmp / f"{node.name}-worker.log").open("w")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "--loglevel=WARNING", "--concurrency=2"],
        cwd=ROOT, env=node.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(5)  # the worker connects to the broker
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


def request_cpu(node: Node) -> list[dict]:
    """The requests ``node`` served so far (``bench/request_cpu.py``'s lines), oldest first."""
    path = node.tmp / f"{node.name}-requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def forwarded_cpu(a: Node, b: Node) -> tuple[list[float], list[float], list[float]]:
    """CPU ms of each forwarded ``accept``: B's request, A's door request(s) served within it, their sum;
    and of each local ``accept`` on A."""
    doors = [r for r in request_cpu(a) if r["path"].startswith("/federation/v1/")]
    at_b, at_a, local = [], [], []
    for r in request_cpu(b):
        if r["path"].endswith("/accept/"):
            at_b.append(r["cpu_ms"])
            at_a.append(sum(d["cpu_ms"] for d in doors if r["start"] <= d["start"] <= r["end"]))
    local = [r["cpu_ms"] for r in request_cpu(a) if r["path"].endswith("/accept/")]
    return at_b, at_a, local


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(0.95 * len(ordered))) - 1))]


DELAYS = """
import json
from federation.models import Outgoing
rows = Outgoing.objects.filter(type="referral.deliver", referral_id__in={ids!r})
print(json.dumps([(r.delivered_at - r.created_at).total_seconds() if r.delivered_at else None for r in rows]))
"""

SEND_MANY = """
import json
from django.db import transaction
from accounts.actor import actor_for_api_client
from accounts.models import ApiClient, Institution
from referrals import services
from tests.builders import consent
client = ApiClient.objects.get(name="iom-bench")
actor = actor_for_api_client(client)
dp = Institution.objects.get(code="DP")
subject = {{"given_name": "Marta", "family_name": "Quispe", "nationality": "VEN", "phone": "+50760000001"}}
for i in range({n}):
    with transaction.atomic():
        case = services.case_create(actor=actor, subject=subject)
        referral = services.referral_create(
            actor=actor, case=case, to_institution=dp, services=["protection"], urgency="normal",
            reason="Protección", consent=consent(("identity", "contact")))
        services.referral_transition(actor=actor, referral_id=referral.pk, action="send")
print(json.dumps({n}))
"""
#: One process polls A's outbox until it is empty (a shell per poll would take most of a core from the nodes).
UNTIL_EMPTY = (
    "import json, time; from federation.models import Outgoing\n"
    "while Outgoing.objects.filter(state='waiting', type='referral.deliver').exists(): time.sleep(0.2)\n"
    "print(json.dumps(time.time()))"
)
FIRST_DELIVERY = (
    "import json; from federation.models import Message; "
    "m = Message.objects.filter(direction='received', type='referral.deliver').order_by('created_at')"
    "[{offset}:{offset_end}].first(); "
    "print(json.dumps(m.created_at.timestamp() if m else None))"
)
COPIES = "import json; from referrals.models import Referral; print(json.dumps(Referral.objects.count()))"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40, help="sends and actions of each kind")
    parser.add_argument("--waiting", type=int, default=1000, help="referrals queued while B is down")
    parser.add_argument("--postgres", default="", help="postgres://…/any: two databases on that server")
    parser.add_argument("--db-prefix", default="bench_fed", help="their names: PREFIX_a and PREFIX_b")
    parser.add_argument(
        "--worker",
        default="",
        help="redis://…: node A with REDIS_URL and a Celery worker (each message handed over at commit)",
    )
    parser.add_argument("--receiver-workers", type=int, default=1, help="gunicorn workers of node B")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        a, b = Node("iom", "IOM", tmp), Node("dp", "DP", tmp)
        if args.postgres:
            import psycopg

            base = args.postgres.rpartition("/")[0]
            with psycopg.connect(base + "/postgres", autocommit=True) as conn:
                for node, name in ((a, f"{args.db_prefix}_a"), (b, f"{args.db_prefix}_b")):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    conn.execute(f'CREATE DATABASE "{name}"')
                    node.env["DATABASE_URL"] = f"{base}/{name}"
        b.workers = args.receiver_workers
        if args.worker:
            a.env["REDIS_URL"] = args.worker
        for node in (a, b):
            node.manage("migrate", "--noinput", "-v0")
            node.gunicorn_args = ["--config", str(ROOT / "bench" / "request_cpu.py")]
            node.env["REQUEST_CPU_LOG"] = str(node.tmp / f"{node.name}-requests.jsonl")
        a.manage("create_institution", "IOM", "IOM")
        a.manage("create_institution", "UNHCR", "UNHCR")
        b.manage("create_institution", "DP", "DP")
        scopes = ("--scopes", "referrals:read,referrals:write")
        iom = a.manage("create_api_client", "IOM", "iom-bench", *scopes).strip().splitlines()[-1]
        unhcr = a.manage("create_api_client", "UNHCR", "unhcr-bench", *scopes).strip().splitlines()[-1]
        dp = b.manage("create_api_client", "DP", "dp-bench", *scopes).strip().splitlines()[-1]
        card_a = a.manage("federation_card").strip().splitlines()[-1]
        card_b = b.manage("federation_card").strip().splitlines()[-1]
        a.manage("federation_peer_add", card_b)
        b.manage("federation_peer_add", card_a)
        with a.serving(), b.serving(), worker(a, args.worker):
            remote_ids = [draft(a, iom, "DP") for _ in range(args.n)]
            local_ids = [draft(a, iom, "UNHCR") for _ in range(args.n)]
            remote_times, local_times = [], []
            for remote_id, local_id in zip(remote_ids, local_ids, strict=True):
                status, body, seconds = api(a, iom, "POST", f"/api/v1/referrals/{remote_id}/send/", {})
                assert status == 200, body
                remote_times.append(seconds)
                status, body, seconds = api(a, iom, "POST", f"/api/v1/referrals/{local_id}/send/", {})
                assert status == 200, body
                local_times.append(seconds)
                time.sleep(
                    0.5
                )  # the remote send's delivery (this server's relay) is done before the next pair
            remote_send, local_send = statistics.median(remote_times), statistics.median(local_times)
            print(
                f"send: to a remote institution median {remote_send * 1000:.1f} ms, to a local one "
                f"{local_send * 1000:.1f} ms: {remote_send / local_send:.2f}x  (n={args.n} each)"
            )
            deadline = time.monotonic() + 120
            while None in (delays := a.shell(DELAYS.format(ids=remote_ids))) and time.monotonic() < deadline:
                time.sleep(0.5)
            delays = [d for d in delays if d is not None]
            how = "a Celery worker" if args.worker else "embedded relay"
            print(
                f"delivery, {how}: median {statistics.median(delays):.2f} s, "
                f"p95 {p95(delays):.2f} s, max {max(delays):.2f} s  ({len(delays)} of {args.n} delivered)"
            )
            forwarded, local = [], []
            for remote_id, local_id in zip(remote_ids, local_ids, strict=True):
                status, body, seconds = api(b, dp, "POST", f"/api/v1/referrals/{remote_id}/accept/", {})
                assert status == 200, body
                forwarded.append(seconds)
                status, body, seconds = api(a, unhcr, "POST", f"/api/v1/referrals/{local_id}/accept/", {})
                assert status == 200, body
                local.append(seconds)
            forwarded_ms, local_ms = statistics.median(forwarded), statistics.median(local)
            print(
                f"accept: forwarded to the authority median {forwarded_ms * 1000:.1f} ms, local "
                f"{local_ms * 1000:.1f} ms: {forwarded_ms / local_ms:.2f}x"
            )
            at_b, at_a, local_cpu = forwarded_cpu(a, b)
            both = [x + y for x, y in zip(at_b, at_a, strict=True)]
            med = statistics.median
            load = Path("/proc/loadavg").read_text().split()[0]
            print(
                f"accept, CPU of the serving threads: forwarded median {med(both):.1f} ms "
                f"(B {med(at_b):.1f}, A's door {med(at_a):.1f}), local {med(local_cpu):.1f} ms: "
                f"{med(both) / med(local_cpu):.2f}x"
                f"  (load {load})"
            )
        if args.waiting:
            before = b.shell(COPIES)
            started = time.perf_counter()
            a.shell(SEND_MANY.format(n=args.waiting))
            seconds = time.perf_counter() - started
            print(f"catch-up: {args.waiting} referrals sent at A in {seconds:.1f} s, B down")
            with a.serving():
                time.sleep(4)  # A's relay finds B down at least once
                with b.serving():
                    cpu = a.cpu_seconds(), b.cpu_seconds()
                    done = a.shell(UNTIL_EMPTY)
                    cpu = a.cpu_seconds() - cpu[0], b.cpu_seconds() - cpu[1]
                    first = b.shell(FIRST_DELIVERY.format(offset=args.n, offset_end=args.n + 1))
            arrived = b.shell(COPIES) - before
            load = Path("/proc/loadavg").read_text().split()[0]
            print(
                f"catch-up: {arrived} referrals delivered in {done - first:.1f} s = "
                f"{arrived / (done - first):.0f} referrals/s; CPU per referral: "
                f"A {cpu[0] / arrived * 1000:.1f} ms, B {cpu[1] / arrived * 1000:.1f} ms (load {load})"
            )


if __name__ == "__main__":
    main()
