"""How long one institution's reference counter row is held per create, and what that allows: CLIENTS threads
of one institution (IOM) create and send referrals through the partner API (Django's test client, the real
middleware, services and database) for SECONDS; prints create+send per second and, per create, how long the
counter row stayed locked.

Where the number is taken inside the create's transaction (SQLite; PostgreSQL before issue 19) the row stays
locked from the counter's update until that transaction commits: measured from the return of
``referrals.services._next_reference`` to the ``on_commit`` callback. Where it is taken in a transaction of
its own (``referrals.references``, PostgreSQL) the row is locked for that one statement: measured around it
(an upper bound: the time includes the round trip and the wait for the interpreter's lock).

    .venv/bin/python bench/reference_counter.py --database-url postgres://postgres@127.0.0.1:5432/rcm_refs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.setup import setup_django  # noqa: E402

CONSENT = {
    "given": True,
    "given_by": "self",
    "method": "verbal",
    "obtained_at": "2026-01-01T00:00:00Z",
    "data_categories": ["identity"],
}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--synthetic-ms",
        type=float,
        default=0,
        help="instead of the API: transactions that take a reference and then wait this long (a create's "
        "body that waits on the database, not on the CPU) — what the counter alone allows",
    )
    args = parser.parse_args()
    url = setup_django(args.database_url, prefix="rcm-refs-")

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client

    from bench.seed import institutions_and_tokens
    from referrals import services

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    try:
        from referrals.references import uses_own_transaction
    except ImportError:  # before issue 19: always inside the create's transaction
        uses_own_transaction = lambda: False  # noqa: E731
    own = uses_own_transaction()
    where = "temp file" if "rcm-refs-" in url else url.split("@")[-1]
    print(f"database: {connection.vendor} ({where}); number taken in its own transaction: {own}")
    _institutions, tokens = institutions_and_tokens()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens['IOM']}"}

    holds: list[float] = []
    lock = threading.Lock()

    def keep(seconds: float) -> None:
        with lock:
            holds.append(seconds)

    if own:
        # The row is locked for the one statement (autocommit): timed around it, on its own connection.
        from referrals import references

        advance = references._advance

        def timed_advance(conn, institution_id, kind, year):
            started = time.perf_counter()
            value = advance(conn, institution_id, kind, year)
            if kind == "ref":
                keep(time.perf_counter() - started)
            return value

        references._advance = timed_advance
    else:
        # The row is locked from the counter's update until the create's transaction commits.
        next_reference = services._next_reference

        def timed_next_reference(institution, kind):
            reference = next_reference(institution, kind)
            if kind == "ref":
                taken = time.perf_counter()
                transaction.on_commit(lambda: keep(time.perf_counter() - taken))
            return reference

        services._next_reference = timed_next_reference

    if args.synthetic_ms:
        return _synthetic(args, own)

    def make_case(client):
        body = {"subject": {"given_name": "Ana", "document_type": "passport", "document_number": "X1"}}
        response = client.post("/api/v1/cases/", body, content_type="application/json", **auth)
        assert response.status_code == 201, response.content[:300]
        return response.json()["id"]

    done = [0] * args.clients
    errors: list[str] = []
    start = threading.Barrier(args.clients + 1, timeout=120)

    def client_loop(index: int, deadline_box: list[float]) -> None:
        client = Client()
        try:
            case = make_case(client)
            start.wait()
            body = {
                "case": case,
                "to_institution": "DP",
                "services": ["legal_assistance"],
                "urgency": "urgent",
                "reason": "Motivo",
                "consent": CONSENT,
            }
            while time.perf_counter() < deadline_box[0]:
                created = client.post("/api/v1/referrals/", body, content_type="application/json", **auth)
                assert created.status_code == 201, created.content[:300]
                send = f"/api/v1/referrals/{created.json()['id']}/send/"
                sent = client.post(send, {}, content_type="application/json", **auth)
                assert sent.status_code == 200, sent.content[:300]
                done[index] += 1
        except Exception as exc:  # reported at the end
            errors.append(repr(exc)[:300])
        finally:
            connection.close()

    samples = {"locked": 0, "free": 0}
    stop = threading.Event()

    def sample_the_row() -> None:
        """From the database's side: how often is the row found locked (FOR UPDATE NOWAIT, every ~20 ms)?"""
        import psycopg
        from django.utils import timezone

        from accounts.models import Institution

        iom_id = Institution.objects.get(code="IOM").pk
        connection.close()
        with psycopg.connect(url) as probe:
            while not stop.is_set():
                try:
                    probe.execute(
                        "SELECT 1 FROM referrals_referencecounter WHERE institution_id = %s AND kind = 'ref' "
                        "AND year = %s FOR UPDATE NOWAIT",
                        [iom_id, timezone.now().year],
                    )
                    samples["free"] += 1
                except psycopg.errors.LockNotAvailable:
                    samples["locked"] += 1
                probe.rollback()
                stop.wait(0.02)

    deadline_box = [float("inf")]
    threads = [threading.Thread(target=client_loop, args=(i, deadline_box)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    deadline_box[0] = began + args.seconds
    sampler = threading.Thread(target=sample_the_row) if connection.vendor == "postgresql" else None
    if sampler:
        sampler.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    stop.set()
    if sampler:
        sampler.join()
    if errors:
        print("errors:", *errors[:5], sep="\n  ")
        return 1
    total = sum(done)
    held = [h * 1000 for h in holds]
    print(f"{args.clients} clients, {elapsed:.1f} s: {total} create+send, {total / elapsed:.1f} per second")
    print(
        f"counter row held per create: median {statistics.median(held):.1f} ms, "
        f"p95 {_percentile(held, 0.95):.1f} ms, max {max(held):.1f} ms ({len(held)} creates); "
        f"busy {sum(held) / 1000 / elapsed * 100:.0f} % of the time"
    )
    probes = samples["locked"] + samples["free"]
    if probes:
        busy = samples["locked"] / probes
        print(
            f"seen from the database: row locked in {samples['locked']} of {probes} probes "
            f"({busy * 100:.1f} %): {busy * elapsed / max(total, 1) * 1000:.1f} ms held per create on average"
        )
    return 0


def _synthetic(args, own: bool) -> int:
    """CLIENTS threads, each: a transaction that takes the next IOM referral reference, waits SYNTHETIC_MS
    (sleeping: no CPU) and commits. With the row held until commit they queue; without, they overlap."""
    from django.db import connection, transaction

    from accounts.models import Institution
    from referrals import services

    iom = Institution.objects.get(code="IOM")
    counts = [0] * args.clients
    start = threading.Barrier(args.clients + 1, timeout=60)
    deadline_box = [float("inf")]

    def loop(index: int) -> None:
        try:
            start.wait()
            while time.perf_counter() < deadline_box[0]:
                with transaction.atomic():
                    services._next_reference(iom, "ref")
                    time.sleep(args.synthetic_ms / 1000)
                counts[index] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    deadline_box[0] = began + args.seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    total = sum(counts)
    ceiling = args.clients * 1000 / args.synthetic_ms
    print(
        f"synthetic: {args.clients} clients, transactions of {args.synthetic_ms:.0f} ms holding a reference: "
        f"{total / elapsed:.1f} per second (no-queue ceiling {ceiling:.0f}/s; own transaction: {own})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
