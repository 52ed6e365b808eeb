"""The cost of field encryption: per field, and per list page against the request time of that page.

    .venv/bin/python bench/bench_crypto.py                 # SQLite in a temp dir, 2,000 cases
    .venv/bin/python bench/bench_crypto.py --cases 20000 --repeat 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_bench_crypto .venv/bin/python bench/bench_crypto.py

Prints medians. Target (issue 3): decrypting a 50-item page's worth of personal fields costs under 5% of the
request time of a 50-item page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUBJECT_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "nationality",
    "languages",
    "document_type",
    "document_number",
    "phone",
    "email",
    "current_location",
    "protection_needs",
    "is_minor",
)
REFERRAL_TEXTS = ("reason", "status_reason", "outcome")


def per_call_us(fn, *, number: int, rounds: int = 15) -> float:
    """Median over ``rounds`` of the mean time of one call (µs), each round timing ``number`` calls."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(samples)


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    from bench.setup import setup_django

    url = setup_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.seed import institutions_and_tokens, seed
    from referrals import crypto
    from referrals.models import Case, Referral, Subject

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({'temp file' if 'rcm-bench-' in url else url.split('@')[-1]})")
    institutions, tokens = institutions_and_tokens()
    seed(institutions, args.cases)
    print(f"seeded {Case.objects.count():,} cases, {Referral.objects.count():,} referrals")

    # --- per field --------------------------------------------------------------------------------
    dek = crypto.new_data_key()
    short, free_text = "Pérez Rondón".encode(), ("Sobreviviente de violencia en la ruta; " * 8).encode()
    aad = "referrals.subject.family_name:3f0c1c9e-8a57-4c1b-9b8e-2d5b6f1f9a10"
    sealed_short = crypto.encrypt_value(dek, short, aad)
    sealed_long = crypto.encrypt_value(dek, free_text, aad)
    kek = crypto.active_kek()
    owner = uuid.uuid4()
    wrapped = crypto.wrap_data_key(dek, owner_id=owner)
    unwrap_cold = crypto._unwrap.__wrapped__  # the uncached unwrap: what a page pays once per case

    subject = Subject.objects.select_related("case").order_by("pk").first()
    subject.case.data_key()
    stored = {name: subject.__dict__[name] for name in SUBJECT_FIELDS}

    def read_all_fields():
        subject.__dict__.update(stored)
        for name in SUBJECT_FIELDS:
            getattr(subject, name)

    figures = {
        f"encrypt, short field ({len(short)} B)": per_call_us(
            lambda: crypto.encrypt_value(dek, short, aad), number=2000
        ),
        f"decrypt, short field ({len(short)} B)": per_call_us(
            lambda: crypto.decrypt_value(dek, sealed_short, aad), number=2000
        ),
        f"encrypt, free text ({len(free_text)} B)": per_call_us(
            lambda: crypto.encrypt_value(dek, free_text, aad), number=2000
        ),
        f"decrypt, free text ({len(free_text)} B)": per_call_us(
            lambda: crypto.decrypt_value(dek, sealed_long, aad), number=2000
        ),
        "model field read (descriptor: decrypt + decode), mean of 13 subject fields": per_call_us(
            read_all_fields, number=300
        )
        / len(SUBJECT_FIELDS),
        "unwrap a case's data key (uncached)": per_call_us(
            lambda: unwrap_cold(kek, wrapped, owner), number=2000
        ),
        "blind index (HMAC-SHA256, truncated)": per_call_us(
            lambda: crypto.blind_index("document_number", "V12345678"), number=2000
        ),
    }
    print()
    print(f"{'per field / per key':74} {'µs (median)':>12}")
    for name, value in figures.items():
        print(f"{name:74} {value:12.2f}")

    # --- per page ---------------------------------------------------------------------------------
    receiver = institutions[1]
    ids = list(
        Referral.objects.filter(to_institution=receiver)
        .exclude(status="draft")
        .order_by("-created_at")
        .values_list("pk", flat=True)[:50]
    )
    rows = list(
        Referral.objects.select_related("case", "case__subject", "consent").filter(pk__in=ids).order_by("pk")
    )
    originals = [
        (
            r,
            {n: r.__dict__[n] for n in REFERRAL_TEXTS},
            {n: r.case.subject.__dict__[n] for n in SUBJECT_FIELDS},
            r.consent.__dict__["details"],
        )
        for r in rows
    ]

    def decrypt_page(subject_fields, texts=True, cold=True):
        """Decrypt these fields of 50 referrals. Cold: each case's data key is unwrapped again (the first view
        of these cases since the process started); warm: the process still holds the unwrapped keys (its
        LRU caches), as for pages viewed again. Each run starts from new ciphertexts on the instances, as a
        fresh request does. (The list endpoints themselves decrypt nothing: their items are metadata only.)"""

        def run():
            if cold:
                crypto.forget_cached_keys()
            for referral, free_texts, person, details in originals:
                referral.case.__dict__.pop("_dek", None)
                referral.case.subject.__dict__.update(person)
                for name in subject_fields:
                    getattr(referral.case.subject, name)
                if texts:
                    referral.__dict__.update(free_texts)
                    referral.consent.__dict__["details"] = details
                    for name in REFERRAL_TEXTS:
                        getattr(referral, name)
                    referral.consent.details  # noqa: B018

        return run

    names_page = decrypt_page(("given_name", "family_name"), texts=False)
    names_warm = decrypt_page(("given_name", "family_name"), texts=False, cold=False)
    full_page = decrypt_page(SUBJECT_FIELDS)
    full_warm = decrypt_page(SUBJECT_FIELDS, cold=False)
    full_fields = len(rows) * (len(SUBJECT_FIELDS) + len(REFERRAL_TEXTS) + 1)

    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens[receiver.code]}"}

    def list_page():
        response = client.get("/api/v1/referrals/?direction=inbound&page_size=50", **auth)
        assert response.status_code == 200 and len(response.json()["results"]) == 50

    def detail():
        response = client.get(f"/api/v1/referrals/{ids[0]}/", **auth)
        assert response.status_code == 200

    runs = {
        "page": list_page,
        "detail": detail,
        "names": names_page,
        "names_warm": names_warm,
        "full": full_page,
        "full_warm": full_warm,
    }
    for fn in runs.values():
        for _ in range(10):
            fn()  # warm up
    samples = {name: [] for name in runs}
    for _ in range(5):  # interleaved, so that each sees the same machine state
        for name, fn in runs.items():
            samples[name].append(median_ms(fn, args.repeat // 5))
    ms = {name: statistics.median(values) for name, values in samples.items()}
    page, one = ms["page"], ms["detail"]

    def row(label, value, base=page):
        print(f"{label:78} {value:12.3f} {value / base * 100:7.2f}%")

    print()
    print(f"{'per page (50 items)':78} {'ms (median)':>12} {'of page':>8}")
    print(f"{'GET /api/v1/referrals/?page_size=50 — request time (metadata only: 0 fields)':78} {page:12.3f}")
    row("decrypt the names on a 50-item page (100 fields), data keys cached", ms["names_warm"])
    row("decrypt the names on a 50-item page (100 fields), 50 data keys unwrapped", ms["names"])
    row(f"decrypt 50 full representations ({full_fields} fields), data keys cached", ms["full_warm"])
    row(f"decrypt 50 full representations ({full_fields} fields), 50 data keys unwrapped", ms["full"])
    print()
    print(f"{'GET /api/v1/referrals/{id}/ — request time (one full representation)':78} {one:12.3f}")
    row("  its decryption (17 fields, 1 data key unwrapped)", ms["full"] / len(rows), base=one)
    print()
    print("target: decryption under 5% of the request time of a 50-item page")
    print("  list endpoints (items are metadata only, contract §4): 0 fields decrypted -> 0% (met by design)")
    print(f"  one referral's detail: {ms['full'] / len(rows) / one * 100:.2f}% of its request time")
    for label, key in (("names of 50 people", "names"), (f"{full_fields} fields of 50 items", "full")):
        share = ms[key] / page * 100
        warm = ms[f"{key}_warm"] / page * 100
        verdict = "met" if share < 5 else "over"
        print(f"  if a page showed the {label}: {share:.2f}% cold, {warm:.2f}% with cached keys ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
