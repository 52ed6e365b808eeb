"""The audit log's Merkle tree at scale (issue 21): building it, signing a checkpoint after a busy hour, and
the cost of an inclusion and a consistency proof, at N events (PostgreSQL; the database is flushed first)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit_proofs \\
      .venv/bin/python bench/audit_proofs.py --events 1000000 [--hour 25000] [--checkpoints 1] [--repeat 200]

Seeding reuses ``bench/audit_scale.py`` (the real chain, COPY in batches). Then it prints: the one-time
build of the tree over the N seeded events (what the first checkpoint after the upgrade does), a checkpoint
after ``--hour`` more events (incremental verification + tree extension + signing; ``--checkpoints`` busy
hours in a row, each timed with the load average before it), and the median and
p95 of a proof (``audit.tree``: the queries and hashing that the API's proof endpoints run), each verified
once with ``audit.merkle``. ``--reuse`` keeps an earlier run's database (no flush, no seeding): only the
busy hours, their checkpoints and the proofs, e.g. to compare two versions of the checkpoint job at 10
million events without seeding twice.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _figures(label: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label}: median {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms ({len(samples)} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hour", type=int, default=25_000, help="events of the busy hour, then a checkpoint")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--checkpoints", type=int, default=1, help="busy hours, each followed by a checkpoint"
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of an earlier run (its events, tree and checkpoints): no flush, no seeding; "
        "only the busy hours, their checkpoints and the proofs",
    )
    args = parser.parse_args()
    if not (args.database_url or "").startswith(("postgres://", "postgresql://")):
        print("PostgreSQL only: set DATABASE_URL to a database of its own (it is flushed)", file=sys.stderr)
        return 2

    from bench.setup import setup_django

    setup_django(args.database_url, prefix="rcm-bench-proofs-")
    from django.core.management import call_command
    from django.db import connection

    from audit import checkpoints, merkle, tree
    from audit.models import AuditEvent
    from audit.tasks import verify_and_checkpoint
    from bench.audit_scale import Population, seed

    call_command("migrate", verbosity=0)
    # An earlier run's events came from the population's default seed: a reused database gets new ids.
    population = Population(args.events + args.hour, seed=int(time.time()) if args.reuse else 14)
    if args.reuse:
        first = checkpoints.latest()
        if first is None or not first.root_hash:
            print("--reuse: no checkpoint with a tree in this database; run once without it", file=sys.stderr)
            return 2
        print(f"reusing {AuditEvent.objects.count():,} events, the tree, checkpoint {first.sequence:,}")
    else:
        call_command("flush", interactive=False, verbosity=0)
        start = datetime.now(UTC) - timedelta(days=max(1, args.events // 5500))
        seed(args.events, population, start, timedelta(seconds=15), "seeding")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
        head = AuditEvent.objects.get(sequence=args.events)

        seconds, _ = _timed(lambda: tree.extend(args.events))
        rate = args.events / seconds
        print(f"tree built over {args.events:,} events (one time): {seconds:.1f} s ({rate:,.0f}/s)")
        sign = lambda: checkpoints.create(sequence=head.sequence, hash_=head.hash, verified=True)  # noqa: E731
        seconds, first = _timed(sign)
        print(f"first checkpoint (tree already built): {seconds * 1000:.0f} ms")

    for _ in range(args.checkpoints):
        hour_start = datetime.now(UTC) - timedelta(hours=1)
        seed(args.hour, population, hour_start, timedelta(seconds=0.1), "busy hour")
        load = os.getloadavg()[0]
        seconds, (result, made) = _timed(verify_and_checkpoint)
        assert result.ok and made is not None, result.summary()
        print(
            f"checkpoint at {made.sequence:,} after {args.hour:,} events (verify {result.checked:,} events, "
            f"extend the tree, sign): {seconds:.2f} s (verification {result.seconds:.2f} s; load {load:.1f})"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_audittreenode")
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('audit_audittreenode'))")
        print(f"stored tree: {tree.stored_size():,} leaves, {cursor.fetchone()[0]} on disk")

    size = made.sequence
    root = tree.root(size)
    rng = random.Random(21)
    inclusion, consistency = [], []
    for n in range(args.repeat):
        index = rng.randrange(size)
        seconds, proof = _timed(lambda index=index: tree.inclusion_proof(index, size))
        inclusion.append(seconds * 1000)
        if n == 0:
            merkle.verify_inclusion(index, size, tree.leaf(index), proof, root)
        old = rng.randrange(1, size)
        seconds, proof = _timed(lambda old=old: tree.consistency_proof(old, size))
        consistency.append(seconds * 1000)
        if n == 0:
            merkle.consistent(old, size, tree.root(old), root, proof)
    _figures(f"inclusion proof at {size:,} events", inclusion)
    _figures(f"consistency proof at {size:,} events", consistency)
    print(f"(first checkpoint: tree size {first.sequence:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
