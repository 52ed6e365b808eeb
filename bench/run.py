"""The partner API at scale: seed 100,000 cases and referrals over 5 institutions, then measure the inbound
list (page of 50), a referral's detail and create+send against plain DRF views over the same rows.

    .venv/bin/python bench/run.py               # 100,000 cases and referrals, SQLite in a temp dir
    .venv/bin/python bench/run.py --cases 20000 # smaller
    .venv/bin/python bench/run.py --cases 20000 --offices 30  # with 30 offices (issue 20)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_bench .venv/bin/python bench/run.py  # PostgreSQL

Prints medians, ratios and queries per request.

``--offices N`` (issue 20) adds N offices spread over the institutions, a caseworker and a supervisor in
each, referrals spread over the receivers' offices (one in ``offices + 1`` at the national intake) with the
office groups' grants, and measures also an office caseworker's inbound list and detail (signed in, as
the real API allows) against the plain views of their office's referrals, the queries per page of that
list, and create + send with a province that routes the referral to an office at send.
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

from bench.setup import setup_django  # noqa: E402 — after the path

#: Indexes the inbound/outbound lists need to read a page in index order (requested in referrals/models.py).
LIST_INDEXES = {
    "bench_referral_to_created": ("to_institution_id", "created_at"),
    "bench_referral_to_updated": ("to_institution_id", "updated_at"),
    "bench_referral_from_updated": ("from_institution_id", "updated_at"),
}


def _ensure_list_indexes() -> None:
    """Create the list indexes if the migrations do not (yet) provide them, and say so."""
    from django.db import connection

    with connection.cursor() as cursor:
        existing = connection.introspection.get_constraints(cursor, "referrals_referral")
    have = {tuple(c["columns"][:2]) for c in existing.values() if c["index"] and len(c["columns"]) >= 2}
    for name, columns in LIST_INDEXES.items():
        if columns not in have:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE INDEX {name} ON referrals_referral ({columns[0]}, {columns[1]} DESC)")
            print(f"note: created index {name} {columns} (not yet in the migrations)")


def _timed(fn, repeat: int) -> list[float]:
    times = []
    for index in range(repeat):
        started = time.perf_counter()
        fn(index)
        times.append((time.perf_counter() - started) * 1000)
    return times


#: Transaction control, not queries: SQLite's explicit BEGIN (Django opens transactions with it there).
_CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")


def _statements(fn) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn(0)
    return [q["sql"] for q in ctx.captured_queries]


def _queries(fn) -> int:
    """Queries of one call (transaction control statements not counted; see ``_CONTROL``)."""
    return sum(1 for sql in _statements(fn) if not sql.lstrip().upper().startswith(_CONTROL))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--offices", type=int, default=0, help="offices over the institutions (issue 20)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    url = setup_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.seed import institutions_and_tokens, offices_and_staff, seed
    from referrals.models import Case, Referral

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    # As a serving process does (config/wsgi.py): its sequencer thread seals the audit queue every 200 ms,
    # so a request pays its audit INSERT only, not the sealing (without the thread each commit would seal).
    from audit.sequencer import start_embedded_sequencer

    start_embedded_sequencer()
    print(f"database: {connection.vendor} ({'temp file' if 'rcm-bench-' in url else url.split('@')[-1]})")
    _ensure_list_indexes()
    institutions, tokens = institutions_and_tokens()
    offices = offices_and_staff(institutions, args.offices) if args.offices else {}
    if offices:
        print(
            f"offices: {args.offices} over {len(institutions)} institutions, "
            "a caseworker and a supervisor in each"
        )
    iom, dp = tokens["IOM"], tokens["DP"]
    as_dp = {"HTTP_AUTHORIZATION": f"Bearer {dp}"}
    as_iom = {"HTTP_AUTHORIZATION": f"Bearer {iom}"}
    client = Client()

    def inbound(page_size):
        return lambda _i: client.get(f"/api/v1/referrals/?direction=inbound&page_size={page_size}", **as_dp)

    def plain_inbound(page_size):
        return lambda _i: client.get(f"/api/bench/plain/referrals/?page_size={page_size}", **as_dp)

    # Queries per page on a small table first, then on the full one.
    small = min(1000, args.cases)
    started = time.perf_counter()
    seed(institutions, small, offices=offices)
    client.get("/api/v1/institutions/", **as_dp)  # first use of the token (last_used_at)
    inbound(5)(0)  # first list: permission ids are looked up once per process
    small_queries = {size: _queries(inbound(size)) for size in (5, 50, 100)}
    if offices:
        from accounts.models import User

        office_user = User.objects.get(
            username=f"bench.dp.{offices[institutions[1].pk][0].code.lower()}.caseworker"
        )
        staff = Client()
        staff.force_login(office_user)

        def office_inbound(page_size):
            return lambda _i: staff.get(f"/api/v1/referrals/?direction=inbound&page_size={page_size}")

        def plain_office_inbound(page_size):
            return lambda _i: staff.get(f"/api/bench/plain/referrals/?page_size={page_size}")

        office_inbound(5)(0)
        small_office_queries = {size: _queries(office_inbound(size)) for size in (5, 50, 100)}
    seed(institutions, args.cases - small, offset=small, offices=offices)
    seconds = time.perf_counter() - started
    print(
        f"seeded {Case.objects.count():,} cases and {Referral.objects.count():,} referrals over "
        f"{len(institutions)} institutions in {seconds:.1f} s ({args.cases / seconds:,.0f} cases+referrals/s)"
    )
    client.get("/api/v1/institutions/", **as_dp)  # last_used_at is refreshed once a minute: not per page
    big_queries = {size: _queries(inbound(size)) for size in (5, 50, 100)}
    print(
        f"queries per inbound page, {small:,} cases:  "
        + ", ".join(f"size {k}: {v}" for k, v in small_queries.items())
    )
    print(
        f"queries per inbound page, {args.cases:,} cases: "
        + ", ".join(f"size {k}: {v}" for k, v in big_queries.items())
    )
    if offices:
        big_office_queries = {size: _queries(office_inbound(size)) for size in (5, 50, 100)}
        print(
            f"queries per office inbound page, {small:,} cases:  "
            + ", ".join(f"size {k}: {v}" for k, v in small_office_queries.items())
        )
        print(
            f"queries per office inbound page, {args.cases:,} cases: "
            + ", ".join(f"size {k}: {v}" for k, v in big_office_queries.items())
        )

    dp_pk = institutions[1].pk
    detail_ids = list(
        Referral.objects.filter(to_institution_id=dp_pk, status="requested").values_list("pk", flat=True)[
            :500
        ]
    )
    iom_cases = list(Case.objects.filter(institution=institutions[0]).values_list("pk", flat=True)[:2000])

    # Referrals someone took: their detail loads the assignee (one more query); measured apart, no target.
    from accounts.choices import Role
    from accounts.services import staff_user_create

    taker = staff_user_create(institution=institutions[1], username="bench.caseworker", role=Role.CASEWORKER)
    assigned_ids = list(
        Referral.objects.filter(to_institution_id=dp_pk)
        .exclude(status="draft")
        .exclude(pk__in=detail_ids)
        .values_list("pk", flat=True)[:500]
    )
    Referral.objects.filter(pk__in=assigned_ids).update(assignee=taker)

    def details(ids, who=client, headers=as_dp):
        def detail(i):
            response = who.get(f"/api/v1/referrals/{ids[i % len(ids)]}/", **headers)
            assert response.status_code == 200, response.content[:200]

        def plain_detail(i):
            response = who.get(f"/api/bench/plain/referrals/{ids[i % len(ids)]}/", **headers)
            assert response.status_code == 200

        return detail, plain_detail

    detail, plain_detail = details(detail_ids)

    def create_and_send(i, province=None):
        body = {
            "case": str(iom_cases[i % len(iom_cases)]),
            "to_institution": "DP",
            "services": ["legal_assistance"],
            "urgency": "urgent",
            "reason": "Motivo",
            "consent": {
                "given": True,
                "given_by": "self",
                "method": "verbal",
                "obtained_at": "2026-01-01T00:00:00Z",
                "data_categories": ["identity"],
            },
        }
        if province:
            body["province"] = province
        created = client.post("/api/v1/referrals/", body, content_type="application/json", **as_iom)
        assert created.status_code == 201, created.content[:300]
        sent = client.post(
            f"/api/v1/referrals/{created.json()['id']}/send/", {}, content_type="application/json", **as_iom
        )
        assert sent.status_code == 200, sent.content[:300]
        return sent

    def check(fn):
        response = fn(0)
        assert response.status_code == 200, response.content[:300]
        return fn

    measured = [
        ("inbound list (page of 50)", check(inbound(50)), check(plain_inbound(50))),
        ("referral detail", detail, plain_detail),
        *([("detail, assigned (no target)", *details(assigned_ids))] if assigned_ids else []),
    ]
    if offices:
        at_office = list(
            Referral.objects.filter(to_office=office_user.office, status="requested").values_list(
                "pk", flat=True
            )[:500]
        )
        measured += [
            ("office list (session)", check(office_inbound(50)), check(plain_office_inbound(50))),
            ("office detail (session)", *details(at_office, staff, {})),
        ]
    rows = []
    for name, ours, plain in measured:
        for fn in (ours, plain):  # warm up
            _timed(fn, 20)
        # Interleave so that both see the same machine state.
        ours_t, plain_t = [], []
        for _round in range(5):
            ours_t += _timed(ours, args.repeat // 5)
            plain_t += _timed(plain, args.repeat // 5)
        rows.append(
            (name, statistics.median(ours_t), statistics.median(plain_t), _queries(ours), _queries(plain))
        )
    _timed(create_and_send, 5)
    cs = _timed(create_and_send, max(50, args.repeat // 3))
    cs_queries = _queries(create_and_send)
    # Routing at send (issue 20): the same with a province — routed to the receiver's office there, when
    # it has one (with --offices), else still looked up and left at the national intake.
    province = offices[institutions[1].pk][0].province if offices else "PA-1"
    routed_to = create_and_send(0, province).json()["to_office"]
    cs_routed_queries = _queries(lambda i: create_and_send(i, province))

    print()
    print(f"{'':28} {'API ms':>8} {'plain ms':>9} {'ratio':>6} {'queries':>8} {'plain q':>8}")
    for name, ours_ms, plain_ms, q, pq in rows:
        print(f"{name:28} {ours_ms:8.2f} {plain_ms:9.2f} {ours_ms / plain_ms:6.2f} {q:8} {pq:8}")
    print(f"{'create + send (2 requests)':28} {statistics.median(cs):8.2f} {'':>9} {'':>6} {cs_queries:8}")
    print(
        f"{'create + send, routed':28} {'':>8} {'':>9} {'':>6} {cs_routed_queries:8}"
        f"   (province {province} → {routed_to or 'national intake'})"
    )
    print()
    # Issue 11's targets (no query pre-compilation anywhere): list ≤ 1.3x, detail ≤ 1.5x, create + send
    # ≤ 25 queries; and issue 6's: constant queries per page, create + send < 50 ms.
    targets = [
        ("list within 1.3x of plain", rows[0][1] / rows[0][2] <= 1.3),
        ("detail within 1.5x of plain", rows[1][1] / rows[1][2] <= 1.5),
        ("queries per page constant", len(set(small_queries.values()) | set(big_queries.values())) == 1),
        ("create+send <= 25 queries", cs_queries <= 25),
        ("create+send median < 50 ms", statistics.median(cs) < 50),
        ("routing at send adds <= 2 queries", cs_routed_queries - cs_queries <= 2),
    ]
    if offices:
        # Issue 11's ratios are the token's (the rows above, now over offices and their grants). An office
        # caseworker signs in: the session path pays two queries a token does not (the user's institution
        # and groups, as before offices), so their ratios are shown, not held to issue 11's targets; their
        # queries per page must stay constant all the same.
        office_pages = set(small_office_queries.values()) | set(big_office_queries.values())
        targets.append(("office queries per page constant", len(office_pages) == 1))
    for label, ok in targets:
        print(f"  [{'x' if ok else ' '}] {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
