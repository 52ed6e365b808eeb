"""The audit append's cost at the size a log already has vs. a log of 10,000 events (issue 21's target: within
1.2×), on a PostgreSQL database seeded before (``bench/audit_proofs.py --events N`` or
``bench/bench_audit.py --events N``), without seeding it again::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit10m .venv/bin/python bench/audit_append.py

The baseline log is made in a schema of its own in the same database (``bench.audit_scale.prepare_small``);
then blocks of ``record()`` (each its own transaction, as a request's) run against the two logs in
alternation, in separate processes, so the machine's varying load weighs on both alike. Prints both medians
and their ratio. The appended events stay in the seeded log (each is a real event).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=100, help="record() calls per block")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    from audit.models import AuditEvent
    from bench import audit_scale

    if connection.vendor != "postgresql":
        print("needs PostgreSQL (DATABASE_URL=postgres://…)")
        return 2
    url = os.environ["DATABASE_URL"]
    size = AuditEvent.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {audit_scale.SMALL_SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {audit_scale.SMALL_SCHEMA}")
    connection.close()
    small_url = audit_scale._with_search_path(url, audit_scale.SMALL_SCHEMA)
    audit_scale._subprocess(small_url, "prepare-small", "10000")
    at_small, at_large = audit_scale.interleaved_record_cost(small_url, url, args.rounds, args.repeat)
    print(
        f"record() (its own transaction), interleaved blocks of {args.repeat}: median {at_small:.3f} ms at "
        f"10,000 events, {at_large:.3f} ms at {size:,} = {at_large / at_small:.2f}x (target ≤ 1.2x); "
        f"load {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
