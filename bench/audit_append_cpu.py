"""CPU per audit append and per sealed event, measured in-process (issue 21's appends from 8 processes vs 1).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit_cpu .venv/bin/python bench/audit_append_cpu.py
    .venv/bin/python bench/audit_append_cpu.py --appends 5000 --profile      # cProfile (CPU time) of both

The named database is flushed first: give it a database of its own (without DATABASE_URL, a throwaway SQLite
file). ``--appends`` calls of ``record()``, each in a transaction of its own (autocommit, as an audited read
and as ``bench/audit_concurrency.py`` append), then the queue they filled sealed by ``seal_pending`` in
batches of ``--batch`` (what the sequencer thread seals every 200 ms at ~2,500 events/s). For each, per
event:

* **wall** time;
* **client CPU**: ``time.thread_time()`` of this process's thread (Python, psycopg, the kernel's share for
  the socket);
* **server CPU**: the PostgreSQL backend's own user + system time, read from ``/proc/<pid>/stat`` (the
  server must run on this machine; 10 ms ticks, hence thousands of events per figure).

A machine with ``C`` cores appends from many processes at most ``C / (client + server + sealing CPU)``
events/s, whatever the number of processes; one process appends ``1 / (client + server + latency)``
(the sequencer runs on another core meanwhile). These figures say how far from a core each side is.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _backend_cpu(connection) -> float | None:
    """The current connection's PostgreSQL backend's CPU seconds (user + system), when it runs here."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(label: str, count: int, work, connection, profile: bool) -> None:
    profiler = cProfile.Profile(time.thread_time) if profile else None
    server = _backend_cpu(connection)
    cpu, wall = time.thread_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    done = work()
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    count = done or count
    after = _backend_cpu(connection)
    line = f"{label}: {count:,} events, wall {wall / count * 1e6:,.0f} µs"
    line += f", client CPU {cpu / count * 1e6:,.0f} µs"
    if server is not None and after is not None:
        line += f", server CPU {(after - server) / count * 1e6:,.0f} µs per event"
    print(line, flush=True)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500, help="events sealed per transaction")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile (thread CPU time) of each side")
    options = parser.parse_args()
    from bench.setup import setup_django

    setup_django(os.environ.get("DATABASE_URL"), prefix="rcm-audit-cpu-")
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    settings.AUDIT_SEAL_INLINE = False
    from django.db import connection

    from audit import sequencer
    from audit.recorder import record

    # This process stands for a serving process whose sequencer thread seals elsewhere: no sealing after
    # its commits, which would mix the two costs.
    sequencer.sequencer_thread_running = lambda: True

    def append() -> int:
        for _ in range(options.appends):
            record(actor_type="system", action="bench.append", institutions=["IOM", "DP"], detail={"n": 1})
        return options.appends

    def seal() -> int:
        total = 0
        while sealed := sequencer.seal_pending(limit=options.batch):
            total += sealed
        return total

    record(actor_type="system", action="bench.warmup")
    seal()
    print(f"{connection.vendor}, load average {os.getloadavg()[0]:.2f} at start")
    for _ in range(options.rounds):
        _measure("append (record() alone)", options.appends, append, connection, options.profile)
        _measure(f"seal (batches of {options.batch})", options.appends, seal, connection, options.profile)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
