"""A gunicorn configuration for the benchmarks (``--config bench/request_cpu.py``): each request's wall time
and the CPU time of the thread that served it (``time.thread_time``: the request's own work, whatever else
the machine runs — background threads excluded), one JSON line per request appended to ``$REQUEST_CPU_LOG``.

gunicorn calls ``pre_request`` and ``post_request`` in the thread that serves the request (its documented
server hooks). Nothing is written when ``REQUEST_CPU_LOG`` is unset.
"""

import json
import os
import threading
import time

_held = threading.local()


def pre_request(worker, req):
    _held.started = (time.time(), time.perf_counter(), time.thread_time())


def post_request(worker, req, environ, resp):
    log = os.environ.get("REQUEST_CPU_LOG")
    started = getattr(_held, "started", None)
    if not log or started is None:
        return
    line = {
        "path": req.path,
        "start": started[0],
        "end": started[0] + time.perf_counter() - started[1],
        "wall_ms": (time.perf_counter() - started[1]) * 1000,
        "cpu_ms": (time.thread_time() - started[2]) * 1000,
    }
    with open(log, "a") as out:
        out.write(json.dumps(line) + "\n")
