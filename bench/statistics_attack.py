"""How well the cell-key perturbation (contract §7.5) resists differencing, and what it costs in accuracy.

    .venv/bin/python bench/statistics_attack.py                 # 100,000 referrals a year, 20,000 attacks
    .venv/bin/python bench/statistics_attack.py --attacks 5000 --seed 3

A synthetic year of referrals (each with a random record key, as ``Referral.record_key``) is counted by
day in cells of nationality × sex (shares from 50 % down to 0.1 %). Published counts come from the
production code (``reporting.perturbation.published_count``), so the figures are those the API gives.

**The attack** (issue 22 item 1): a cell has a true count of 1 or 2 on one day (the "hidden day"). The
attacker asks for that cell over a random period that contains the day and over the same period without
it, and takes the difference — either a period ending (or starting) on the day minus the one that stops
before it, or a period around the day minus the two periods on each side. Without protection the
difference is the hidden count every time. The script prints the share of attacks that recover it
exactly, then the share when the attacker averages the estimates of k different pairs of periods (the
known limit of any noise that is unbiased) — and notes that repeating the *same* queries gives nothing,
as the same referrals always get the same published count.

**The cost**: the mean absolute difference between published and true counts over the non-empty cells of
monthly tables (month × nationality, month × sex, and the months' totals), at the demo's size (the 20
referrals of ``seed_demo``, all in one month) and at 1,000, 10,000 and 100,000 referrals a year.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_SHARE = 0.40
DAYS = 365
NATIONALITIES = {
    "VEN": 0.50,
    "COL": 0.20,
    "HTI": 0.10,
    "ECU": 0.08,
    "CUB": 0.05,
    "CHN": 0.03,
    "IND": 0.02,
    "AFG": 0.01,
    "CMR": 0.005,
    "MNG": 0.003,
    "NPL": 0.002,
}
SEXES = {"female": 0.5, "male": 0.5}
DEMO_SIZE = 20  # the referrals of ``manage.py seed_demo`` (11 at national intake, 9 routed to offices)


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def synthetic_year(referrals: int, rng: random.Random, key_range: int, spread: int = DAYS) -> dict:
    """``{cell: (counts by day, record-key sums by day)}`` for ``referrals`` sent over the first ``spread``
    days of a year."""
    cells = [(n, s) for n in NATIONALITIES for s in SEXES]
    weights = [NATIONALITIES[n] * SEXES[s] for n, s in cells]
    data = {cell: ([0] * DAYS, [0] * DAYS) for cell in cells}
    for cell in rng.choices(cells, weights, k=referrals):
        day = rng.randrange(spread)
        counts, keys = data[cell]
        counts[day] += 1
        keys[day] += rng.randrange(key_range)
    return data


class Cell:
    """One cell's counts and key sums over any period, from prefix sums."""

    def __init__(self, counts: list[int], keys: list[int], published_count, key_range: int, min_cell: int):
        self.counts, self.days = [0, *accumulate(counts)], counts
        self.keys = [0, *accumulate(keys)]
        self.published_count, self.key_range, self.min_cell = published_count, key_range, min_cell

    def true(self, first: int, last: int) -> int:
        return self.counts[last + 1] - self.counts[first] if first <= last else 0

    def published(self, first: int, last: int) -> int:
        if first > last:
            return 0
        key = (self.keys[last + 1] - self.keys[first]) % self.key_range
        return self.published_count(self.true(first, last), key, self.min_cell)


def attack_once(cell: Cell, day: int, rng: random.Random, count) -> int:
    """One differencing estimate of the cell's count on ``day`` over a random pair of periods."""
    before, after = rng.randint(0, 90), rng.randint(0, 90)
    first, last = max(day - before, 0), min(day + after, DAYS - 1)
    shape = rng.randrange(3)
    if shape == 0:  # [first, day] − [first, day − 1]
        return count(first, day) - count(first, day - 1)
    if shape == 1:  # [day, last] − [day + 1, last]
        return count(day, last) - count(day + 1, last)
    return count(first, last) - count(first, day - 1) - count(day + 1, last)  # around the day


def attacks(data: dict, n: int, rng: random.Random, make_cell, averaged: tuple[int, ...]) -> dict:
    """Shares of exact recoveries: ``{"none": …, "cell_key": …, ("average", k): …}``."""
    cells = {name: make_cell(*series) for name, series in data.items()}
    targets = [(name, day) for name, c in cells.items() for day in range(DAYS) if c.days[day] in (1, 2)]
    hits = {"none": 0, "cell_key": 0, **{("average", k): 0 for k in averaged}}
    for _ in range(n):
        name, day = rng.choice(targets)
        cell = cells[name]
        hidden = cell.days[day]
        hits["none"] += attack_once(cell, day, rng, cell.true) == hidden
        hits["cell_key"] += attack_once(cell, day, rng, cell.published) == hidden
        for k in averaged:
            mean = sum(attack_once(cell, day, rng, cell.published) for _ in range(k)) / k
            hits[("average", k)] += round(mean) == hidden
    return {name: count / n for name, count in hits.items()} | {"targets": len(targets)}


def monthly_error(data: dict, make_cell) -> dict:
    """Mean |published − true| over the non-empty cells of month × nationality, month × sex, and months."""
    bounds = [(m * DAYS // 12, (m + 1) * DAYS // 12 - 1) for m in range(12)]
    errors: dict[str, list[int]] = {"month × nationality": [], "month × sex": [], "month (total)": []}
    cells = {name: make_cell(*series) for name, series in data.items()}

    def merged(names):
        counts = [sum(cells[n].days[d] for n in names) for d in range(DAYS)]
        keys = [sum(data[n][1][d] for n in names) for d in range(DAYS)]
        return make_cell(counts, keys)

    groups = {
        "month × nationality": [merged([c for c in cells if c[0] == nat]) for nat in NATIONALITIES],
        "month × sex": [merged([c for c in cells if c[1] == sex]) for sex in SEXES],
        "month (total)": [merged(list(cells))],
    }
    for table, group in groups.items():
        for cell in group:
            for first, last in bounds:
                if cell.true(first, last):
                    errors[table].append(abs(cell.published(first, last) - cell.true(first, last)))
    return {table: (sum(e) / len(e) if e else 0.0, len(e)) for table, e in errors.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--referrals", type=int, default=100_000, help="referrals in the attacked year")
    parser.add_argument("--attacks", type=int, default=20_000)
    parser.add_argument("--min-cell", type=int, default=5)
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    _setup()
    from reporting.perturbation import KEY_RANGE, published_count

    rng = random.Random(args.seed)

    def make_cell(counts, keys):
        return Cell(counts, keys, published_count, KEY_RANGE, args.min_cell)

    print(f"cell-key perturbation: key range {KEY_RANGE}, min_cell {args.min_cell}, seed {args.seed}")
    year = synthetic_year(args.referrals, rng, KEY_RANGE)
    averaged = (5, 20, 100)
    shares = attacks(year, args.attacks, rng, make_cell, averaged)
    print(
        f"\nhidden-day differencing: {args.attacks:,} attacks on cells of true count 1–2 on one day "
        f"({shares['targets']:,} such cell-days in a year of {args.referrals:,} referrals), periods of up to "
        "90 days on each side"
    )
    print(f"  without protection (true counts)      recovered exactly in {shares['none']:6.1%}")
    ok = shares["cell_key"] <= TARGET_SHARE
    print(
        f"  cell key, one pair of periods         recovered exactly in {shares['cell_key']:6.1%}   "
        f"[{'x' if ok else ' '}] ≤ {TARGET_SHARE:.0%}"
    )
    print("  cell key, the same queries repeated   unchanged: the same referrals give the same figures")
    for k in averaged:
        print(
            f"  cell key, mean of {k:>3} different pairs recovered exactly in {shares[('average', k)]:6.1%}"
            "   (the limit: see docs/statistics.md)"
        )

    print("\nmean absolute error added to monthly tables (over their non-empty cells; small sizes repeated):")
    sizes = [
        ("demo (seed_demo, one month)", DEMO_SIZE, 30, 300),
        ("1,000 a year", 1_000, DAYS, 30),
        ("10,000 a year", 10_000, DAYS, 5),
        (f"{args.referrals:,} a year", args.referrals, DAYS, 1),
    ]
    for label, size, spread, repeat in sizes:
        totals: dict[str, list[float]] = {}
        for run in range(repeat):
            sample = (
                year if size == args.referrals and run == 0 else synthetic_year(size, rng, KEY_RANGE, spread)
            )
            for table, (mae, cells) in monthly_error(sample, make_cell).items():
                sums = totals.setdefault(table, [0.0, 0])
                sums[0] += mae * cells
                sums[1] += cells
        parts = "   ".join(f"{table} {total / cells:.2f}" for table, (total, cells) in totals.items())
        print(f"  {label:<28} {parts}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
