"""Scores → u16 weights as the SDK sends them, and the row the chain stores (chain_interface.md §6.1).

SDK behaviours are those asserted by opentensor/bittensor `tests/unit_tests/utils/test_weight_utils.py`
(`test_convert_weight_and_uids`, `test_normalize_with_max_weight`) and documented in
`bittensor/utils/weight_utils.py`; the chain's re-upscale is yuma_spec.md §6, checked against the
real spec-218 runtime by the seeded subnet (tests/support/seed_subnet.py) and tests/test_weights_push_local.py.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from tasks.weights.convert import (
    WeightsRefused,
    chain_stored_row,
    convert_for_emit,
    normalize_max_weight,
    scores_to_weights,
)
from tests.support.seed_subnet import WEIGHTS_SENT, chain_max_upscale

M = 65535


def row(uids, scores, n, min_allowed=1, limit_u16=M):
    r = scores_to_weights(uids, scores, num_neurons=n, min_allowed_weights=min_allowed, max_weight_limit_u16=limit_u16)
    return r.uids, r.weights


# -- the SDK's own assertions -----------------------------------------------------------------------

def test_sdk_normalize_max_weight_assertions():
    rng = np.random.default_rng(0)
    for limit in (0.01, 0.02, 0.03):  # "wn.max() <= limit" for random and zero vectors of 1000
        assert normalize_max_weight(rng.random(1000).astype(np.float32), limit).max() <= limit
        assert normalize_max_weight(np.zeros(1000, dtype=np.float32), limit).max() <= limit
    # "Check for Zeros": all zero → uniform
    assert normalize_max_weight(np.zeros(2000), 0.01).max() == 1 / 2000
    # "Check for Ordering after normalization": limit 1 → plain normalisation
    w = rng.random(100)
    assert np.array_equal(normalize_max_weight(w, 1), w / w.sum())


def test_sdk_convert_for_emit_assertions():
    uids = np.arange(10)
    with pytest.raises(ValueError):  # "min weight < 0"
        convert_for_emit(uids, np.array([0.5] * 5 + [-1.0] + [0.5] * 4))
    out_uids, out = convert_for_emit(uids, np.zeros(10))  # "sum(weights) == 0": nothing to set
    assert (list(out_uids), list(out)) == ([], [])


# -- rounding: Python round, ties to even -----------------------------------------------------------

def test_max_upscale_rounds_ties_to_even_and_drops_zeros():
    weights = np.array([1.0, 0.5, 1 / 6, 0.3, 1e-6])
    # Preconditions: these products are exact .5 ties in float64 (checked with exact rationals).
    for w, tie in ((0.5, Fraction(65535, 2)), (1 / 6, Fraction(21845, 2)), (0.3, Fraction(39321, 2))):
        assert Fraction(w * 65535) == tie
    uids, out = convert_for_emit(np.arange(5), weights)
    # 32767.5 → 32768 (even, up); 10922.5 → 10922 (even, down); 19660.5 → 19660; 0.0655 → 0, dropped
    assert list(uids) == [0, 1, 2, 3]
    assert list(out) == [65535, 32768, 10922, 19660]


# -- max_weight_limit and min_allowed_weights -------------------------------------------------------

def test_max_weight_limit_clips_the_largest_weight():
    # limit L = 32767/65535. Sorted estimates 1/13,1/13,1/13,10/13: the first three pass the test
    # est/(est_sum+cumsum+ε) = 1/4 < L, so n_values = 3 and the cutoff is
    # (3L − 13·1e-7)/(1 − L) = 2.99990585… (in units of the scores). Upscaled: 1/2.9999·65535 = 21845.69.
    uids, weights = row([0, 1, 2, 3], [1, 1, 1, 10], n=4, limit_u16=32767)
    assert (uids, weights) == ([0, 1, 2, 3], [21846, 21846, 21846, 65535])
    stored = chain_stored_row(weights)
    assert max(stored) * M <= 32767 * sum(stored)  # the chain's own check passes (§6.2)


def test_no_clipping_when_the_limit_is_not_reached():
    assert row([0, 1, 2, 3], [1, 1, 1, 10], n=4) == ([0, 1, 2, 3], [6554, 6554, 6554, 65535])


def test_min_allowed_weights_pads_every_uid():
    # one non-zero weight of 4 uids, 3 required: every uid gets +1e-5, so the others become
    # round(1e-5/(1 + 1e-5) · 65535) = round(0.655) = 1.
    assert row([2], [1.0], n=4, min_allowed=3) == ([0, 1, 2, 3], [1, 1, 65535, 1])


def test_fewer_neurons_than_min_allowed_weights_gives_uniform_weights():
    assert row([0], [1.0], n=2, min_allowed=3) == ([0, 1], [65535, 65535])


def test_uids_come_out_ascending_and_missing_uids_score_zero():
    assert row([3, 0, 2], [2.0, 4.0, 1.0], n=5) == ([0, 2, 3], [65535, 16384, 32768])


# -- the chain's re-upscale (I32F32, half away from zero) -------------------------------------------

def test_chain_reupscale_of_the_seeded_rows():
    # stored by the real spec-218 chain (tests/test_ingest_flows.py reads them back)
    assert chain_stored_row([40000, 12345, 1, 20000]) == [65535, 20226, 2, 32767]
    assert chain_stored_row([65535, 30000, 10000, 0]) == [65535, 30000, 10000, 0]
    # max ≤ 32768 branch: 100·65535/2000 = 3276.75 → 3277, 300 → 9830.25 → 9830, 7 → 229.37 → 229
    assert chain_stored_row([100, 2000, 300, 7]) == [3277, 65535, 9830, 229]
    for sent in WEIGHTS_SENT:
        assert chain_stored_row(sent) == chain_max_upscale(sent)


def test_chain_reupscale_rounds_half_away_from_zero():
    # max 2 (the max ≤ 32768 branch): 1·65535/2 = 32767.5 exactly → 32768
    assert chain_stored_row([1, 2]) == [32768, 65535]
    # 5·65535/6 = 54612.5 exactly → 54613 (away from zero; ties-to-even would give 54612)
    assert Fraction(5 * 65535, 6) == Fraction(109225, 2)
    assert chain_stored_row([5, 6]) == [54613, 65535]
    assert chain_stored_row([0, 0]) == [0, 0] and chain_stored_row([]) == []


def test_reupscale_is_idempotent_on_a_sent_row():
    _, weights = row([0, 1, 2, 3], [1, 1, 1, 10], n=4, limit_u16=32767)
    assert chain_stored_row(weights) == weights  # the SDK sends max 65535, so nothing moves


# -- guards -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("uids, scores, reason", [
    ([], [], "empty"),
    ([0, 1], [1.0, math.nan], "NaN/inf"),
    ([0, 1], [1.0, math.inf], "NaN/inf"),
    ([0, 1], [1.0, -0.5], "negative score at uid 1"),
    ([0, 1], [0.0, 0.0], "all scores are zero"),
    ([0, 0], [1.0, 1.0], "duplicate uid"),
    ([0, 9], [1.0, 1.0], "uid 9 is not on a subnet of 4 uids"),
])
def test_guards_refuse_bad_scores(uids, scores, reason):
    with pytest.raises(WeightsRefused, match=reason):
        scores_to_weights(uids, scores, num_neurons=4, min_allowed_weights=1, max_weight_limit_u16=M)
