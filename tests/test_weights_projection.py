"""Projection of our validator's epoch outputs with a new weight row (tasks/weights/projection.py).

The snapshot is the epoch_logs vector of tests/test_consensus_flow.py (yuma_vectors.md §1): uids 0–2
validators with 1e9 alpha each, miners 3 and 4; validators 0 and 2 weight miner 3, validator 1 weights
miner 4; classic Yuma, bonds penalty 1, no bonds yet, pending emission 1e9 rao. The chain asserted its
outputs: validator_trust (65535, 0, 65535), dividends (32767, 0, 32767), emission 250M, 0, 250M.
"""

from __future__ import annotations

import polars as pl
import pytest

from tasks.weights.projection import project_epoch, replace_weight_row
from tests.test_consensus_flow import neurons, subnet, weights

ONE = 1 << 32
E_RAO = 1_000_000_000


def project(our_uid, uids, values):
    return project_epoch(subnet(0, 0), neurons(0, None), weights(0), None, our_uid, uids, values)


def test_same_row_projects_the_chains_own_outputs():
    p = project(0, [3, 4], [65535, 0])
    assert p["block"] == 1 and p["uid"] == 0
    assert (p["validator_trust"], p["dividends"], p["emission"]) == (65535, 32767, 250_000_000)
    assert (p["baseline_validator_trust"], p["baseline_dividends"], p["baseline_emission"]) == (
        65535, 32767, 250_000_000)


def test_validator_moving_to_the_consensus_miner():
    """Validator 1 moves all its weight from miner 4 to miner 3; hand-derived per yuma_spec.md §2:

    every validator now puts weight 1 on miner 3, so C_3 = 1, nothing is clipped and vtrust = 1 →
    65535. Incentive I_3 = 1 exactly (R normalised by itself). Bonds start empty: ΔB_i3 = a_i (1/3
    each), column-normalised to ⌊2^32/3⌋ bits; the EMA of equal entries normalises back to the same
    bits, so D_i = ⌊2^32/3⌋ = 1431655765 and Dividends = ⌊D·65535/2^32⌋. Emission: Σc = I_3 + ΣD =
    2^32 + 3·D bits, σV = ⌊D·2^32/Σc⌋, emission = ⌊σV·E/2^32⌋.
    """
    d_bits = ONE // 3
    sigma_v = (d_bits << 32) // (ONE + 3 * d_bits)
    p = project(1, [3], [65535])
    assert (p["baseline_validator_trust"], p["baseline_dividends"], p["baseline_emission"]) == (0, 0, 0)
    assert p["validator_trust"] == 65535
    assert p["dividends"] == (d_bits * 65535) >> 32 == 21844
    assert p["emission"] == (sigma_v * E_RAO) >> 32 == 166_666_666


def test_half_on_a_miner_without_consensus_halves_validator_trust():
    # Miner 4 has 1/3 of the stake behind it (< kappa ½): consensus 0, so half of the row is clipped.
    p = project(1, [3, 4], [65535, 65535])
    assert p["validator_trust"] == 65535 // 2


def test_our_row_is_replaced_as_the_chain_stores_it():
    frame = replace_weight_row(weights(0), 1, 0, 0, 1, [3, 4], [40000, 20000])
    assert frame.filter(pl.col("validator_uid") == 1).select("miner_uid", "weight").rows() == [
        (3, 65535), (4, 32767)]
    assert frame.filter(pl.col("validator_uid") != 1).height == 4


def test_unknown_uid_is_refused():
    with pytest.raises(ValueError, match="uid 9 is not in the neurons of netuid 1 at block 0"):
        project(9, [3], [65535])


def test_runtime_without_mechanisms_counts_as_one_mechanism():
    # spec-218 snapshots have mechanism_count null (no MechanismCountCurrent storage)
    old_runtime = subnet(0, 0).with_columns(pl.lit(None, pl.UInt8).alias("mechanism_count"))
    p = project_epoch(old_runtime, neurons(0, None), weights(0), None, 0, [3], [65535])
    assert (p["validator_trust"], p["dividends"], p["emission"]) == (65535, 32767, 250_000_000)
