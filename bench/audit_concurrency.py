"""Issue 21's concurrency figures on PostgreSQL: appends that do not queue behind each other.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit_concurrency \
      .venv/bin/python bench/audit_concurrency.py [--seconds 10] [--clients 16]

The named database is flushed first: give it a database of its own. Every figure comes from OS processes,
each with its own connection, as gunicorn's workers have; one more process is the sequencer (the code of
the serving processes' sequencer thread, ``audit.sequencer.seal_pending`` every 200 ms).

1. **Appends/s, 1 process vs 8**: ``record()`` in a transaction of its own, as fast as a process can, for
   ``--seconds``; the rate of committed events (queued; the sequencer seals them meanwhile). The same with
   inline sealing (issue 14's design: every append takes the chain head's lock until its commit) for
   comparison.
2. **Wait on audit locks at 16 clients on the referral detail** (``GET /api/v1/referrals/{id}/``, one audited
   read each, Django's test client in 4 processes × 4 threads): (a) the time of the request's audit
   statement itself (the queue INSERT, timed around ``audit.sequencer.enqueue``): any wait on a lock would be
   inside it; (b) PostgreSQL's own view: ``pg_stat_activity`` sampled every 2 ms, backends waiting on a lock
   (``wait_event_type = 'Lock'``) → by Little's law, the mean lock wait per request = the mean number of
   waiting backends × the run's duration / the requests.
3. **Seal delay after commit**: each append's commit time (``time.time()`` right after its COMMIT) against
   the time the sequencer's transaction that sealed it committed; p50, p95, max.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup(inline: bool = False):
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings

    from audit import sequencer

    settings.AUDIT_SEAL_INLINE = inline
    # A writer stands for a serving process whose sequencer thread is the separate sequencer process: it
    # never seals after its commits itself.
    sequencer.sequencer_thread_running = lambda: True


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _proc_cpu(pid: int | str) -> float:
    """CPU seconds (user + system) of a process on this machine (``/proc``): a PostgreSQL backend's too."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (``/proc/stat``: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


_BACKGROUND = ("walwriter", "checkpointer", "background writer", "autovacuum", "wal writer")


def _postgres_background() -> float:
    """CPU seconds so far of PostgreSQL's own background processes on this machine (WAL writer, checkpointer,
    background writer, autovacuum workers): what the server spends besides the backends."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and any(name in command for name in _BACKGROUND):
            cpu = _proc_cpu(entry.name)
            if cpu == cpu:  # gone meanwhile: nan
                total += cpu
    return total


def _wait_for(start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)


# --- the child processes ---------------------------------------------------------------------------------


def role_append(start: float, seconds: float, inline: bool, out: str) -> None:
    _setup(inline)
    from audit.recorder import record

    record(actor_type="system", action="bench.warmup")
    backend = _backend_pid()
    _wait_for(start)
    commits = []
    end = start + seconds
    cpu, server = time.process_time(), _proc_cpu(backend)
    while time.time() < end:
        event = record(
            actor_type="system", action="bench.append", institutions=["IOM", "DP"], detail={"n": 1}
        )
        commits.append((str(event.id), time.time()))
    cpu, server = time.process_time() - cpu, _proc_cpu(backend) - server
    Path(out).write_text(
        json.dumps({"commits": commits, "seconds": time.time() - start, "cpu": cpu, "server_cpu": server})
    )


def role_sequencer(stop_file: str, out: str, interval: float) -> None:
    _setup(False)
    from audit import sequencer
    from audit.models import AuditEvent

    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    backend = _backend_pid()
    batches = []
    # When each batch's transaction committed: (the last sequence sealed by then, the time). The events'
    # ids are read once at the end, so that the benchmark's bookkeeping takes no CPU from the run.
    sealed_up_to: list[tuple[int, float]] = []
    next_run = time.monotonic()
    cpu, server = time.process_time(), _proc_cpu(backend)
    while True:
        time.sleep(max(0.0, next_run - time.monotonic()))
        next_run = time.monotonic() + interval  # the thread's pace (audit.sequencer._loop)
        stopping = Path(stop_file).exists()
        started = time.perf_counter()
        count = sequencer.seal_pending()
        now = time.time()
        if count:
            batches.append((count, time.perf_counter() - started))
            last += count  # one sealer: the sequences it gave are the next ``count``
            sealed_up_to.append((last, now))
        if stopping and count == 0:
            break
    cpu, server = time.process_time() - cpu, _proc_cpu(backend) - server
    from audit.models import AuditChainHead

    if sealed_up_to:  # (with inline sealing the appenders seal, and this process never does)
        head = AuditChainHead.objects.get(id=1).sequence
        assert head == last, "another sealer ran: the times would be wrong"
    sealed_at: dict[str, float] = {}
    first = sealed_up_to[0][0] - batches[0][0] + 1 if sealed_up_to else 1
    ids = dict(AuditEvent.objects.filter(sequence__gte=first).values_list("sequence", "id"))
    lower = first
    for upper, at in sealed_up_to:
        for sequence in range(lower, upper + 1):
            sealed_at[str(ids[sequence])] = at
        lower = upper + 1
    Path(out).write_text(
        json.dumps({"sealed_at": sealed_at, "batches": batches, "cpu": cpu, "server_cpu": server})
    )


def role_detail(start: float, seconds: float, threads: int, url: str, token: str, out: str) -> None:
    _setup(False)
    from django.db import connections
    from django.test import Client

    from audit import sequencer

    statement_times: list[float] = []
    real_enqueue = sequencer.enqueue
    local = threading.local()

    def timed_enqueue(events):
        started = time.perf_counter()
        real_enqueue(events)
        statement_times.append(time.perf_counter() - started)
        local.ids = [*getattr(local, "ids", []), *(str(e.id) for e in events)]

    sequencer.enqueue = timed_enqueue
    results: list[list[float]] = []
    responses: list[tuple[str, float]] = []

    def client_loop():
        client = Client()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        assert client.get(url, **headers).status_code == 200
        times = []
        _wait_for(start)
        end = start + seconds
        while time.time() < end:
            began = time.perf_counter()
            local.ids = []
            response = client.get(url, **headers)
            times.append(time.perf_counter() - began)
            answered = time.time()  # the response is out: the contract's clock starts here
            responses.extend((id_, answered) for id_ in local.ids)
            assert response.status_code == 200, response.status_code
        results.append(times)
        connections.close_all()

    workers = [threading.Thread(target=client_loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    Path(out).write_text(
        json.dumps(
            {
                "requests": [t for r in results for t in r],
                "statement": statement_times[threads:],
                "responses": responses,
            }
        )
    )


# --- the parent --------------------------------------------------------------------------------------------


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, env=os.environ.copy())


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


class LockSampler(threading.Thread):
    """Samples pg_stat_activity every 2 ms: the backends of this database waiting on a lock."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.samples = 0
        self.waiting = 0
        self.by_event: dict[str, int] = {}

    def run(self):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT wait_event FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                self.waiting += len(rows)
                for (event,) in rows:
                    self.by_event[event] = self.by_event.get(event, 0) + 1
                time.sleep(0.002)


def _run_appends(
    processes: int, seconds: float, inline: bool, tmp: Path, sealing: bool = True
) -> tuple[float, list[float], dict]:
    stop_file = tmp / f"stop-{processes}-{inline}-{sealing}"
    seq_out = tmp / f"seq-{processes}-{inline}-{sealing}.json"
    sequencer = _spawn("sequencer", str(stop_file), str(seq_out), "0.2") if sealing else None
    start = time.time() + 3.0
    tag = inline if sealing else "paused"
    outs = [tmp / f"append-{processes}-{tag}-{n}.json" for n in range(processes)]
    children = [_spawn("append", str(start), str(seconds), str(int(inline)), str(out)) for out in outs]
    _wait_for(start)
    busy, window, background = _machine_busy(), time.time(), _postgres_background()
    for child in children:
        assert child.wait() == 0
    # The appenders' window (and a little of their exit, writing their results).
    busy, window = _machine_busy() - busy, time.time() - window
    background = _postgres_background() - background
    results = [json.loads(out.read_text()) for out in outs]
    commits = [c for result in results for c in result["commits"]]
    elapsed = max(result["seconds"] for result in results)
    info = {
        "missing": 0,
        "batches": [],
        "events": len(commits),
        "busy": busy,
        "window": window,
        "background": background,
        "cpu": sum(result["cpu"] for result in results),
        "server_cpu": sum(result["server_cpu"] for result in results),
    }
    if sequencer is None:  # the request side alone: the queue fills, sealed afterwards
        return len(commits) / elapsed, [], info
    stop_file.write_text("stop")
    assert sequencer.wait() == 0
    sealed = json.loads(seq_out.read_text())
    delays = [sealed["sealed_at"][id_] - at for id_, at in commits if id_ in sealed["sealed_at"]]
    info["missing"] = sum(1 for id_, _at in commits if id_ not in sealed["sealed_at"])
    info["batches"] = sealed["batches"]
    info["sequencer_cpu"] = sealed["cpu"]
    info["sequencer_server_cpu"] = sealed["server_cpu"]
    return len(commits) / elapsed, delays, info


def _cpu_line(info: dict) -> str:
    """CPU per appended event, measured in-process: the appenders (Python), their PostgreSQL backends, the
    sequencer and its backend (over the whole run, its drain included), and the machine's busy time in the
    appenders' window, which also holds other processes' work (PostgreSQL's background writers, the kernel,
    whatever else runs on the machine)."""
    events = max(1, info["events"])

    def per(value: float) -> str:
        return f"{value / events * 1e6:,.0f}"

    line = f"    CPU per event (µs): appenders {per(info['cpu'])} + their backends {per(info['server_cpu'])}"
    ours = info["cpu"] + info["server_cpu"]
    if "sequencer_cpu" in info:
        line += f" + sequencer {per(info['sequencer_cpu'])} + its backend {per(info['sequencer_server_cpu'])}"
        ours += info["sequencer_cpu"] + info["sequencer_server_cpu"]
    cores = os.cpu_count() or 1
    line += (
        f" = {per(ours)}; PostgreSQL's background processes {per(info['background'])}; "
        f"the machine was busy {per(info['busy'])} per event "
        f"({info['busy'] / (cores * info['window']):.0%} of {cores} cores)"
    )
    return line


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("append", "sequencer", "detail"):
        role, args = sys.argv[1], sys.argv[2:]
        if role == "append":
            role_append(float(args[0]), float(args[1]), bool(int(args[2])), args[3])
        elif role == "sequencer":
            role_sequencer(args[0], args[1], float(args[2]))
        else:
            role_detail(float(args[0]), float(args[1]), int(args[2]), args[3], args[4], args[5])
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    options = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("bench/audit_concurrency.py needs DATABASE_URL=postgres://… (a database of its own)")
        return 2
    from bench.setup import setup_django

    setup_django(url)
    from django.core.management import call_command

    from bench.bench_audit import _seed

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    _setup(False)
    from django.db import connection

    from audit import sequencer
    from audit.models import AuditQueue
    from audit.verification import verify_chain

    referral, _iom_token, dp_token = _seed(0)
    sequencer.seal_pending(wait=True)
    connection.close()
    dsn = url
    print(f"PostgreSQL, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    with tempfile.TemporaryDirectory(prefix="rcm-audit-conc-") as tmpdir:
        tmp = Path(tmpdir)
        rates = {}
        all_delays: list[float] = []
        for inline in (False, True):
            for processes in (1, 8):
                rate, delays, info = _run_appends(processes, options.seconds, inline, tmp)
                rates[(processes, inline)] = rate
                label = "inline sealing (issue 14's lock)" if inline else "queue + sequencer"
                plural = "es" if processes > 1 else ""
                line = f"appends, {processes} process{plural}, {label}: {rate:,.0f} events/s"
                if not inline:
                    all_delays += delays
                    line += (
                        f"; sealed after commit p50 {_pct(delays, 0.5) * 1000:.0f} ms, "
                        f"p95 {_pct(delays, 0.95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
                        f" ({info['missing']} not seen sealed)"
                    )
                print(line, flush=True)
                print(_cpu_line(info), flush=True)
        # The request side alone (no sealer running: the queue fills), then the backlog sealed in one go.
        rate, _delays, info = _run_appends(8, options.seconds, False, tmp, sealing=False)
        backlog = AuditQueue.objects.count()
        started = time.perf_counter()
        sequencer.seal_pending(wait=True)
        sealing_rate = backlog / (time.perf_counter() - started)
        print(
            f"appends, 8 processes, queue only (sequencer paused): {rate:,.0f} events/s "
            f"= {rate / rates[(1, False)]:.2f}x one process with its sequencer; then the backlog of "
            f"{backlog:,} sealed at {sealing_rate:,.0f} events/s by one sequencer"
        )
        print(_cpu_line(info), flush=True)
        connection.close()
        for inline in (False, True):
            ratio = rates[(8, inline)] / rates[(1, inline)]
            label = "queue + sequencer" if not inline else "inline (lock)"
            print(f"8 processes / 1 process, {label}: {ratio:.2f}x (target >= 2x for the queue)")
        print(
            f"seal delay after commit (all queue runs): p50 {_pct(all_delays, 0.5) * 1000:.0f} ms, "
            f"p95 {_pct(all_delays, 0.95) * 1000:.0f} ms (target p95 <= 1000 ms)"
        )

        # The referral detail: 1 client (the baseline of the audit statement), then 16.
        for processes, threads in ((1, 1), (4, max(1, options.clients // 4))):
            stop_file = tmp / f"stop-detail-{processes}"
            seq_out = tmp / f"seq-detail-{processes}.json"
            sequencer_process = _spawn("sequencer", str(stop_file), str(seq_out), "0.2")
            start = time.time() + 4.0
            outs = [tmp / f"detail-{processes}-{n}.json" for n in range(processes)]
            detail_url = f"/api/v1/referrals/{referral.pk}/"
            children = [
                _spawn(
                    "detail", str(start), str(options.seconds), str(threads), detail_url, dp_token, str(out)
                )
                for out in outs
            ]
            sampler = LockSampler(dsn)
            _wait_for(start)
            sampler.start()
            began = time.time()
            for child in children:
                assert child.wait() == 0
            sampler.stop.set()
            sampler.join()
            duration = time.time() - began
            stop_file.write_text("stop")
            assert sequencer_process.wait() == 0
            requests = [t for out in outs for t in json.loads(out.read_text())["requests"]]
            answered = [r for out in outs for r in json.loads(out.read_text())["responses"]]
            sealed_at = json.loads(seq_out.read_text())["sealed_at"]
            detail_delays = [sealed_at[id_] - at for id_, at in answered if id_ in sealed_at]
            statements = [t for out in outs for t in json.loads(out.read_text())["statement"]]
            mean_waiting = sampler.waiting / max(1, sampler.samples)
            lock_wait_per_request = mean_waiting * duration / max(1, len(requests))
            print(
                f"referral detail, {processes * threads} client(s): "
                f"{len(requests) / duration:,.0f} requests/s, "
                f"request p50 {_pct(requests, 0.5) * 1000:.1f} ms, p95 {_pct(requests, 0.95) * 1000:.1f} ms"
            )
            print(
                f"  sealed after the response: p50 {_pct(detail_delays, 0.5) * 1000:.0f} ms, "
                f"p95 {_pct(detail_delays, 0.95) * 1000:.0f} ms, max {max(detail_delays) * 1000:.0f} ms "
                f"({len(answered) - len(detail_delays)} of {len(answered)} not seen sealed; "
                "target p95 <= 1000 ms)"
            )
            print(
                "  the audit statement (queue INSERT) per request: "
                f"mean {statistics.mean(statements) * 1000:.2f} ms, "
                f"p95 {_pct(statements, 0.95) * 1000:.2f} ms"
            )
            print(
                f"  lock waits seen by PostgreSQL (pg_stat_activity, {sampler.samples} samples): "
                f"{mean_waiting:.3f} backends waiting on average -> "
                f"mean {lock_wait_per_request * 1000:.3f} ms "
                f"per request (target <= 1 ms); by wait event {sampler.by_event or '{}'}"
            )

    sequencer.seal_pending(wait=True)
    result = verify_chain()
    print(f"queue left: {AuditQueue.objects.count()}; {result.summary()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
