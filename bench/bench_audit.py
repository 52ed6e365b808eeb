"""The cost of auditing a read: a 50-item list page with its read event vs. the same page without it.

    .venv/bin/python bench/bench_audit.py                 # a throwaway SQLite file in a temp dir
    .venv/bin/python bench/bench_audit.py --repeat 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit_bench .venv/bin/python bench/bench_audit.py

The page: ``GET /api/v1/referrals/{id}/notes/?page_size=50`` (50 notes, decrypted; one ``note.viewed``
event per page). "Without" replaces the read services' recorder (``referrals.reads``) with a no-op; the
two variants alternate in small blocks so that drift (caches, disk, other load) hits both alike. Also
timed: ``record()`` alone, the referral detail (one read event), and the auditors' own list page. Prints
medians, p95 and the overhead in %. On PostgreSQL the named database is flushed first: give it a database
of its own.

At scale (``--events N``, PostgreSQL): the audit log grown to N events, seeded fast (the chain is computed
in Python and streamed with COPY, with progress), and the figures of issue 14: the cost of writing one event
at N vs. at 10,000; an auditor's filtered page (by object, actor, action, period) through the API;
incremental verification of the last busy hour (25,000 events after a verified checkpoint); full
verification in events/s::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_audit_bench \
      .venv/bin/python bench/bench_audit.py --events 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_PERCENT = 10.0


def _ms(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _stats(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(times):7.3f} ms   p95 {p95:7.3f} ms"


def _seed(prefill: int):
    """IOM and DP, their partner systems, an accepted referral with 50 notes, and ``prefill`` older events."""
    from django.utils import timezone

    from accounts.actor import actor_for_api_client
    from accounts.choices import Scope
    from accounts.services import api_client_create, institution_create
    from audit.recorder import record
    from referrals import services

    iom, _ = institution_create(code="IOM", name="IOM")
    dp, _ = institution_create(code="DP", name="Defensoría del Pueblo")
    scopes = [s.value for s in Scope]
    iom_client, iom_token = api_client_create(institution=iom, name="bench-iom", scopes=scopes)
    dp_client, dp_token = api_client_create(institution=dp, name="bench-dp", scopes=scopes)
    sender, receiver = actor_for_api_client(iom_client), actor_for_api_client(dp_client)
    subject = {
        "given_name": "María",
        "family_name": "Pérez",
        "sex": "female",
        "nationality": "VEN",
        "languages": ["es"],
        "document_type": "passport",
        "document_number": "V1234567",
        "phone": "+507 6000-0000",
        "is_minor": False,
    }
    case = services.case_create(actor=sender, subject=subject, summary="Resumen")
    referral = services.referral_create(
        actor=sender,
        case=case,
        to_institution=dp,
        services=["legal_assistance"],
        urgency="normal",
        reason="Motivo",
        consent={
            "given": True,
            "given_by": "self",
            "method": "verbal",
            "obtained_at": timezone.now(),
            "data_categories": ["identity", "contact"],
        },
    )
    services.referral_transition(actor=sender, referral_id=referral.pk, action="send")
    services.referral_transition(actor=receiver, referral_id=referral.pk, action="accept")
    for n in range(50):
        services.note_create(actor=sender if n % 2 else receiver, referral_id=referral.pk, body=f"Nota {n}")
    for n in range(prefill):
        record(
            actor=receiver,
            action="bench.prefill",
            object_type="referral",
            institutions=[iom],
            detail={"n": n},
        )
    return referral, iom_token, dp_token


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=300, help="requests per variant (default 300)")
    parser.add_argument("--prefill", type=int, default=5000, help="audit events written before measuring")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--events", type=int, default=0, help="grow the log to N events (PostgreSQL)")
    parser.add_argument("--busy-hour", type=int, default=25000, help="events in the last hour (--events)")
    args = parser.parse_args()
    from bench.setup import setup_django

    url = setup_django(args.database_url, prefix="rcm-bench-audit-")
    if args.events:
        from bench.audit_scale import run_at_scale

        return run_at_scale(events=args.events, busy_hour=args.busy_hour, repeat=min(args.repeat, 200))

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from audit.models import AuditEvent
    from audit.recorder import record
    from audit.verification import verify_chain
    from referrals import reads as read_services

    if connection.vendor == "postgresql":
        call_command("migrate", verbosity=0)
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    where = "temp file" if "rcm-bench-audit-" in url else url.split("@")[-1]
    print(f"database: {connection.vendor} ({where})")
    started = time.perf_counter()
    referral, iom_token, dp_token = _seed(args.prefill)
    print(
        f"seeded 1 referral with 50 notes and {AuditEvent.objects.count():,} audit events "
        f"in {time.perf_counter() - started:.1f} s"
    )

    client = Client()
    as_dp = {"HTTP_AUTHORIZATION": f"Bearer {dp_token}"}
    as_iom = {"HTTP_AUTHORIZATION": f"Bearer {iom_token}"}
    notes_url = f"/api/v1/referrals/{referral.pk}/notes/?page_size=50"
    detail_url = f"/api/v1/referrals/{referral.pk}/"

    def get(path, headers):
        def call():
            response = client.get(path, **headers)
            assert response.status_code == 200, response.content[:300]
            return response

        return call

    page = get(notes_url, as_dp)()
    assert len(page.json()["results"]) == 50
    real_record = read_services.record

    def without_recording(fn):
        def call():
            read_services.record = lambda **kwargs: None
            try:
                return fn()
            finally:
                read_services.record = real_record

        return call

    def compare(label, fn):
        """Alternate blocks of 10 with and without the read event; return the medians."""
        for _ in range(20):  # warm up both paths
            fn()
            without_recording(fn)()
        with_event, without_event = [], []
        before = AuditEvent.objects.count()
        variants = [(with_event, fn), (without_event, without_recording(fn))]
        for block in range(max(1, args.repeat // 10)):
            for times, call in variants if block % 2 == 0 else reversed(variants):
                times.extend(_ms(call) for _ in range(10))
        written = AuditEvent.objects.count() - before
        assert written == len(with_event), (written, len(with_event))  # each audited request wrote one event
        with_median, without_median = statistics.median(with_event), statistics.median(without_event)
        overhead = (with_median - without_median) / without_median * 100
        print(f"{label}")
        print(f"  with the read event     {_stats(with_event)}")
        print(f"  without the read event  {_stats(without_event)}")
        print(f"  overhead of auditing    {with_median - without_median:+.3f} ms = {overhead:+.1f} %")
        return overhead

    overhead = compare(
        "notes list, page of 50 (GET /api/v1/referrals/{id}/notes/?page_size=50)", get(notes_url, as_dp)
    )
    compare("referral detail (GET /api/v1/referrals/{id}/)", get(detail_url, as_dp))

    record_times = [
        _ms(
            lambda: record(
                action="bench.record", actor_type="system", institutions=["IOM", "DP"], detail={"n": 1}
            )
        )
        for _ in range(args.repeat)
    ]
    print(f"record() alone, its own transaction:        {_stats(record_times)}")
    audit_page = get("/api/v1/audit/events/?page_size=50", as_iom)
    audit_page()
    audit_times = [_ms(audit_page) for _ in range(args.repeat)]
    print(f"auditors' list, page of 50 (not recorded):   {_stats(audit_times)}")

    started = time.perf_counter()
    result = verify_chain()
    seconds = time.perf_counter() - started
    print(
        f"verify_audit over {result.checked:,} events: {seconds:.2f} s "
        f"({result.checked / seconds:,.0f} events/s), intact: {result.ok}"
    )
    verdict = "within" if overhead < TARGET_PERCENT else "OVER"
    print(
        f"target: a 50-item list page with its read event costs < {TARGET_PERCENT:.0f}% more: "
        f"{overhead:+.1f} % ({verdict} target)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
