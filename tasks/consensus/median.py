"""Stake-weighted median per column, columnar (yuma_spec.md §2.6).

The chain runs a pivot search per column (`weighted_median`). Here every column of every epoch is
solved at once by one sort and a cumulative stake sum. Why the two agree:

The pivot search keeps an interval [lo, hi] whose ends are the stake below and up to the current list
L. With pivot p it goes lower when μ < stake(score < p), goes higher when stake(score ≤ p) ≤ μ, and
returns p otherwise, i.e. when stake(score < p) ≤ μ < stake(score ≤ p). That is the smallest score v in
the column with stake(score ≤ v) > μ. When no score satisfies it (μ ≥ total stake), the search keeps
moving up and returns the largest score. An empty list returns 0. Fixed-point additions are exact, so
cumulative sums of bits give the same comparisons as the chain's lo/hi bookkeeping.

Validators in V that have no entry in a column take part with score 0, as do explicit zero entries.
They form one mass at score 0: Z = S − Σ σ(entries with score > 0). Score 0 is a candidate only if
Z > 0 (when κ > S, μ < 0 and the smallest present score wins, which need not be 0).
"""

from __future__ import annotations

import numpy as np
import polars as pl

_SCORE_BITS = 33  # scores are normalised weights in [0, 1]: at most 2^32 bits


def weighted_median_columns(
    edges: pl.DataFrame | pl.LazyFrame,
    *,
    group: list[str],
    stake: str = "stake_bits",
    score: str = "score_bits",
    total_stake: str = "total_stake_bits",
    kappa: str = "kappa_bits",
    out: str = "median_bits",
) -> pl.DataFrame:
    """Consensus C_j of spec §2.6 for many columns at once. Returns one row per group: `group` + `out`.

    `edges` has one row per explicit entry (validator i, column j) of a validator in V, i.e. with a
    re-normalised active stake σ_i > 0, and these integer columns (I32F32 bits):

    - `group` columns identify a column j of one epoch (e.g. ["eid", "miner_uid"], or one global
      column id);
    - `stake`: σ_i, the validator's re-normalised active stake (rows with σ_i ≤ 0 are ignored);
    - `score`: x_ij = w_ij, the normalised weight, 0 ≤ x ≤ 2^32 (an explicit 0 is allowed);
    - `total_stake`: S = Σ_{i∈V} σ_i of the epoch (the same on every row of a group; it includes the
      validators of V without an entry in the column, which count as score 0);
    - `kappa`: κ bits = Kappa_u16 ⊘ 65535 (the same on every row of a group).

    Result per group, with μ = S − κ and Z = S − Σ σ(rows with score > 0):
    0 if Z > 0 and Z > μ (0 is a candidate score only when some of V sits at 0); else the smallest
    score v > 0 with Z + Σ σ(score ≤ v) > μ; else (μ ≥ S) the largest score in the group. Only groups
    with at least one row of σ > 0 are returned; a column with no such row has median 0. This equals the chain's pivot
    search `weighted_median(σ, x, all of V, μ, lo = 0, hi = S)` bit for bit.
    """
    frame = edges.lazy().filter(pl.col(stake) > 0).collect()
    if len(group) == 1 and frame.schema[group[0]].is_integer() and (
            frame.height == 0 or frame.get_column(group[0]).min() >= 0):
        gid = frame.get_column(group[0]).cast(pl.Int64).to_numpy()
    else:
        gid = frame.select(pl.struct(group).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    medians = median_by_group(
        gid,
        frame.get_column(stake).cast(pl.Int64).to_numpy(),
        frame.get_column(score).cast(pl.Int64).to_numpy(),
        frame.get_column(total_stake).cast(pl.Int64).to_numpy(),
        frame.get_column(kappa).cast(pl.Int64).to_numpy(),
    )
    first_row = np.unique(gid, return_index=True)[1]
    return frame[first_row].select(group).with_columns(pl.Series(out, medians[gid[first_row]]))


def median_by_group(gid: np.ndarray, stake: np.ndarray, score: np.ndarray, total_stake: np.ndarray,
                    kappa: np.ndarray) -> np.ndarray:
    """The same on NumPy Int64 arrays of rows with σ > 0 (`gid` a non-negative group id; S and κ per
    row). Returns the median per group id 0..max(gid) (0 for ids without rows)."""
    size = int(gid.max()) + 1 if len(gid) else 0
    total_by_group = np.zeros(size, dtype=np.int64)
    total_by_group[gid] = total_stake
    kappa_by_group = np.zeros(size, dtype=np.int64)
    kappa_by_group[gid] = kappa
    positive = score > 0
    pg, ps, pstake = gid[positive], score[positive], stake[positive]
    if size < (1 << (63 - _SCORE_BITS)):
        order = np.argsort((pg << _SCORE_BITS) | ps)  # ties in (group, score) are interchangeable
    else:
        order = np.lexsort((ps, pg))
    return _median_of_sorted(total_by_group, kappa_by_group, pg[order], ps[order], pstake[order])


def median_by_group_of_members(gid: np.ndarray, member: np.ndarray, score: np.ndarray,
                               stake_table: np.ndarray, group_base: np.ndarray, group_total: np.ndarray,
                               group_kappa: np.ndarray) -> np.ndarray:
    """`median_by_group` where each row's stake is a table entry, σ = stake_table[group_base[gid] + member]
    with small non-negative `member` ids, and S and κ are given per group id (`group_total`,
    `group_kappa`). In the engine: gid = the miner's row, member = the validator's uid, base = the
    epoch's first row. Sorting packed (group, score, member) values instead of an index permutation is
    several times faster; falls back to `median_by_group` when the packed value does not fit 63 bits."""
    size = len(group_total)
    member_bits = max(int(member.max()).bit_length(), 1) if len(member) else 1
    if size.bit_length() + _SCORE_BITS + member_bits > 63:
        return median_by_group(gid, stake_table[group_base[gid] + member], score, group_total[gid],
                               group_kappa[gid])
    positive = score > 0
    packed = np.sort((gid[positive] << (_SCORE_BITS + member_bits)) | (score[positive] << member_bits)
                     | member[positive])
    pg = packed >> (_SCORE_BITS + member_bits)
    ps = (packed >> member_bits) & ((1 << _SCORE_BITS) - 1)
    pstake = stake_table[group_base[pg] + (packed & ((1 << member_bits) - 1))]
    return _median_of_sorted(group_total, group_kappa, pg, ps, pstake)


def _median_of_sorted(total_by_group: np.ndarray, kappa_by_group: np.ndarray, pg: np.ndarray, ps: np.ndarray,
                      pstake: np.ndarray) -> np.ndarray:
    """The rule of `weighted_median_columns`, given S and κ per group id and the rows with score > 0
    sorted by (group, score): (pg, ps, pstake). A group without positive rows gets 0."""
    size = len(total_by_group)
    result = np.zeros(size, dtype=np.int64)
    if not len(pg):
        return result
    start = np.flatnonzero(np.r_[True, pg[1:] != pg[:-1]])
    groups = pg[start]
    running = np.cumsum(pstake)
    before = running[start] - pstake[start]  # stake of earlier groups in the running sum
    count = np.diff(np.r_[start, len(pg)])
    group_stake = np.r_[running[start[1:] - 1], running[-1]] - before
    total = total_by_group[groups]
    minority = total - kappa_by_group[groups]  # μ = S − κ
    zero_mass = total - group_stake  # Z: V's stake at score 0
    over = np.repeat(zero_mass - before - minority, count) + running > 0  # Z + cum > μ
    position = np.where(over, np.arange(len(pg)), len(pg))
    first_over = np.minimum.reduceat(position, start)
    last = np.r_[start[1:], len(pg)] - 1
    median = ps[np.where(first_over < len(pg), first_over, last)]  # none over μ: the largest score
    median[(zero_mass > 0) & (zero_mass > minority)] = 0  # 0 is a score only if some of V sits there
    result[groups] = median
    return result
