"""The alpha emission split and mechanism aggregation (tasks/consensus/emission_split.py).

Expected numbers are transcribed from ../shared/yuma_vectors.md §3 (mechanism.rs) and §5.1
(coinbase.rs), or worked by hand from yuma_spec.md §5 where the vector gives a formula; none is
produced by the code under test.
"""

from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import SchemaError
from tasks.consensus.emission_split import (
    aggregate_mechanisms,
    alpha_block_split,
    epoch_pending_emission,
    split_mechanism_emission,
)

U64_MAX = 2**64 - 1
F32 = 2**32
BLOCK_TYPES = {"netuid": pl.UInt16, "block": pl.UInt64, "alpha_issuance": pl.UInt64, "root_tao": pl.UInt64,
               "tao_weight": pl.UInt64, "subnet_owner_cut": pl.UInt16, "owner_cut_enabled": pl.Boolean,
               "root_sell_flag": pl.Boolean}
EPOCH_KEY_TYPES = {"netuid": pl.UInt16, "block": pl.UInt64}


def blocks(rows: list[dict], **extra_types) -> pl.DataFrame:
    defaults = {"netuid": 1, "alpha_issuance": 0, "root_tao": 0, "tao_weight": 0, "subnet_owner_cut": 0,
                "owner_cut_enabled": True, "root_sell_flag": True}
    rows = [{**defaults, "block": 100 + i, **r} for i, r in enumerate(rows)]
    schema = {**BLOCK_TYPES, **extra_types}
    return pl.DataFrame(rows, schema={k: schema[k] for k in rows[0]})


def one(frame: pl.DataFrame, col: str, i: int = 0) -> int:
    return frame[col][i]


# ---------------------------------------------------------------------------------------------
# §5.1 coinbase accumulation (coinbase.rs)
# ---------------------------------------------------------------------------------------------

def test_owner_cut_base():
    # test_owner_cut_base: alpha emission 1e9 per block; OwnerCut 0 -> 0, OwnerCut 65535 -> 1,000,000,000.
    out = alpha_block_split(blocks([{"subnet_owner_cut": 0}, {"subnet_owner_cut": 65535}]))
    assert out["alpha_out"].to_list() == [1_000_000_000, 1_000_000_000]
    assert out["owner_cut"].to_list() == [0, 1_000_000_000]
    # With the whole emission cut, nothing is left for the epoch.
    assert out["pending_server"][1] == 0 and out["pending_validator"][1] == 0


def test_disabled_owner_cut_leaves_pending_owner_cut_zero():
    # test_disabling_owner_cut_...: OwnerCutEnabled false -> PendingOwnerCut = 0, all to miners/validators.
    out = alpha_block_split(blocks([{"subnet_owner_cut": 11796, "owner_cut_enabled": False}]))
    assert one(out, "owner_cut") == 0
    assert one(out, "pending_server") == 500_000_000
    assert one(out, "pending_validator") == 500_000_000


def test_pending_emission_root_proportion_quarter():
    # test_pending_emission: TaoWeight = u64::MAX (1.0), root sells, rp = 0.25, alpha 1e9 per block:
    # server 500,000,000 ± 1, validator 375,000,000 ± 1, root alpha divs 125,000,000 ± 1.
    # rp = R/(R + A) = 0.25 with root TAO R = 1e12 and issuance A = 3e12.
    out = alpha_block_split(blocks([{"tao_weight": U64_MAX, "root_tao": 10**12,
                                     "root_proportion_alpha_issuance": 3 * 10**12}],
                                   root_proportion_alpha_issuance=pl.UInt64))
    assert one(out, "root_proportion_bits") == F32 // 4
    assert abs(one(out, "pending_server") - 500_000_000) <= 1
    assert abs(one(out, "pending_validator") - 375_000_000) <= 1
    assert abs(one(out, "pending_root_alpha") - 125_000_000) <= 1
    assert one(out, "recycled_root_alpha") == 0


@pytest.mark.parametrize("root_sell", [False, True])
def test_emit_to_subnets_owner_cut_tenth(root_sell):
    # test_coinbase_emit_to_subnets_with(_no)_root_sell: OwnerCut 6553, rp ≈ 0, each ± 200 rao:
    # owner cut = cut·alpha_emission = 1e9·6553/65535 = 99,992,370.49;
    # server = validator = (alpha_emission − cut)/2 = 450,003,814.76; root alpha divs 0.
    out = alpha_block_split(blocks([{"subnet_owner_cut": 6553, "root_sell_flag": root_sell}]))
    assert abs(one(out, "owner_cut") - 99_992_370) <= 200
    assert abs(one(out, "pending_server") - 450_003_815) <= 200
    assert abs(one(out, "pending_validator") - 450_003_815) <= 200
    assert one(out, "pending_root_alpha") == 0


def test_validator_pool_loses_root_alpha_even_when_recycled():
    # §5.1 step 6 / coinbase vectors: "the validator line deducts the root portion even when root
    # alpha is recycled". rp = 0.25, no root sell: validator 375,000,000, root alpha 125,000,000 recycled.
    out = alpha_block_split(blocks([{"tao_weight": U64_MAX, "root_tao": 10**12, "alpha_issuance": 3 * 10**12,
                                     "root_sell_flag": False}]))
    assert one(out, "pending_validator") == 375_000_000
    assert one(out, "pending_root_alpha") == 0
    assert one(out, "recycled_root_alpha") == 125_000_000


def test_root_proportion_exact_u96f32():
    # test_root_proportion: root TAO 1e12, TaoWeight 3,320,413,933,267,719,290 (≈ 0.18), alpha 1e11.
    # Worked by hand from spec §5.1.5 / §1: tw_bits = ⌊TaoWeight·2^32/(2^64−1)⌋ = 773,094,113;
    # rp_bits = ⌊R·tw_bits·2^32 / (R·tw_bits + A·2^32)⌋ = 2,761,050,404 (0.642857142724).
    out = alpha_block_split(blocks([{"tao_weight": 3_320_413_933_267_719_290, "root_tao": 10**12,
                                     "alpha_issuance": 10**11}]))
    assert one(out, "root_proportion_bits") == 2_761_050_404
    assert out["root_proportion_float"][0] == pytest.approx(0.18 * 1e12 / (0.18 * 1e12 + 1e11), abs=1e-3)


def test_halving_schedule_of_alpha_issuance():
    # §5.1 steps 1 and 3: 1e9 rao per block, halving at 10.5M, 15.75M alpha; nothing at 21M.
    issuance = [0, 10_499_999_999_999_999, 10_500_000_000_000_000, 15_750_000_000_000_000,
                21_000_000_000_000_000]
    out = alpha_block_split(blocks([{"alpha_issuance": i} for i in issuance]))
    assert out["alpha_out"].to_list() == [1_000_000_000, 1_000_000_000, 500_000_000, 250_000_000, 0]


def test_given_alpha_out_overrides_the_halving():
    out = alpha_block_split(blocks([{"alpha_issuance": 0, "alpha_out": 123_456_789}], alpha_out=pl.UInt64))
    assert one(out, "alpha_out") == 123_456_789
    assert one(out, "pending_server") == 61_728_394       # ⌊123,456,789 / 2⌋


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**60), st.integers(0, U64_MAX),
                          st.integers(0, 65535), st.booleans(), st.integers(0, 2**40)),
                min_size=1, max_size=20))
def test_split_properties(rows):
    frame = blocks([{"alpha_issuance": a, "root_tao": r, "tao_weight": tw, "subnet_owner_cut": cut,
                     "root_sell_flag": sell, "alpha_out": out}
                    for a, r, tw, cut, sell, out in rows], alpha_out=pl.UInt64)
    got = alpha_block_split(frame)
    for row in got.iter_rows(named=True):
        parts = (row["owner_cut"] + row["pending_server"] + row["pending_validator"]
                 + row["pending_root_alpha"] + row["recycled_root_alpha"])
        # Four floored shares of an exact whole: never more than it, at most 3 rao less.
        assert row["alpha_out"] - 3 <= parts <= row["alpha_out"]
        assert row["pending_validator"] <= row["pending_server"] + 1   # validator = server − root alpha
        assert 0 <= row["root_proportion_bits"] <= F32
        if row["tao_weight"] == 0 or row["root_tao"] == 0:
            assert row["root_proportion_bits"] == 0
            assert row["pending_root_alpha"] == row["recycled_root_alpha"] == 0
        if not row["root_sell_flag"]:
            assert row["pending_root_alpha"] == 0
        root_alpha = row["pending_root_alpha"] + row["recycled_root_alpha"]
        assert _split_in_python_ints(row) == (row["owner_cut"], row["pending_server"],
                                              row["pending_validator"], root_alpha)


def _split_in_python_ints(row):
    """Spec §5.1 steps 4-6 with §1 semantics, one block at a time in Python ints (a second, scalar
    reading of the spec, to catch overflow in the columnar Int128 arithmetic)."""
    cut = row["subnet_owner_cut"] * F32 // 65535
    tw = row["tao_weight"] * F32 // U64_MAX
    num = row["root_tao"] * tw
    den = num + row["alpha_issuance"] * F32
    rp = num * F32 // den if den else 0
    remaining = row["alpha_out"] * F32 - row["alpha_out"] * cut
    root = (rp * remaining // F32) // 2
    server = remaining // 2
    validator = max(0, remaining - server - root)
    return (row["alpha_out"] * cut // F32, server // F32, validator // F32, root // F32)


# ---------------------------------------------------------------------------------------------
# §5.2.1 what the epoch drains
# ---------------------------------------------------------------------------------------------

def test_epoch_drains_the_blocks_since_the_previous_epoch():
    # Blocks 100..105 at rp = 0.25 (500M / 375M / 125M each); epochs at 101 and 105.
    frame = blocks([{"tao_weight": U64_MAX, "root_tao": 10**12, "alpha_issuance": 3 * 10**12}] * 6)
    epochs = pl.DataFrame({"netuid": [1, 1], "block": [101, 105]}, schema=EPOCH_KEY_TYPES)
    out = epoch_pending_emission(alpha_block_split(frame), epochs)
    assert out["first_block"].to_list() == [100, 102]
    assert out["blocks"].to_list() == [2, 4]
    assert out["pending_server"].to_list() == [1_000_000_000, 2_000_000_000]
    assert out["pending_validator"].to_list() == [750_000_000, 1_500_000_000]
    assert out["pending_root_alpha"].to_list() == [250_000_000, 500_000_000]
    # E = S + V + Rt; the owner cut is excluded (spec §5.2.1).
    assert out["epoch_emission"].to_list() == [2_000_000_000, 4_000_000_000]
    assert out["complete"].to_list() == [False, True]


def test_epoch_window_with_a_gap_is_not_complete():
    frame = blocks([{}, {}, {}]).with_columns(pl.Series("block", [100, 101, 103], dtype=pl.UInt64))
    epochs = pl.DataFrame({"netuid": [1, 1], "block": [99, 103]}, schema=EPOCH_KEY_TYPES)
    out = epoch_pending_emission(alpha_block_split(frame), epochs)
    assert out["blocks"].to_list() == [0, 3]
    assert out["complete"].to_list() == [False, False]


# ---------------------------------------------------------------------------------------------
# §5.3 mechanisms: split (mechanism.rs `split_emissions`)
# ---------------------------------------------------------------------------------------------

def epoch_emission(rows):
    return pl.DataFrame(rows, schema={"netuid": pl.UInt16, "block": pl.UInt64, "emission": pl.UInt64,
                                      "mechanism_count": pl.UInt8,
                                      "mechanism_emission_split": pl.List(pl.UInt16)})


def test_split_emissions_vectors():
    frame = epoch_emission([
        {"netuid": 1, "block": 1, "emission": 25, "mechanism_count": 5, "mechanism_emission_split": None},
        {"netuid": 2, "block": 1, "emission": 10, "mechanism_count": 4, "mechanism_emission_split": None},
        {"netuid": 3, "block": 1, "emission": 19, "mechanism_count": 5,
         "mechanism_emission_split": [3450, 6899, 10348, 17247, 27594]},
    ])
    out = split_mechanism_emission(frame)
    by_subnet = {n: g.sort("mechid")["emission"].to_list() for (n,), g in out.group_by("netuid")}
    assert by_subnet[1] == [5, 5, 5, 5, 5]           # split_emissions_even_division
    assert by_subnet[2] == [4, 2, 2, 2]              # split_emissions_rounding_to_first
    assert by_subnet[3] == [1, 2, 3, 5, 8]           # split_emissions_fibbonacci


def test_split_shorter_than_count_pads_with_zero():
    # §5.3 / split_emissions: entries past the split's length get 0, the remainder goes to mechanism 0.
    out = split_mechanism_emission(epoch_emission([
        {"netuid": 1, "block": 1, "emission": 1000, "mechanism_count": 3,
         "mechanism_emission_split": [16383, 49152]}]))
    # ⌊1000·16383/65535⌋ = 249, ⌊1000·49152/65535⌋ = 750, 0; remainder 1 to mechanism 0.
    assert out["emission"].to_list() == [250, 750, 0]


def test_mechanism_count_out_of_range_is_rejected():
    with pytest.raises(SchemaError, match="mechanism_count 17 out of range"):
        split_mechanism_emission(epoch_emission([
            {"netuid": 1, "block": 1, "emission": 10, "mechanism_count": 17,
             "mechanism_emission_split": None}]))


# ---------------------------------------------------------------------------------------------
# §5.3 mechanisms: aggregation (mechanism.rs `epoch_with_mechanisms`)
# ---------------------------------------------------------------------------------------------

OUT_TYPES = {"netuid": pl.UInt16, "mechid": pl.UInt8, "block": pl.UInt64, "uid": pl.UInt16,
             "stake_weight": pl.UInt16, "active": pl.Boolean, "validator_permit": pl.Boolean,
             "consensus": pl.UInt16, "incentive": pl.UInt16, "dividends": pl.UInt16,
             "validator_trust": pl.UInt16, "server_emission": pl.UInt64, "validator_emission": pl.UInt64,
             "emission": pl.UInt64}


def neurons_out(mechid: int, **columns) -> pl.DataFrame:
    n = len(columns["consensus"])
    base = {"netuid": [1] * n, "mechid": [mechid] * n, "block": [7] * n, "uid": list(range(n)),
            "stake_weight": [0] * n, "active": [True] * n, "validator_permit": [False] * n,
            "incentive": [0] * n, "dividends": [0] * n, "validator_trust": [0] * n,
            "server_emission": [0] * n, "validator_emission": [0] * n, "emission": [0] * n}
    return pl.DataFrame({**base, **columns}, schema=OUT_TYPES)


def mechanism_emission(emissions: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"netuid": [1] * len(emissions), "mechid": list(range(len(emissions))),
                         "block": [7] * len(emissions), "emission": emissions},
                        schema={"netuid": pl.UInt16, "mechid": pl.UInt8, "block": pl.UInt64,
                                "emission": pl.UInt64})


def test_aggregate_two_mechanisms_reading_weights_per_mechanism():
    # epoch_mechanism_reads_weights_per_mechanism (§1): five neurons, 2 mechanisms, 1000 rao each, so
    # ω = 0.5 exactly. Per mechanism (derived u16/rao in yuma_vectors §1):
    #   m0: Consensus [0,0,0,65535,0], VT [65535,0,65535,0,0], Dividends [32767,0,32767,0,0],
    #       emission [250,0,250,500,0] (server 500 to uid 3, validator 250 to uids 0 and 2);
    #   m1: the mirror on uid 4: Consensus [0,0,0,0,65535], emission [250,0,250,0,500].
    m0 = neurons_out(0, consensus=[0, 0, 0, 65535, 0], validator_trust=[65535, 0, 65535, 0, 0],
                     dividends=[32767, 0, 32767, 0, 0], stake_weight=[21845, 21845, 21845, 0, 0],
                     validator_permit=[True, True, True, False, False],
                     active=[True, True, True, True, False],
                     server_emission=[0, 0, 0, 500, 0], validator_emission=[250, 0, 250, 0, 0],
                     emission=[250, 0, 250, 500, 0])
    m1 = neurons_out(1, consensus=[0, 0, 0, 0, 65535], validator_trust=[65535, 0, 65535, 0, 0],
                     dividends=[32767, 0, 32767, 0, 0], stake_weight=[21845, 21845, 21845, 0, 0],
                     validator_permit=[True, True, True, False, False],
                     active=[True, True, True, False, True],
                     server_emission=[0, 0, 0, 0, 500], validator_emission=[250, 0, 250, 0, 0],
                     emission=[250, 0, 250, 0, 500])
    out = aggregate_mechanisms([m0, m1], mechanism_emission([1000, 1000]))
    # Worked by hand: ⌊⌊0 + v0/2⌋ + v1/2⌋, floored at every step (spec §5.3).
    assert out["consensus"].to_list() == [0, 0, 0, 32767, 32767]
    assert out["dividends"].to_list() == [32766, 0, 32766, 0, 0]      # 16383 + 16383, not ⌊32767⌋
    assert out["validator_trust"].to_list() == [65534, 0, 65534, 0, 0]
    assert out["stake_weight"].to_list() == [21844, 21844, 21844, 0, 0]
    assert out["emission"].to_list() == [250, 0, 250, 250, 250]
    assert out["server_emission"].to_list() == [0, 0, 0, 500, 500]
    assert out["validator_emission"].to_list() == [500, 0, 500, 0, 0]
    assert out["active"].to_list() == [True, True, True, True, True]   # OR-ed
    assert out["validator_permit"].to_list() == [True, True, True, False, False]


def test_aggregate_with_emission_split_quarter_three_quarters():
    # epoch_with_mechanisms_persists_and_aggregates_all_terms: split [16383, 49152] gives weights
    # 0.25 and 0.75 (± 1e-4); netuid-level terms = ⌊t0·w0 + t1·w1⌋ ± 1; server/validator summed ± 1.
    split = split_mechanism_emission(epoch_emission([
        {"netuid": 1, "block": 7, "emission": 1_000_000, "mechanism_count": 2,
         "mechanism_emission_split": [16383, 49152]}]))
    e0, e1 = split["emission"].to_list()
    assert (e0, e1) == (249_989, 750_011)        # ⌊1e6·16383/65535⌋ + remainder 1, ⌊1e6·49152/65535⌋
    w0, w1 = Fraction(e0, 1_000_000), Fraction(e1, 1_000_000)
    assert abs(float(w0) - 0.25) < 1e-4 and abs(float(w1) - 0.75) < 1e-4
    t0 = dict(consensus=[40000, 3], dividends=[12345, 65535], validator_trust=[65535, 1],
              stake_weight=[30000, 100], emission=[123_456, 789], server_emission=[1000, 7],
              validator_emission=[2000, 0])
    t1 = dict(consensus=[20000, 65535], dividends=[54321, 0], validator_trust=[0, 65535],
              stake_weight=[30001, 99], emission=[654_321, 1], server_emission=[3, 11],
              validator_emission=[5, 13])
    m0 = neurons_out(0, **t0, active=[True, False], validator_permit=[False, False])
    m1 = neurons_out(1, **t1, active=[False, False], validator_permit=[False, True])
    out = aggregate_mechanisms(pl.concat([m0, m1]), split.with_columns(pl.lit(7, pl.UInt64).alias("block")))
    for col in ("consensus", "dividends", "validator_trust", "stake_weight", "emission"):
        for uid in range(2):
            expected = int(t0[col][uid] * w0 + t1[col][uid] * w1)
            assert abs(out[col][uid] - expected) <= 1, (col, uid)
    for col in ("server_emission", "validator_emission"):
        assert out[col].to_list() == [a + b for a, b in zip(t0[col], t1[col], strict=True)]
    assert out["active"].to_list() == [True, False]
    assert out["validator_permit"].to_list() == [False, True]


def test_zero_emission_gives_mechanism_zero_full_weight():
    # §5.3: ω_0 = 1 (others 0) when E = 0.
    m0 = neurons_out(0, consensus=[65535, 12], dividends=[100, 0])
    m1 = neurons_out(1, consensus=[1, 65535], dividends=[0, 65535])
    out = aggregate_mechanisms([m0, m1], mechanism_emission([0, 0]))
    assert out["consensus"].to_list() == [65535, 12]
    assert out["dividends"].to_list() == [100, 0]


def test_missing_mechanism_emission_row_is_named():
    with pytest.raises(SchemaError, match="no emission row for mechanism key .*'mechid': 1"):
        aggregate_mechanisms([neurons_out(0, consensus=[1]), neurons_out(1, consensus=[1])],
                             mechanism_emission([5]))


def test_bad_block_input_names_table_and_column():
    with pytest.raises(SchemaError, match="'root_tao' has type Int64, expected UInt64"):
        alpha_block_split(blocks([{}]).with_columns(pl.col("root_tao").cast(pl.Int64)))
    with pytest.raises(SchemaError, match="needs column 'alpha_out'"):
        alpha_block_split(blocks([{}]).drop("alpha_issuance"))
    with pytest.raises(SchemaError, match="duplicate key"):
        alpha_block_split(pl.concat([blocks([{}]), blocks([{}])]))
