"""The cell-key method (contract §7.5): small deterministic adjustments that make differences of tables noisy.

Every referral carries a fixed random *record key* in ``[0, KEY_RANGE)`` (``Referral.record_key``, drawn at
creation). A cell — a row of a table, or its total — has a *cell key*: the sum of its referrals' record
keys modulo ``KEY_RANGE``. Its published count is its true count ``n`` plus an adjustment read from the
*perturbation table* at row ``n`` and column ``cell key``. The same set of referrals therefore always gets
the same published count, whatever query produced it (repeating a query, or asking for the same cell
through another period or dimension, teaches nothing new), while two sets that differ by one referral get
adjustments that are unrelated to each other: the difference of two overlapping tables is noisy.

The table is built from ``min_cell`` and ``MAX_ADJUSTMENT`` by ``distribution``:

* a true zero stays zero;
* from ``min_cell + MAX_ADJUSTMENT`` on, the adjustment follows ``BASE`` (−2…+2, symmetric: unbiased);
* between ``min_cell`` and there, ``BASE`` truncated symmetrically so that nothing falls below
  ``min_cell`` (still unbiased; a count of exactly ``min_cell`` is published as it is);
* a true count from 1 to ``min_cell − 1`` is published as 0 or as a count ≥ ``min_cell`` (no published
  count is ever between 1 and ``min_cell − 1``): the mix of 0 and ``min_cell`` whose mean is the true
  count when both are within ``MAX_ADJUSTMENT``; otherwise the one of them that is (with
  ``min_cell = 5``: 1 and 2 → 0; 3 and 4 → 5). Those few rows are the only biased ones. With a
  ``min_cell`` above 5 some counts have neither within reach: they go to the nearer of the two, and the
  response's ``max_adjustment`` says how far that is (2 up to ``min_cell = 5``, the default).

Each row's probabilities are turned into cumulative thresholds over ``KEY_RANGE`` cell keys, so a uniform
cell key picks each adjustment with its probability.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache

from referrals.models import RECORD_KEY_RANGE

KEY_RANGE = RECORD_KEY_RANGE
MAX_ADJUSTMENT = 2
#: The name the responses give the method (``"protection"``).
PROTECTION = "cell_key"
#: The adjustment's distribution for counts well above ``min_cell``: half the cells are published exact.
BASE = {-2: Fraction(1, 20), -1: Fraction(1, 5), 0: Fraction(1, 2), 1: Fraction(1, 5), 2: Fraction(1, 20)}


def cell_key(record_keys: Iterable[int]) -> int:
    return sum(record_keys) % KEY_RANGE


@lru_cache(maxsize=64)
def distribution(count: int, min_cell: int) -> tuple[tuple[int, Fraction], ...]:
    """The published counts of a true ``count`` and their probabilities (the table's row ``count``)."""
    if count <= 0:
        return ((0, Fraction(1)),)
    if count >= min_cell:
        reach = min(MAX_ADJUSTMENT, count - min_cell)
        kept = {d: p for d, p in BASE.items() if abs(d) <= reach}
        whole = sum(kept.values())
        return tuple((count + d, p / whole) for d, p in sorted(kept.items()))
    down = count <= MAX_ADJUSTMENT  # 0 is within reach
    up = count + MAX_ADJUSTMENT >= min_cell  # min_cell is within reach
    if down and up:
        share = Fraction(count, min_cell)  # mean 0·(1 − share) + min_cell·share = count
        return ((0, 1 - share), (min_cell, share))
    if down or up:
        return ((0, Fraction(1)),) if down else ((min_cell, Fraction(1)),)
    # Neither within reach (only with min_cell > 2 · MAX_ADJUSTMENT + 1): confidentiality first, the nearer
    # of 0 and min_cell, beyond MAX_ADJUSTMENT (``max_adjustment`` then says how far).
    return ((0, Fraction(1)),) if 2 * count < min_cell else ((min_cell, Fraction(1)),)


@lru_cache(maxsize=16)
def max_adjustment(min_cell: int) -> int:
    """The largest adjustment of the table: ``MAX_ADJUSTMENT`` (2) whenever ``min_cell`` ≤ 5."""
    return max(
        abs(published - count)
        for count in range(min_cell + MAX_ADJUSTMENT + 1)
        for published, _p in distribution(count, min_cell)
    )


@lru_cache(maxsize=64)
def _thresholds(count: int, min_cell: int) -> tuple[tuple[int, int], ...]:
    """``((upper cell key, published), …)``: a cell key below the first bound publishes the first value…"""
    bounds, cumulative = [], Fraction(0)
    for published, probability in distribution(count, min_cell):
        cumulative += probability
        bounds.append((round(cumulative * KEY_RANGE), published))
    return tuple(bounds)


def published_count(count: int, key: int, min_cell: int) -> int:
    """The published count of a cell of true ``count`` and cell key ``key``."""
    if count <= 0:
        return 0
    row = min(count, min_cell + MAX_ADJUSTMENT)  # every row from there on is alike
    for bound, published in _thresholds(row, min_cell):
        if key < bound:
            return published + (count - row)
    raise AssertionError("cell key outside the key range")  # pragma: no cover - keys are taken modulo


def table_rows(min_cell: int) -> list[tuple[str, list[tuple[int, Fraction]]]]:
    """The perturbation table as documented: ``(true count label, [(adjustment, probability)…])``."""
    rows = []
    for count in range(min_cell + MAX_ADJUSTMENT + 1):
        label = str(count) if count < min_cell + MAX_ADJUSTMENT else f"≥ {count}"
        rows.append((label, [(published - count, p) for published, p in distribution(count, min_cell)]))
    return rows
