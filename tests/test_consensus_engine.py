"""Unit tests of the consensus engine's helpers and a few verified spec vectors.

Expected numbers come from ../shared/yuma_vectors.md (asserted or verified values of subtensor's
tests) and from Python big-int definitions of the fixed-point operations (yuma_spec.md §1), never
from the code under test.
"""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from schemas.consensus import EPOCH_BONDS, EPOCH_NEURONS, EPOCH_WEIGHTS, EPOCHS
from tasks.consensus import (
    ConsensusInputError,
    epoch_loaders,
    fixed,
    run_consensus_files,
    run_epochs,
    validate_inputs,
    weighted_median_columns,
)
from tasks.consensus import (
    epoch as epoch_module,
)
from tasks.consensus.median import median_by_group_of_members

ONE = 1 << 32
M = 65535


# ---------------------------------------------------------------- Python big-int definitions (spec §1)

def ref_mul(x: int, y: int) -> int:
    return (x * y) >> 32  # floor toward −∞


def ref_div(x: int, y: int) -> int:
    if y == 0:
        return 0
    q = abs(x << 32) // abs(y)
    return q if (x >= 0) == (y > 0) else -q  # truncation toward zero


def ref_exp_safe(x: int) -> int:
    """substrate-fixed v0.6.0 `exp` behind subtensor's `exp_safe`, transcribed with Python ints."""
    x = max(-20 * ONE, min(20 * ONE, x))
    if x == 0:
        return ONE
    if x == ONE:
        return (22802600 << 9)  # e as I9F23: floor(e·2^23) = 22802600
    op = abs(x)
    result, term = op + ONE, op
    for i in range(2, 32):
        term = ref_mul(term, op)
        term = ref_div(term, i << 32)
        result += term
    return ref_div(ONE, result) if x < 0 else result


def frame_of(series: dict) -> pl.DataFrame:
    return pl.DataFrame({k: pl.Series(v, dtype=pl.Int64) for k, v in series.items()})


# ---------------------------------------------------------------- fixed point

def test_fx_mul_and_div_match_big_int_floor_and_truncation():
    rng = random.Random(7)
    xs = [rng.randrange(0, 2 * ONE) for _ in range(3000)] + [0, 1, ONE, 2 * ONE]
    ys = [rng.randrange(0, 2 * ONE) for _ in range(3000)] + [ONE, 0, ONE, 2 * ONE]
    neg = [rng.randrange(-ONE, ONE) for _ in range(len(xs))]
    got = frame_of({"x": xs, "y": ys, "n": neg}).select(
        mul=fixed.fx_mul("x", "y"), mul_neg=fixed.fx_mul("n", "y"), div=fixed.fx_div("x", "y"))
    assert got["mul"].to_list() == [ref_mul(x, y) for x, y in zip(xs, ys, strict=True)]
    assert got["mul_neg"].to_list() == [ref_mul(n, y) for n, y in zip(neg, ys, strict=True)]
    assert got["div"].to_list() == [ref_div(x, y) if x <= y else ref_div(x, y) for x, y in zip(xs, ys,
                                                                                                strict=True)]
    x, y = np.array(xs, np.int64), np.array(ys, np.int64)
    assert fixed.np_fx_mul(x, y).tolist() == [ref_mul(a, b) for a, b in zip(xs, ys, strict=True)]


def test_np_fx_div_is_exact_over_the_whole_range():
    rng = np.random.default_rng(3)
    for high in (1 << 16, 1 << 33, 1 << 46):
        s = rng.integers(0, high, 20000)
        x = (s * rng.random(20000)).astype(np.int64)
        x[:50] = s[:50]  # quotient exactly 1
        s[50:60] = 0  # safe_div: 0
        assert fixed.np_fx_div(x, s).tolist() == [ref_div(int(a), int(b)) for a, b in zip(x, s, strict=True)]


def test_np_fx_div_by_a_broadcast_divisor_is_exact():
    # The grid form: one divisor per column (or row), quotients up to 2^40 and the normalisations' cases.
    rng = np.random.default_rng(4)
    for high in (1 << 16, 1 << 33, 1 << 46):
        s = rng.integers(0, high, (1, 400))
        x = (s * rng.random((30, 400)) * rng.choice([1, 1, 255], (30, 400))).astype(np.int64)
        x[0] = s  # quotient exactly 1 (2^32 bits)
        x[1] = np.maximum(s - 1, 0)  # just below 1
        x[2] = 0
        x[3] = np.minimum(s * 256 - 1, (1 << 47) - 1)  # quotients near 2^40
        s[0, :20] = 0  # safe_div: 0
        want = [[ref_div(int(a), int(b)) for a, b in zip(row, s[0], strict=True)] for row in x]
        assert fixed.np_fx_div_by(x, s).tolist() == want
        assert fixed.np_fx_div_by(x.T, s.T).tolist() == np.array(want).T.tolist()
    col = rng.integers(0, 1 << 32, (64, 256))
    assert fixed.np_fx_div_by(col, col.sum(axis=0, keepdims=True)).tolist() == \
        fixed.np_fx_div(col, np.broadcast_to(col.sum(axis=0), col.shape)).tolist()


def test_quantisation_and_u16_proportions():
    # floor(x·65535), never round (spec §0 pitfall 2); 0.5 → 32767; saturates at 65535.
    xs = [0, ONE // 2, ONE - 1, ONE, 2 * ONE, 1, 65537]
    got = frame_of({"x": xs}).select(u=fixed.to_u16("x"))["u"].to_list()
    assert got == [0, 32767, 65534, 65535, 65535, 0, 0]
    assert fixed.np_to_u16(np.array(xs, np.int64)).tolist() == got
    us = [0, 1, 6553, 19660, 32767, 65535]
    expected = [(u << 32) // 65535 for u in us]
    assert frame_of({"u": us}).select(b=fixed.u16_proportion_bits("u"))["b"].to_list() == expected
    assert fixed.np_u16_proportion_bits(np.array(us)).tolist() == expected
    # κ default 32767/65535 is not 0.5 (spec §0 pitfall 3).
    assert (32767 << 32) // 65535 == 2147450879


def test_rao_share_is_floor_of_exact_product():
    rng = random.Random(11)
    shares = [rng.randrange(0, ONE + 1) for _ in range(2000)]
    emissions = [rng.randrange(0, 1 << 62) for _ in range(2000)]
    got = frame_of({"s": shares, "e": emissions}).select(r=fixed.rao_share("s", "e"))["r"].to_list()
    assert got == [(s * e) >> 32 for s, e in zip(shares, emissions, strict=True)]
    # test_10_graph: s = ⌊2^32/10⌋ bits, E = 1e9 → 99999999 rao.
    assert frame_of({"s": [ONE // 10], "e": [10**9]}).select(r=fixed.rao_share("s", "e"))["r"][0] == 99999999


def test_exp_safe_vectors_and_big_int_definition():
    # yuma_vectors.md §4.2 test_math_exp_safe.
    cases = {0: ONE, ONE: 11674931200, -20 * ONE: 8, -21 * ONE: 8, -(1 << 63): 8,
             20 * ONE: 2066907302758576256, 21 * ONE: 2066907302758576256, (1 << 63) - 1: 2066907302758576256}
    got = fixed.np_exp_safe(np.array(list(cases), dtype=np.int64))
    assert got.tolist() == list(cases.values())
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.integers(-22 * ONE, 22 * ONE, 3000), rng.integers(-ONE, ONE, 1000)])
    assert fixed.np_exp_safe(xs).tolist() == [ref_exp_safe(int(x)) for x in xs]


def test_exp_safe_long_column_in_sorted_chunks():
    # Longer than one chunk: the column is ordered by |x| and each chunk stops after its last nonzero
    # term; both Taylor multiplication forms (small and large |x|) occur; order restored.
    rng = np.random.default_rng(6)
    xs = np.concatenate([rng.integers(-6 * ONE, 6 * ONE, 30000), rng.integers(-22 * ONE, 22 * ONE, 6000),
                         rng.integers(-(1 << 20), 1 << 20, 4000), [0, ONE, -ONE]])
    rng.shuffle(xs)
    assert len(xs) > fixed._CHUNK
    assert fixed.np_exp_safe(xs).tolist() == [ref_exp_safe(int(x)) for x in xs]


def test_one_over_and_wide_multiply():
    rng = np.random.default_rng(9)
    s = np.concatenate([rng.integers(ONE, 1 << 61, 5000), [ONE, ONE + 1, (1 << 61) - 1]])
    assert fixed.np_two_pow64_over(s).tolist() == [(1 << 64) // int(v) for v in s]
    x = rng.integers(-(1 << 58), 1 << 58, 5000)  # |X·Y| < 2^94: the result fits Int64
    y = rng.integers(-(1 << 36), 1 << 36, 5000)
    assert fixed.np_mul_wide(x, y).tolist() == [(int(a) * int(b)) >> 32 for a, b in zip(x, y, strict=True)]


def test_liquid_alpha_matches_big_int_sigmoid():
    rng = np.random.default_rng(2)
    n = 2000
    w, b, c = (rng.integers(0, ONE + 1, n) for _ in range(3))
    steep = rng.integers(0, 32768, n)
    k = np.array([-((int(s) << 32) // 100) for s in steep], np.int64)  # steepness ⊘ (−100), truncated
    lo = np.full(n, (6553 << 32) // 65535)
    hi = np.full(n, (19660 << 32) // 65535)
    got = fixed.np_liquid_alpha(w, b, c, k, lo, hi)
    expected = []
    for wi, bi, ci, ki, l, h in zip(*(a.tolist() for a in (w, b, c, k, lo, hi)), strict=True):
        delta = min(max(wi - ci, 0), ONE) if wi >= bi else min(max(bi - wi, 0), ONE)
        sig = ref_div(ONE, ONE + ref_exp_safe(ref_mul(ki, delta - ONE // 2)))
        expected.append(min(max(l + ref_mul(sig, h - l), l), h))
    assert got.tolist() == expected


# ---------------------------------------------------------------- weighted median (spec §2.6)

def pivot_median(stake: list[int], score: list[int], minority: int, hi: int) -> int:
    """The chain's `weighted_median`, literally (spec §2.6)."""
    lo, lst = 0, list(range(len(stake)))
    for _ in range(len(stake) + 1):
        if not lst:
            return 0
        if len(lst) == 1:
            return score[lst[0]]
        pivot = score[lst[len(lst) // 2]]
        lower = [i for i in lst if score[i] < pivot]
        upper = [i for i in lst if score[i] > pivot]
        lower_stake = sum(stake[i] for i in lower)
        upper_stake = sum(stake[i] for i in upper)
        if minority < lo + lower_stake and lower:
            lst, hi = lower, lo + lower_stake
        elif hi - upper_stake <= minority and upper:
            lst, lo = upper, hi - upper_stake
        else:
            return pivot
    return 0


def test_weighted_median_columns_equals_pivot_search_on_random_columns():
    rng = random.Random(2024)
    rows, expected = [], {}
    for col in range(1500):
        n_val = rng.randint(1, 9)
        stake = [rng.choice([rng.randrange(1, ONE // 4), ONE // 4, ONE // 8]) for _ in range(n_val)]
        total = sum(stake)
        levels = [0, ONE // 4, ONE // 2, ONE, rng.randrange(ONE)]
        score = [rng.choice(levels) if rng.random() < 0.7 else rng.randrange(ONE + 1) for _ in range(n_val)]
        present = [rng.random() < 0.8 for _ in range(n_val)]  # absent entries count as score 0
        kappa = rng.choice([(32767 << 32) // 65535, 0, ONE, total, rng.randrange(2 * ONE)])
        expected[col] = pivot_median(stake, [s if p else 0 for s, p in zip(score, present, strict=True)],
                                     total - kappa, total)
        rows += [dict(col=col, member=i, stake_bits=stake[i], score_bits=score[i], total_stake_bits=total,
                      kappa_bits=kappa) for i in range(n_val) if present[i]]
    edges = pl.DataFrame(rows, schema={k: pl.Int64 for k in rows[0]})
    got = weighted_median_columns(edges, group=["col"])
    got = dict(zip(got["col"].to_list(), got["median_bits"].to_list(), strict=True))
    assert {c: got.get(c, 0) for c in expected} == expected

    # The engine's packed-sort variant agrees too: there a row's stake is stake_table[group_base + member];
    # here every row gets its own slot in the table (rows are grouped by column, in order).
    slots = np.arange(edges.height, dtype=np.int64)
    cols, members = edges["col"].to_numpy(), edges["member"].to_numpy()
    group_base = np.zeros(len(expected), np.int64)
    group_base[cols[::-1]] = (slots - members)[::-1]  # the first row of each column wins
    group_total, group_kappa = np.zeros(len(expected), np.int64), np.zeros(len(expected), np.int64)
    group_total[cols], group_kappa[cols] = edges["total_stake_bits"].to_numpy(), edges["kappa_bits"].to_numpy()
    got2 = median_by_group_of_members(cols, slots - group_base[cols], edges["score_bits"].to_numpy(),
                                      edges["stake_bits"].to_numpy(), group_base, group_total, group_kappa)
    assert {c: int(got2[c]) for c in expected} == expected


def test_weighted_median_math_vectors():
    # yuma_vectors.md §4.7 test_math_weighted_median: minority = 1 − 0.51, hi = Σ stake.
    def fx(v: float) -> int:
        return round(np.float32(v).item() * ONE)

    cases = [([.49, .51], [.5, 1], 1), ([.51, .49], [.5, 1], .5), ([.49, .01, .5], [.5, .7, 1], .7),
             ([.2] * 5, [.8, .2, 1, .6, .4], .6), ([.1] * 10, [.8, .8, .2, .2, 1, 1, .6, .6, .4, .4], .6)]
    rows = []
    for col, (stake, score, _) in enumerate(cases):
        total = sum(fx(s) for s in stake)
        kappa = total - (ONE - fx(0.51))  # μ = S − κ = 1 − 0.51
        rows += [dict(col=col, stake_bits=fx(s), score_bits=fx(x), total_stake_bits=total, kappa_bits=kappa)
                 for s, x in zip(stake, score, strict=True)]
    got = weighted_median_columns(pl.DataFrame(rows), group=["col"]).sort("col")["median_bits"].to_list()
    assert got == [fx(r) for _, _, r in cases]


# ---------------------------------------------------------------- epoch vectors (yuma_vectors.md §1, §2)

DEFAULTS = dict(tempo=360, last_mechanism_step_block=0, owner_uid=None, kappa=32767, bonds_penalty=65535,
                bonds_moving_avg=900000, yuma3_enabled=False, liquid_alpha_enabled=False, alpha_low=45875,
                alpha_high=58982, alpha_sigmoid_steepness=1000, activity_cutoff_factor_milli=13889,
                max_allowed_validators=64, stake_threshold=0, tao_weight=0, emission=1_000_000_000)


def epoch_inputs(block, neurons, weights=(), bonds=(), netuid=1, **params):
    """neurons: (stored permit, alpha stake, last_update, block_at_registration) per uid;
    weights / bonds: (validator_uid, miner_uid, u16)."""
    key = dict(netuid=netuid, mechid=0, block=block)
    e = pl.DataFrame([dict(DEFAULTS, **params, **key)], schema=EPOCHS.polars_schema())
    n = pl.DataFrame([dict(key, uid=u, alpha_stake=s, tao_stake=0, last_update=lu, block_at_registration=r,
                           validator_permit=p) for u, (p, s, lu, r) in enumerate(neurons)],
                     schema=EPOCH_NEURONS.polars_schema())
    w = pl.DataFrame([dict(key, validator_uid=i, miner_uid=j, weight=v) for i, j, v in weights],
                     schema=EPOCH_WEIGHTS.polars_schema())
    b = pl.DataFrame([dict(key, validator_uid=i, miner_uid=j, bond=v) for i, j, v in bonds],
                     schema=EPOCH_BONDS.polars_schema())
    return e, n, w, b


def column(out, name):
    return out.neurons[name].to_list()


def bond_rows(out):
    return [(r["validator_uid"], r["miner_uid"], r["bond"]) for r in out.bonds.iter_rows(named=True)]


def test_epoch_logs_two_distinct_servers():
    # yuma_vectors.md §1 test_validators_weight_two_distinct_servers (verified; derived u16 and rao).
    neurons = [(True, 10**9, 1, 0)] * 3 + [(False, 0, 1, 0)] * 2
    weights = [(0, 3, M), (0, 4, 0), (1, 3, 0), (1, 4, M), (2, 3, M), (2, 4, 0)]
    out = run_epochs(*epoch_inputs(1, neurons, weights, tempo=10))
    assert column(out, "consensus") == [0, 0, 0, 65535, 0]
    assert column(out, "validator_trust") == [65535, 0, 65535, 0, 0]
    assert column(out, "incentive") == [0, 0, 0, 65535, 0]
    assert column(out, "dividends") == [32767, 0, 32767, 0, 0]
    assert column(out, "emission") == [250000000, 0, 250000000, 500000000, 0]
    assert bond_rows(out) == [(0, 3, 65535), (2, 3, 65535)]


def test_epoch_logs_split_weights_and_topk_permits():
    neurons = [(True, 10**9, 1, 0)] * 3 + [(False, 0, 1, 0)] * 2
    weights = [(0, 3, M), (0, 4, 0), (1, 3, 0), (1, 4, M), (2, 3, M), (2, 4, M)]
    out = run_epochs(*epoch_inputs(1, neurons, weights, tempo=10))
    assert column(out, "consensus") == [0, 0, 0, 32767, 32767]
    assert column(out, "validator_trust") == [32767, 32767, 65535, 0, 0]
    assert column(out, "dividends") == [16383, 16383, 32767, 0, 0]
    assert column(out, "emission") == [125000000, 125000000, 250000000, 250000000, 250000000]

    out = run_epochs(*epoch_inputs(1, [(True, 2 * 10**9, 1, 0), (True, 10**9, 1, 0)], tempo=10,
                                   max_allowed_validators=1))
    assert column(out, "stake_weight") == [43689, 21844]
    assert column(out, "validator_permit") == [True, False]
    assert column(out, "emission") == [666666666, 333333333]


def run_chain(steps, stakes, registered, **params):
    """Chain epochs, seeding each with the previous epoch's permits and bonds (as the chain stores them).
    steps: (block, last_update list, weights) per epoch; returns the outputs per epoch."""
    permits, bonds, outs = [False] * len(stakes), [], []
    for block, last_update, weights in steps:
        neurons = [(permits[u], stakes[u], last_update[u], registered[u]) for u in range(len(stakes))]
        out = run_epochs(*epoch_inputs(block, neurons, weights, bonds, **params))
        permits, bonds = column(out, "validator_permit"), bond_rows(out)
        outs.append(out)
    return outs


def test_bonds_classic_all_checkpoints():
    # yuma_vectors.md §2.1 test_bonds (verified, all checkpoints).
    rows = {i: [(4, 16383), (5, 32767), (6, 49149), (7, 65535)] for i in range(4)}
    lu = [1] * 8
    steps = [(1, list(lu), [])]
    schedule = {2: None, 3: (0, 2), 4: (1, 3), 5: (2, 4), 6: (2, 5), 7: None, 8: None, 9: None}
    for block, change in schedule.items():
        if block == 2:
            lu[:4] = [2] * 4
        elif change:
            uid, at = change
            rows[uid] = [(7, 65535)] if block == 6 else [(uid, 65535)]
            lu[uid] = at
        weights = [(i, j, v) for i in sorted(rows) for j, v in rows[i]]
        steps.append((block, list(lu), weights))
    outs = run_chain(steps, [1, 2, 3, 4, 0, 0, 0, 0], [1] * 8, tempo=1, max_allowed_validators=8)

    def bond_col(out, j):
        d = {(i, jj): v for i, jj, v in bond_rows(out)}
        return [d.get((i, j), 0) for i in range(4)]

    assert column(outs[0], "validator_permit") == [True] * 4 + [False] * 4
    assert [bond_col(outs[k], 4) for k in (1, 2, 3)] == [[16383, 32767, 49151, 65535],
                                                        [14582, 32767, 49151, 65535],
                                                        [12603, 28321, 49151, 65535]]
    assert [bond_col(outs[k], 7) for k in (4, 5, 6, 7)] == [[12602, 28320, 49150, 65535],
                                                           [10951, 24609, 49150, 65535],
                                                           [9559, 21482, 49150, 65535],
                                                           [8376, 18824, 49150, 65535]]
    # Derived per-epoch outputs (table of §2.1).
    assert column(outs[1], "emission") == [49999998, 99999999, 150000000, 200000001, 49998779, 100000610,
                                           149996337, 200004272]
    assert column(outs[1], "validator_trust")[:4] == [65534] * 4
    assert column(outs[8], "dividends")[:4] == [3481, 7825, 23240, 30987]
    assert column(outs[5], "emission") == [36443733, 81898628, 163565493, 218092144, 0, 0, 0, 500000000]
    assert column(outs[0], "stake_weight") == [6553, 13106, 19660, 26213, 0, 0, 0, 0]


def test_active_stake_masks_inactive_validators():
    # yuma_vectors.md §2.2 test_active_stake (verified): cutoff 13 blocks at tempo 1.
    rows = [(i, j, M) for i in (0, 1) for j in (2, 3)]
    steps = [(0, [0] * 4, []), (1, [1, 1, 0, 0], rows), (5002, [5002, 1, 0, 0], rows),
             (5003, [5002, 5002, 0, 0], rows)]
    outs = run_chain(steps, [1] * 4, [0] * 4, tempo=1, max_allowed_validators=4)
    assert column(outs[1], "dividends")[:2] == [32767, 32767]
    assert column(outs[1], "emission") == [250000000] * 4
    assert column(outs[2], "dividends")[:2] == [36044, 29490]
    assert column(outs[2], "emission")[:2] == [274999999, 224999999]
    assert column(outs[2], "server_emission")[2:] == [250000000, 250000000]
    assert bond_rows(outs[2]) == [(0, 2, 65535), (0, 3, 65535), (1, 2, 53619), (1, 3, 53619)]
    assert column(outs[3], "dividends")[:2] == [35716, 29818]
    assert column(outs[3], "emission")[:2] == [272501132, 227498866]
    assert bond_rows(outs[3])[2:] == [(1, 2, 54712), (1, 3, 54712)]


def test_yuma3_liquid_alpha_kappa_moves_first():
    # yuma_vectors.md §2.7 test_yuma_3_kappa_moves_first (derived exact u16, verified emulation).
    params = dict(tempo=1, yuma3_enabled=True, liquid_alpha_enabled=True, bonds_penalty=0,
                  alpha_sigmoid_steepness=1000, bonds_moving_avg=975000, alpha_low=6553, alpha_high=19660,
                  max_allowed_validators=3)
    schedule = {0: [[M, 0]] * 3, 1: [[0, M], [M, 0], [M, 0]], 2: [[0, M], [0, M], [M, 0]], 3: [[0, M]] * 3}
    lu, rows, steps, block = [1] * 5, {}, [(2, [1] * 5, [])], 2
    for e in range(6):
        if e in schedule:
            rows = dict(enumerate(schedule[e]))
            lu[:3] = [block] * 3
        block += 1
        steps.append((block, list(lu), [(i, j, v) for i in sorted(rows) for j, v in zip((3, 4), rows[i],
                                                                                          strict=True)]))
    outs = run_chain(steps, [8, 1, 1, 0, 0], [1] * 5, **params)[1:]
    assert [column(o, "dividends")[:3] for o in outs] == [
        [52428, 6553, 6553], [65535, 0, 0], [61486, 4048, 0], [57796, 5068, 2669], [56122, 5531, 3881],
        [55170, 5795, 4569]]
    assert bond_rows(outs[0]) == [(0, 3, 6640), (1, 3, 6640), (2, 3, 6640)]
    assert bond_rows(outs[2]) == [(0, 3, 5336), (0, 4, 12607), (1, 3, 20770), (1, 4, 6640), (2, 3, 36565)]
    assert bond_rows(outs[5]) == [(0, 3, 3853), (0, 4, 27120), (1, 3, 14133), (1, 4, 22789), (2, 3, 20244),
                                  (2, 4, 17970)]
    assert column(outs[0], "consensus")[3:] == [65535, 0]
    assert column(outs[1], "consensus")[3:] == [0, 65535]


def test_batch_equals_separate_runs(monkeypatch):
    # Epochs are independent: a batch of different epochs equals running each alone.
    a = epoch_inputs(1, [(True, 10**9, 1, 0)] * 3 + [(False, 0, 1, 0)] * 2,
                     [(0, 3, M), (0, 4, 0), (1, 3, 0), (1, 4, M), (2, 3, M), (2, 4, M)], netuid=2, tempo=10)
    b = epoch_inputs(7, [(True, 5, 1, 0), (True, 9, 6, 0), (False, 0, 6, 0)], [(0, 2, 100), (1, 2, M)],
                     [(0, 2, 300), (1, 2, 60000)], netuid=1, tempo=1, yuma3_enabled=True,
                     liquid_alpha_enabled=True, alpha_low=6553, alpha_high=19660, bonds_penalty=30000)
    together = run_epochs(*(pl.concat([x, y]) for x, y in zip(a, b, strict=True)))
    alone = [run_epochs(*b), run_epochs(*a)]  # netuid 1 sorts first
    assert together.neurons.equals(pl.concat([o.neurons for o in alone]))
    assert together.bonds.equals(pl.concat([o.bonds for o in alone]))
    # ... also when the batch is cut into chunks of one epoch each.
    monkeypatch.setattr(epoch_loaders, "CHUNK_EDGES", 1)
    chunked = run_epochs(*(pl.concat([x, y]) for x, y in zip(a, b, strict=True)))
    assert chunked.neurons.equals(together.neurons) and chunked.bonds.equals(together.bonds)


# ---------------------------------------------------------------- validation and files

def small_inputs():
    return epoch_inputs(1, [(True, 10**9, 1, 0)] * 2 + [(False, 0, 1, 0)], [(0, 2, M), (1, 2, 5)],
                        [(0, 2, 100)], tempo=10)


@pytest.mark.parametrize("change, message", [
    (lambda e, n, w, b: (e, n, w.with_columns(miner_uid=pl.lit(3, pl.UInt16)), b), "miner_uid 3 is not a neuron"),
    (lambda e, n, w, b: (e, n, pl.concat([w, w.head(1)]), b), "duplicate edge"),
    (lambda e, n, w, b: (e, n, w, b.with_columns(block=pl.lit(2, pl.UInt64))), "no row in epochs"),
    (lambda e, n, w, b: (pl.concat([e, e.with_columns(block=pl.lit(9, pl.UInt64))]), n, w, b),
     "epoch has no neurons"),
    (lambda e, n, w, b: (e, n.filter(pl.col("uid") != 1), w.filter(pl.col("validator_uid") != 1), b),
     "uids must be exactly 0..n-1"),
    (lambda e, n, w, b: (e.with_columns(alpha_low=pl.lit(60000, pl.UInt16)), n, w, b), "alpha_low 60000 > alpha_high"),
    (lambda e, n, w, b: (e.with_columns(bonds_moving_avg=pl.lit(1_000_001, pl.UInt64)), n, w, b),
     "bonds_moving_avg"),
    (lambda e, n, w, b: (e, n, w.with_columns(weight=pl.col("weight").cast(pl.Int64)), b), "has type Int64"),
    (lambda e, n, w, b: (e, n, pl.DataFrame([dict(netuid=1, mechid=0, block=1, validator_uid=0, miner_uid=m,
                                                   weight=1) for m in (2, 1)], schema=w.schema), b),
     "ascending miner_uid"),
])
def test_bad_inputs_are_rejected_with_table_key_and_problem(change, message):
    with pytest.raises(ConsensusInputError, match=message) as err:
        validate_inputs(*change(*small_inputs()))
    assert str(err.value).startswith(("epochs", "epoch_"))  # names the table first


def test_files_are_written_atomically(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    e, n, w, b = small_inputs()
    for name, frame in (("epochs", e), ("neurons", n), ("weights", w), ("bonds", b)):
        frame.write_parquet(inputs / f"{name}.parquet")
    result = run_consensus_files(inputs, out)
    assert pl.read_parquet(out / "neurons.parquet").equals(result.neurons)
    assert pl.read_parquet(out / "bonds.parquet").equals(result.bonds)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # A bad batch leaves OUT exactly as it was, and leaves no temporary directory behind.
    w.with_columns(miner_uid=pl.lit(7, pl.UInt16)).write_parquet(inputs / "weights.parquet")
    with pytest.raises(ConsensusInputError, match="epoch_weights"):
        run_consensus_files(inputs, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]

    (inputs / "bonds.parquet").unlink()
    with pytest.raises(ConsensusInputError, match="bonds.parquet"):
        run_consensus_files(inputs, tmp_path / "other")
    assert not (tmp_path / "other").exists()


# ---------------------------------------------------------------- the dense and the sparse edge paths

@pytest.mark.parametrize("path", ["dense", "sparse"])
@pytest.mark.parametrize("mode", ["classic", "yuma3", "yuma3_liquid", "yuma3_liquid_today"])
def test_dense_and_sparse_edge_paths_each_equal_the_reference(monkeypatch, path, mode):
    """Both edge paths are forced on the random epochs of test_consensus_properties (absent entries,
    explicit zeros, masks, every bonds penalty and κ): each must equal the literal reference. Dense runs
    one-epoch chunks (any n) and multi-epoch chunks of epochs that share n."""
    from test_consensus_properties import check_batch, random_epoch

    ran = {"dense": 0}
    dense_edge_steps = epoch_module.dense_edge_steps

    def counted(*args):
        ran["dense"] += 1
        return dense_edge_steps(*args)

    monkeypatch.setattr(epoch_module, "dense_edge_steps", counted)
    monkeypatch.setattr(epoch_loaders, "DENSE_MIN_FILL", 0.0 if path == "dense" else 2.0)
    rng = np.random.default_rng(31 + len(mode))
    today = mode.endswith("_today")  # the rules after spec 425 too: CR mask, each consensus mode
    cases = [random_epoch(rng, netuid, yuma3=mode != "classic", liquid=mode.startswith("yuma3_liquid"),
                          consensus_mode=netuid % 4 if today else None)
             for netuid in range(40)]
    by_n: dict[int, list] = {}
    for case in cases:
        by_n.setdefault(len(case.neurons), []).append(case)
    for same_n in by_n.values():  # default chunks: several epochs of one n per chunk
        check_batch(same_n)
    monkeypatch.setattr(epoch_loaders, "CHUNK_EDGES", 1)  # one epoch per chunk
    check_batch(cases)
    monkeypatch.setattr(epoch_module, "EDGE_STEP_THREADS", 2)  # chunks on two threads, results in order
    check_batch(cases)
    assert (ran["dense"] > 0) == (path == "dense")


def test_the_cli_on_two_threads_writes_the_files_one_thread_writes(tmp_path, monkeypatch, capsys):
    """`yumaflow consensus --threads N`: chunks of epochs run side by side, the output files are byte-for-byte
    the same rows as on one thread (dense and sparse chunks alike)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.consensus import concat_inputs, generate_epochs, write_inputs
    from benchmarks.consensus_scaling import sparsify
    from flows.cli import main

    dense = generate_epochs(12, 8, 24, "classic", seed=3)
    sparse = sparsify(generate_epochs(12, 8, 24, "yuma3_liquid", seed=4, first_epoch=12), 0.2, seed=5)
    write_inputs(concat_inputs([dense, sparse]), tmp_path / "IN")
    monkeypatch.setattr(epoch_loaders, "CHUNK_EDGES", 700)  # a few epochs per chunk: many chunks
    for threads in ("1", "2"):
        assert main(["consensus", "--inputs", str(tmp_path / "IN"), "--output", str(tmp_path / threads),
                     "--threads", threads]) == 0
    assert "recomputed 24 epoch(s)" in capsys.readouterr().out
    for name in ("neurons.parquet", "bonds.parquet"):
        one, two = (pl.read_parquet(tmp_path / t / name) for t in ("1", "2"))
        assert one.height > 0 and one.equals(two), name
