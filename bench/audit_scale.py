"""The audit log at scale (issue 14): seeded fast with COPY, then the figures that must not grow with it.

Called by ``bench/bench_audit.py --events N`` (PostgreSQL only; the named database is flushed first).

Seeding computes the real chain (version-2 HMACs, each ``prev_hash`` the previous hash) in Python and
streams the rows with ``COPY … FROM STDIN`` in batches, printing progress; the table keeps every index
the application has, so the insert cost measured afterwards is the real one. The events look like a
busy deployment's: two institutions, 300 staff each, referrals and cases read far more often than
written, ~5,500 events a day over the span, and the last hour a busy one (``--busy-hour`` events).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta

ACTIONS = (
    ("referral.viewed", 45),
    ("note.viewed", 20),
    ("case.viewed", 15),
    ("referral.transitioned", 5),
    ("note.created", 4),
    ("auth.login", 4),
    ("referral.created", 2),
    ("case.created", 2),
    ("permission.granted", 2),
    ("access.denied", 1),
)
BATCH = 100_000


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class Population:
    """Staff, API clients and objects the seeded events are about."""

    def __init__(self, events: int, seed: int = 14):
        self.rng = rng = random.Random(seed)
        self.staff = {
            code: [(str(_uuid(rng)), f"{code.lower()}.user{i}") for i in range(300)] for code in ("IOM", "DP")
        }
        self.referrals = [(str(_uuid(rng)), str(_uuid(rng))) for _ in range(max(1000, events // 40))]
        self.actions = [a for a, weight in ACTIONS for _ in range(weight)]

    def event(self, sequence: int, at: datetime) -> dict:
        rng = self.rng
        action = rng.choice(self.actions)
        code = "IOM" if rng.random() < 0.55 else "DP"
        actor_id, label = rng.choice(self.staff[code])
        referral, case = rng.choice(self.referrals)
        values = {
            "id": _uuid(rng),
            "sequence": sequence,
            "at": at,
            "actor_type": "user",
            "actor_id": actor_id,
            "actor_label": label,
            "actor_institution": code,
            "action": action,
            "object_type": "",
            "object_id": "",
            "case_id": "",
            "institutions": f",{code},",
            "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "request_id": f"{rng.getrandbits(128):032x}",
            "outcome": "success",
            "detail": {},
        }
        if action.startswith(("referral.", "note.", "permission.", "access.")):
            values.update(object_type="referral", object_id=referral, case_id=case, institutions=",DP,IOM,")
        elif action.startswith("case."):
            values.update(object_type="case", object_id=case, case_id=case, institutions=",IOM,")
        if action == "referral.transitioned":
            values["detail"] = {"action": "accept", "from": "requested", "to": "accepted"}
        elif action == "access.denied":
            values["outcome"] = "denied"
            values["detail"] = {"cause": "not-visible"}
        return values


def seed(count: int, population: Population, start: datetime, step: timedelta, label: str) -> None:
    """Append ``count`` events after the chain's head (COPY in batches), moving the head; with progress."""
    from django.db import connection

    from audit.chain import ROW_FIELDS as COLUMNS  # every stored column, as the verifier reads them
    from audit.chain import values_hash
    from audit.models import AuditChainHead

    head, _created = AuditChainHead.objects.get_or_create(id=1)
    sequence, previous = head.sequence, head.last_hash
    connection.ensure_connection()
    raw = connection.connection  # the DB-API (psycopg) connection: COPY is not an ORM operation
    columns = ", ".join(COLUMNS)
    started = time.perf_counter()
    done = 0
    at = start
    while done < count:
        size = min(BATCH, count - done)
        with raw.cursor() as cursor, cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for _ in range(size):
                sequence += 1
                values = population.event(sequence, at)
                values["prev_hash"] = previous
                values["hash"] = previous = values_hash(values)
                values["detail"] = json.dumps(values["detail"], separators=(",", ":"))
                copy.write_row([values[c] for c in COLUMNS])
                at += step
        done += size
        elapsed = time.perf_counter() - started
        print(
            f"  {label}: {done:,}/{count:,} events ({done / elapsed:,.0f}/s, {elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    AuditChainHead.objects.filter(id=1).update(sequence=sequence, last_hash=previous)


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")


def _median_ms(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _record_cost(repeat: int) -> float:
    from audit.recorder import record

    return _median_ms(
        lambda: record(
            action="bench.record", actor_type="system", institutions=["IOM", "DP"], detail={"n": 1}
        ),
        repeat,
    )


SMALL_SCHEMA = "audit_small"


def _with_search_path(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-c%20search_path%3D{schema}"


def _subprocess(url: str, *args: str) -> str:
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.audit_scale", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return done.stdout.strip().splitlines()[-1]


def prepare_small(count: int) -> None:
    """In its own schema of the same database: the log at ``count`` events (the write cost's baseline)."""
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    population = Population(count, seed=7)
    now = timezone.now()
    seed(count, population, now - timedelta(days=2), timedelta(days=2) / count, "small log")
    _analyze()


def record_block(repeat: int) -> list[float]:
    """``repeat`` calls of ``record()`` (each its own transaction) after a warm-up, in ms."""
    from audit.recorder import record

    def call():
        record(action="bench.record", actor_type="system", institutions=["IOM", "DP"], detail={"n": 1})

    for _ in range(10):
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def interleaved_record_cost(small_url: str, large_url: str, rounds: int, repeat: int) -> tuple[float, float]:
    """Blocks of ``record()`` against the small and the large log in alternation (separate processes, the
    same database server), so that the machine's varying load weighs on both alike: the two medians."""
    small, large = [], []
    for n in range(rounds):
        order = [(small, small_url), (large, large_url)]
        for times, url in order if n % 2 == 0 else reversed(order):
            times.extend(json.loads(_subprocess(url, "record", str(repeat))))
    return statistics.median(small), statistics.median(large)


def _execution_ms(queryset) -> float:
    """The server's own time for the page's query (EXPLAIN ANALYZE), without Python or HTTP."""
    plan = json.loads(queryset.explain(format="json", analyze=True))
    return float(plan[0]["Execution Time"])


def _size() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_relation_size('audit_auditevent')), "
            "pg_size_pretty(pg_indexes_size('audit_auditevent'))"
        )
        table, indexes = cursor.fetchone()
    return f"table {table}, indexes {indexes}"


def run_at_scale(*, events: int, busy_hour: int, repeat: int) -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.actor import actor_for_api_client
    from accounts.choices import Scope
    from accounts.services import api_client_create, institution_create
    from audit import checkpoints
    from audit.api.views import parse_filters
    from audit.models import AuditChainHead, AuditEvent
    from audit.selectors import events_filtered
    from audit.verification import verify_chain

    if connection.vendor != "postgresql":
        print("--events needs PostgreSQL (DATABASE_URL=postgres://…)")
        return 2
    url = os.environ["DATABASE_URL"]
    small = 10_000
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SMALL_SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {SMALL_SCHEMA}")
    small_url = _with_search_path(url, SMALL_SCHEMA)
    _subprocess(small_url, "prepare-small", str(small))
    print(f"baseline: the log at {small:,} events in schema {SMALL_SCHEMA} of the same database")

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    iom, _created = institution_create(code="IOM", name="IOM")
    institution_create(code="DP", name="Defensoría del Pueblo")
    client_row, token = api_client_create(institution=iom, name="auditors", scopes=[Scope.AUDIT_READ])
    print(f"database: postgresql ({connection.settings_dict['NAME']}), target {events:,} events")

    now = timezone.now().replace(microsecond=0)
    population = Population(events)
    span = timedelta(days=max(2.0, events / 5500))
    bulk = max(0, events - busy_hour)
    step = (span - timedelta(hours=1)) / max(1, bulk)
    started = time.perf_counter()
    seed(bulk, population, now - span, step, "seed")
    head = AuditChainHead.objects.get(id=1)
    # The last verified checkpoint, then the busy hour: what the hourly job verifies.
    checkpoints.create(sequence=head.sequence, hash_=head.last_hash, verified=True)
    seed(busy_hour, population, now - timedelta(hours=1), timedelta(hours=1) / busy_hour, "busy hour")
    seconds = time.perf_counter() - started
    total = AuditChainHead.objects.get(id=1).sequence
    print(f"seeded {total:,} events in {seconds:.0f} s ({total / seconds:,.0f} events/s); {_size()}")
    _analyze()

    # The hourly job's pass first (before record() adds events after the busy hour).
    cpu = time.process_time()
    result = verify_chain(incremental=True)
    cpu = time.process_time() - cpu
    print(
        f"incremental verification (the busy hour after the last verified checkpoint): {result.checked:,} "
        f"events in {result.seconds:.2f} s ({result.events_per_second:,.0f} events/s; this process's CPU "
        f"{cpu:.2f} s), intact: {result.ok}"
    )

    at_small, at_large = interleaved_record_cost(small_url, url, rounds=6, repeat=max(20, repeat // 4))
    print(
        f"record() (its own transaction), interleaved blocks: median {at_small:.3f} ms at {small:,} events, "
        f"{at_large:.3f} ms at {total:,} = {at_large / at_small:.2f}× (target ≤ 1.2×)"
    )

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    actor = actor_for_api_client(client_row)
    referral, case = population.referrals[len(population.referrals) // 2]
    actor_id = population.staff["DP"][7][0]
    mid = (now - span / 2).isoformat().replace("+00:00", "Z")
    hour = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    pages = [
        ("by object (a referral)", {"object_id": referral}),
        ("by actor (a user)", {"actor": actor_id}),
        ("by action, common (referral.viewed)", {"action": "referral.viewed"}),
        ("by action, rare (access.denied)", {"action": "access.denied"}),
        ("by period (since the busy hour)", {"since": hour}),
        ("by period (since mid-span)", {"since": mid}),
        ("by actor institution and action", {"actor_institution": "DP", "action": "case.created"}),
    ]
    print(
        f"auditor's filtered page of 50 (GET /api/v1/audit/events/?…&page_size=50): median of "
        f"{max(5, repeat // 4)} requests (whole request) and the query's own time (EXPLAIN ANALYZE):"
    )
    for label, params in pages:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        url_path = f"/api/v1/audit/events/?{query}&page_size=50"

        def call(url_path=url_path):
            response = client.get(url_path, **auth)
            assert response.status_code == 200, response.content[:200]
            return response

        count = len(call().json()["results"])
        ms = _median_ms(call, max(5, repeat // 4))
        page_query = events_filtered(actor, parse_filters(params)).order_by("sequence")[:51]
        sql_ms = statistics.median(_execution_ms(page_query) for _ in range(5))
        print(f"  {label:<40} {ms:8.1f} ms  (query {sql_ms:6.2f} ms; {count} results)")

    cpu = time.process_time()
    result = verify_chain()
    cpu = time.process_time() - cpu
    print(
        f"full verification: {result.checked:,} events in {result.seconds:.1f} s "
        f"({result.events_per_second:,.0f} events/s; this process's CPU {cpu:.1f} s = "
        f"{result.checked / max(cpu, 1e-9):,.0f} events per CPU-second), intact: {result.ok}"
    )
    print(f"log size after the run: {AuditEvent.objects.count():,} events; {_size()}")
    return 0


if __name__ == "__main__":  # the helpers run in their own processes: bench/bench_audit.py calls them
    import os as _os

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    _os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    command, number = sys.argv[1], int(sys.argv[2])
    if command == "prepare-small":
        prepare_small(number)
        print("ok")
    elif command == "record":
        print(json.dumps(record_block(number)))
