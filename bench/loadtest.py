"""Load test: 20 concurrent partner clients on PostgreSQL through gunicorn (several workers), sending and
answering referrals for a fixed time. Then: zero 5xx, zero lost or duplicated referrals, no referral
answered twice, and ``manage.py verify_audit`` intact.

    .venv/bin/python bench/loadtest.py                      # 60 s, 20 clients, 4 workers, DB h_load
    .venv/bin/python bench/loadtest.py --seconds 15         # the CI variant

PostgreSQL at 127.0.0.1:5432 (user postgres); the database named by --database is dropped and re-created.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")

SETUP = """
import json
from accounts.services import api_client_create, institution_create
out = {}
for code in ("IOM", "DP"):
    inst, _ = institution_create(code=code, name=code)
    out[code] = [api_client_create(institution=inst, name=f"load-{n}",
                 scopes=["referrals:read", "referrals:write"])[1] for n in range(%d)]
print("TOKENS=" + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = Counter()
        self.latencies: list[float] = []
        self.created: list[str] = []
        self.answered: list[str] = []
        self.conflicts = 0
        self.replays_ok = 0
        self.errors: list[str] = []

    def hit(self, response, started):
        with self.lock:
            self.codes[response.status_code] += 1
            self.latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 500:
                self.errors.append(
                    f"{response.request.method} {response.request.path_url} {response.status_code}"
                )


def _call(session, stats, method, url, **kwargs):
    started = time.perf_counter()
    response = session.request(method, url, timeout=30, **kwargs)
    stats.hit(response, started)
    return response


def sender(base, token, stats, deadline):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < deadline:
        case = _call(
            session,
            stats,
            "POST",
            f"{base}/cases/",
            json={
                "subject": {"given_name": "Persona", "document_type": "passport", "document_number": "X1"},
                "summary": "s",
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if case.status_code != 201:
            continue
        key = uuid.uuid4().hex
        body = {
            "case": case.json()["id"],
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": random.choice(["emergency", "urgent", "normal"]),
            "reason": "r",
            "consent": {
                "given": True,
                "given_by": "self",
                "method": "verbal",
                "obtained_at": "2026-01-01T00:00:00Z",
                "data_categories": ["identity"],
            },
        }
        created = _call(
            session, stats, "POST", f"{base}/referrals/", json=body, headers={"Idempotency-Key": key}
        )
        if created.status_code != 201:
            continue
        referral_id = created.json()["id"]
        with stats.lock:
            stats.created.append(referral_id)
        if random.random() < 0.2:  # a retried POST (lost response): the same referral, nothing new
            again = _call(
                session, stats, "POST", f"{base}/referrals/", json=body, headers={"Idempotency-Key": key}
            )
            if again.status_code == 201 and again.json()["id"] == referral_id:
                with stats.lock:
                    stats.replays_ok += 1
            else:
                with stats.lock:
                    stats.errors.append(f"replay gave {again.status_code}")
        _call(session, stats, "POST", f"{base}/referrals/{referral_id}/send/", json={})


def receiver(base, token, stats, deadline):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    while time.monotonic() < deadline:
        page = _call(
            session, stats, "GET", f"{base}/referrals/?direction=inbound&status=requested&page_size=20"
        )
        if page.status_code != 200 or not page.json()["results"]:
            time.sleep(0.05)
            continue
        item = random.choice(page.json()["results"])
        detail = _call(session, stats, "GET", f"{base}/referrals/{item['id']}/")
        if detail.status_code != 200:
            continue
        action, body = random.choice([("accept", {}), ("reject", {"reason": "Fuera de mandato"})])
        answer = _call(
            session,
            stats,
            "POST",
            f"{base}/referrals/{item['id']}/{action}/",
            json=body,
            headers={"If-Match": detail.headers["ETag"]},
        )
        with stats.lock:
            if answer.status_code == 200:
                stats.answered.append(item["id"])
            elif answer.status_code in (409, 412):
                stats.conflicts += 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", default="h_load")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{args.pg}/{args.database}",
        THROTTLE_API_CLIENT="1000000/min",
        DJANGO_SETTINGS_MODULE="config.settings",
        LOG_LEVEL="WARNING",
    )
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    per_side = max(1, args.clients // 2)
    out = subprocess.run(
        [*manage, "shell", "-c", SETUP % per_side],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    tokens = json.loads(next(line for line in out.splitlines() if line.startswith("TOKENS="))[7:])

    port = _free_port()
    server = subprocess.Popen(
        [
            GUNICORN,
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            "2",
            "--timeout",
            "60",
            "--log-level",
            "warning",
            "--no-control-socket",  # as scripts/web: nothing left in the home directory
        ],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code in (200, 503):
                    break
            except requests.RequestException:
                time.sleep(0.5)
        stats = Stats()
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=sender, args=(base, t, stats, deadline)) for t in tokens["IOM"]]
        threads += [threading.Thread(target=receiver, args=(base, t, stats, deadline)) for t in tokens["DP"]]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    with psycopg.connect(f"{args.pg}/{args.database}") as conn:
        db_ids = {str(r[0]) for r in conn.execute("SELECT id FROM referrals_referral")}
        drafts = conn.execute("SELECT count(*) FROM referrals_referral WHERE status = 'draft'").fetchone()[0]
        answered_twice = conn.execute(
            "SELECT count(*) FROM (SELECT referral_id FROM referrals_referralevent "
            "WHERE action IN ('accept', 'reject') GROUP BY referral_id HAVING count(*) > 1) t"
        ).fetchone()[0]
        answer_events = conn.execute(
            "SELECT count(*) FROM referrals_referralevent WHERE action IN ('accept', 'reject')"
        ).fetchone()[0]
        audit_events = conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0]
    verify = subprocess.run([*manage, "verify_audit"], env=env, cwd=ROOT, capture_output=True, text=True)

    total = sum(stats.codes.values())
    created = stats.created
    lat = sorted(stats.latencies)
    print(
        f"load test: {len(threads)} clients, gunicorn {args.workers} workers x 2 threads, PostgreSQL, "
        f"{elapsed:.0f} s"
    )
    print(
        f"  requests: {total:,} ({total / elapsed:,.0f}/s); status codes: {dict(sorted(stats.codes.items()))}"
    )
    if lat:
        print(
            f"  latency ms: median {statistics.median(lat):.1f}, p95 {lat[int(len(lat) * 0.95) - 1]:.1f}, "
            f"max {lat[-1]:.1f}"
        )
    print(
        f"  referrals created {len(created):,} (retried with the same key and replayed: {stats.replays_ok}), "
        f"in the database {len(db_ids):,}, still draft {drafts}"
    )
    print(f"  answered {len(stats.answered):,} (events {answer_events:,}), lost races 409/412: ", end="")
    print(f"{stats.conflicts:,}")
    summary = (verify.stdout or verify.stderr or "").strip().splitlines()[-1:]
    print(f"  audit events {audit_events:,}; verify_audit exit {verify.returncode}: {' '.join(summary)}")
    checks = [
        ("zero 5xx", not any(code >= 500 for code in stats.codes)),
        ("no lost referral (every 201 is in the database)", set(created) <= db_ids),
        ("no duplicated referral (database = distinct 201s)", len(db_ids) == len(set(created))),
        ("no referral answered twice", answered_twice == 0 and answer_events == len(stats.answered)),
        ("idempotent replays returned the first referral", not any("replay" in e for e in stats.errors)),
        ("verify_audit intact", verify.returncode == 0),
    ]
    for label, ok in checks:
        print(f"  [{'x' if ok else ' '}] {label}")
    for line in stats.errors[:10]:
        print("   ", line)
    return 0 if all(ok for _label, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
