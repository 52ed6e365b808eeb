"""The perturbation table of the cell-key method (contract §7.5), checked over every cell key."""

from __future__ import annotations

from fractions import Fraction

import pytest

from referrals.models import RECORD_KEY_RANGE, Referral
from reporting.perturbation import (
    KEY_RANGE,
    MAX_ADJUSTMENT,
    cell_key,
    distribution,
    max_adjustment,
    published_count,
    table_rows,
)

MIN_CELLS = [2, 3, 4, 5, 6, 10]


def published_over_keys(count: int, min_cell: int) -> list[int]:
    return [published_count(count, key, min_cell) for key in range(KEY_RANGE)]


@pytest.mark.parametrize("min_cell", MIN_CELLS)
def test_the_table_s_promises_over_every_cell_key(min_cell):
    assert published_over_keys(0, min_cell) == [0] * KEY_RANGE  # a true zero stays zero
    for count in range(1, min_cell + 12):
        values = published_over_keys(count, min_cell)
        assert max(abs(value - count) for value in values) <= max_adjustment(min_cell)
        assert not [value for value in values if 1 <= value < min_cell]
        if count >= min_cell:
            assert sum(values) == count * KEY_RANGE or abs(sum(values) / KEY_RANGE - count) < 0.01  # unbiased


@pytest.mark.parametrize("min_cell", MIN_CELLS)
def test_small_counts_are_unbiased_where_0_and_min_cell_are_both_within_reach(min_cell):
    for count in range(1, min_cell):
        mean = sum(p * value for value, p in distribution(count, min_cell))
        if count <= MAX_ADJUSTMENT and count + MAX_ADJUSTMENT >= min_cell:
            assert mean == count
        else:  # the nearest of 0 and min_cell: the only biased rows (documented)
            assert abs(mean - count) <= max_adjustment(min_cell)


def test_the_maximum_adjustment_is_2_up_to_min_cell_5():
    assert [max_adjustment(cell) for cell in (2, 3, 4, 5)] == [2, 2, 2, 2]
    assert max_adjustment(6) == 3


def test_the_documented_table_for_min_cell_5():
    rows = {label: {d: p for d, p in row} for label, row in table_rows(5)}
    assert rows["0"] == {0: 1}
    assert rows["1"] == {-1: 1} and rows["2"] == {-2: 1}  # published 0
    assert rows["3"] == {2: 1} and rows["4"] == {1: 1}  # published 5
    assert rows["5"] == {0: 1}
    assert rows["6"] == {-1: Fraction(2, 9), 0: Fraction(5, 9), 1: Fraction(2, 9)}
    assert rows["≥ 7"] == {
        -2: Fraction(1, 20),
        -1: Fraction(1, 5),
        0: Fraction(1, 2),
        1: Fraction(1, 5),
        2: Fraction(1, 20),
    }


def test_large_counts_share_the_last_row():
    for key in (0, 500, 2048, 3900, KEY_RANGE - 1):
        assert published_count(1000, key, 5) - 1000 == published_count(7, key, 5) - 7


def test_the_cell_key_is_the_sum_of_record_keys_modulo_the_range():
    assert cell_key([KEY_RANGE - 1, 2, 5]) == 6
    assert cell_key([]) == 0


@pytest.mark.django_db
def test_every_referral_gets_its_own_random_record_key_at_creation(iom, dp, iom_actor, dp_actor, refer):
    keys = [refer(iom_actor, dp_actor, dp, subject={}, path=()).record_key for _ in range(12)]
    stored = list(Referral.objects.order_by("created_at").values_list("record_key", flat=True))
    assert sorted(stored) == sorted(keys)
    assert len(set(keys)) > 6  # 12 draws from 4096 keys: a repeat or two at most, not one key for all
    assert min(keys) >= 0 and max(keys) < RECORD_KEY_RANGE
