"""The epoch's edge steps on a dense grid (subtensor `run_epoch/epoch_dense.rs`): §2.5–§2.10 for a chunk of
epochs that share n and whose weights fill their grid, with broadcasts and axis sums in place of gathers
and group sums, entry for entry the rules of `epoch.edge_steps`."""

from __future__ import annotations

import numpy as np
import polars as pl

from schemas.consensus import EPOCH_BONDS_OUT, EPOCH_KEY
from tasks.consensus.epoch_liquid_alpha import liquid_alpha_consensus
from tasks.consensus.epoch_loaders import ChunkNeurons, Edges, Grid
from tasks.consensus.epoch_terms import EdgeResults
from tasks.consensus.fixed import (
    ONE,
    np_fx_div_by,
    np_fx_mul,
    np_fx_normalize,
    np_liquid_alpha,
    np_to_u16,
    np_u16_proportion_bits,
)

KEY = list(EPOCH_KEY)


def dense_edge_steps(grid: Grid, nr: ChunkNeurons, weights: Edges, bonds: Edges, first_nid: int,
                     keys: pl.DataFrame) -> EdgeResults:
    """§2.5–§2.10 over one chunk on the dense grid; the same rules as `edge_steps`, entry for entry.
    An entry absent from a sparse matrix is a 0 on the grid; `present` masks keep the distinctions the
    sparse path makes between an absent entry and an explicit zero (only liquid alpha needs one)."""
    row, col = grid.by_row, grid.by_col

    # §2.5 weights: masked, then row-normalised (masked entries are absent: 0, not present).
    # (Masks multiply: np.where is several times slower than a product with a bool array.)
    raw, scattered = grid.scatter(weights)
    registered = col(nr["block_at_registration"])
    present = (row(nr["last_update"]) > registered) & row(nr["permit_mask"])
    present &= row(nr["commit_block"]) >= registered  # §2.5.5 (c_i is "never" without commit-reveal)
    present &= (grid.rows[:, None] != grid.cols[None, :]) | row(nr["is_owner"])
    if scattered is not None:
        present &= scattered
    raw = raw * present
    w = np_fx_div_by(raw, raw.sum(axis=2, keepdims=True))  # integer entries: ⌊v·2^32/Σv⌋ (`np_int_normalize`)

    # §2.6 consensus.
    consensus_bits = np.zeros(nr.height, np.int64)
    grid.per_epoch(consensus_bits)[:, grid.cols] = dense_consensus(grid, w, nr)
    c = col(consensus_bits)

    # §2.7 clipping, trust, rank, incentive. A removed entry (w > C = 0) has w̄ = min(w, 0) = 0, as has an
    # absent one, so sums over the grid equal sums over the kept entries.
    clipped = np.minimum(w, c)
    trust_bits = np.zeros(nr.height, np.int64)
    grid.per_epoch(trust_bits)[:, grid.rows] = clipped.sum(axis=2)
    active = row(nr["active_stake_bits"])
    rank = np.zeros(nr.height, np.int64)
    grid.per_epoch(rank)[:, grid.cols] = np_fx_mul(clipped, active).sum(axis=1)  # ⊗ is exact: either order
    incentive_bits = np_fx_normalize(rank, nr.epoch_sum(rank))

    # §2.8 bond weights (W^B entries: `wb_present`) and the masked old bonds.
    beta = row(nr["bonds_penalty_bits"])
    yuma3 = grid.per_epoch(nr["yuma3_enabled"])[:, 0]
    liquid = yuma3 & grid.per_epoch(nr["liquid_alpha_enabled"])[:, 0]
    if (beta == ONE).all() and not liquid.any():  # W^B = W̄ (the entries only matter for liquid alpha)
        wb, wb_present = clipped, None
    else:
        kept = present & ((w == 0) | (c != 0))  # removed: w > C_j = 0
        interpolated = w + np_fx_mul(np.where(kept, clipped, 0) - w, beta)
        wb_present = present & ((beta == 0) | ((beta == ONE) & kept)
                                | ((beta != 0) & (beta != ONE) & (interpolated > 0)))
        wb = np.where(wb_present, np.where(beta == 0, w, np.where(beta == ONE, clipped, interpolated)), 0)
    old, old_present = grid.scatter(bonds)
    old_kept = row(nr["last_tempo"]) > col(nr["block_at_registration"])
    old = old * (old_kept if old_present is None else old_kept & old_present)

    dividend_bits = np.zeros(nr.height, np.int64)
    stored = np.zeros(grid.shape, np.uint16)
    incentive = col(incentive_bits)
    for model, epochs in ((dense_classic, ~yuma3), (dense_yuma3, yuma3)):
        if not epochs.any():
            continue
        part = slice(None) if epochs.all() else np.flatnonzero(epochs)
        d, stored[part] = model(grid, nr, part, wb[part], None if wb_present is None else wb_present[part],
                                old[part], incentive[part], consensus_bits)
        grid.per_epoch(dividend_bits)[np.ix_(np.arange(grid.n_epochs)[part], grid.rows)] = d

    # §2.12: stored rows of uids with a new permit, nonzero entries, in (vid, mid) order (the grid's).
    stored *= row(nr["new_permit"])
    nonzero = stored > 0
    shape = grid.shape
    counts = nonzero.sum(axis=(1, 2))
    schema = EPOCH_BONDS_OUT.polars_schema()
    bond_frame = pl.DataFrame({
        **{k: np.repeat(keys.get_column(k).to_numpy()[first_nid + nr.epoch_start], counts) for k in KEY},
        "validator_uid": np.broadcast_to(grid.rows.astype(np.uint16)[None, :, None], shape)[nonzero],
        "miner_uid": np.broadcast_to(grid.cols.astype(np.uint16)[None, None, :], shape)[nonzero],
        "bond": stored[nonzero]})
    return EdgeResults(
        {"consensus_bits": consensus_bits, "validator_trust_bits": trust_bits, "incentive_bits": incentive_bits,
         "raw_dividend_bits": dividend_bits},
        bond_frame.select([pl.col(c).cast(t) for c, t in schema.items()]))


def dense_consensus(grid: Grid, w: np.ndarray, nr: ChunkNeurons) -> np.ndarray:
    """§2.6 on the grid: the rule of `median._median_of_sorted` per column, the positive scores of V
    sorted along the validator axis (packed with their row, so the row's stake can be found)."""
    sigma = grid.per_epoch(nr["median_stake_bits"])[:, grid.rows]  # [E, rows]
    n_epochs, n_rows, _ = grid.shape
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    # Entries of validators outside V count as score 0 with no stake (they are not in the median).
    packed = ((w * (sigma[:, :, None] > 0)) << row_bits) | np.arange(n_rows)[None, :, None]
    packed = np.sort(packed.transpose(0, 2, 1), axis=2)  # [E, cols, rows], ascending scores
    score = packed >> row_bits
    stake = np.take(sigma, (packed & ((1 << row_bits) - 1)) + (np.arange(n_epochs) * n_rows)[:, None, None])
    stake *= score > 0
    running = np.cumsum(stake, axis=2)
    total = grid.per_epoch(nr["median_total_bits"])[:, :1]  # S per epoch, [E, 1]
    minority = total - grid.per_epoch(nr["kappa_bits"])[:, :1]  # μ = S − κ
    zero_mass = total - running[:, :, -1]  # Z: V's stake at score 0, [E, cols]
    over = (running + (zero_mass - minority)[:, :, None] > 0) & (score > 0)  # Z + cum > μ
    first_over = over.argmax(axis=2)[:, :, None]
    median = np.where(np.take_along_axis(over, first_over, axis=2)[:, :, 0],
                      np.take_along_axis(score, first_over, axis=2)[:, :, 0], score[:, :, -1])
    return np.where((zero_mass > 0) & (zero_mass > minority), 0, median)


def dense_classic(grid: Grid, nr: ChunkNeurons, part, wb: np.ndarray, wb_present: np.ndarray, old: np.ndarray,
                  incentive: np.ndarray, consensus_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`classic_bonds_and_dividends` on the grid's epochs `part`: (d per [epoch, row], stored u16)."""
    active = grid.by_row(nr["active_stake_bits"])[part]
    alpha = grid.by_row(nr["ema_alpha_bits"])[part]
    # Every x below is ≥ 0 and its divisor is a column sum or maximum of x, so x = 0 wherever the divisor is
    # 0: `np_fx_div_by` then equals `np_int_normalize` / `np_fx_normalize` / `np_fx_div` entry for entry.
    old = np_fx_div_by(old, old.sum(axis=1, keepdims=True))
    delta = np_fx_mul(wb, active)
    delta = np_fx_div_by(delta, delta.sum(axis=1, keepdims=True))
    ema = np_fx_mul(delta, alpha) + np_fx_mul(old, ONE - alpha)
    ema = np.maximum(ema, 0)  # entries ≤ 0 are dropped
    ema = np_fx_div_by(ema, ema.sum(axis=1, keepdims=True))
    d = np_fx_mul(ema, incentive).sum(axis=2)  # ⊗ is exact: either order
    return d, np_to_u16(np_fx_div_by(ema, ema.max(axis=1, keepdims=True)))


def dense_yuma3(grid: Grid, nr: ChunkNeurons, part, wb: np.ndarray, wb_present: np.ndarray, old: np.ndarray,
                incentive: np.ndarray, consensus_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`yuma3_bonds_and_dividends` on the grid's epochs `part`: (d per [epoch, row], stored u16)."""
    per_epoch = grid.per_epoch
    old = np_u16_proportion_bits(old)
    liquid = (per_epoch(nr["liquid_alpha_enabled"])[part, 0]
              & (per_epoch(consensus_bits)[part] > 0).any(axis=1))
    ema = np.empty_like(wb)
    if liquid.any():
        # §3: α per W^B entry; E = min(1, (1 − α) ⊗ B ⊕ max(0, α ⊗ W^B)) on W^B's entries only. Computed
        # over the whole grid of the liquid epochs (k, lo, hi per epoch broadcast), then masked.
        some = slice(None) if liquid.all() else liquid
        w_l, b_l = wb[some], old[some]
        per_epoch_param = {name: per_epoch(nr[name])[part][some][:, :1, None]
                           for name in ("steepness_bits", "alpha_low_bits", "alpha_high_bits")}
        alpha = np_liquid_alpha(w_l, b_l, grid.by_col(liquid_alpha_consensus(consensus_bits, nr))[part][some],
                                per_epoch_param["steepness_bits"], per_epoch_param["alpha_low_bits"],
                                per_epoch_param["alpha_high_bits"])
        ema[some] = np.minimum(np_fx_mul(b_l, ONE - alpha) + np.maximum(np_fx_mul(alpha, w_l), 0), ONE) \
            * wb_present[some]
    if not liquid.all():
        alpha_b = grid.by_row(nr["ema_alpha_bits"])[part][~liquid]
        ema[~liquid] = np_fx_mul(wb[~liquid], alpha_b) + np_fx_mul(old[~liquid], ONE - alpha_b)
    ema = np.maximum(ema, 0)  # entries ≤ 0 are dropped
    normalized = np_fx_div_by(ema, ema.sum(axis=1, keepdims=True))  # ema ≥ 0: as `np_fx_div`
    bond_value = np_fx_mul(normalized, incentive).sum(axis=2)
    d = np_fx_mul(bond_value, grid.per_epoch(nr["active_stake_bits"])[part][:, grid.rows])
    return d, np_to_u16(ema)
