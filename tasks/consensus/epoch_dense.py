"""The epoch's edge steps on a dense grid (subtensor `run_epoch/epoch_dense.rs`): §2.5–§2.10 for a chunk of
epochs that share n and whose weights fill their grid, entry for entry the rules of `epoch.edge_steps`,
computed by the compiled kernel of `epoch_kernels` on a [validator, miner] grid per epoch."""

from __future__ import annotations

import numpy as np
import polars as pl

from schemas.consensus import EPOCH_BONDS_OUT, EPOCH_KEY
from tasks.consensus.epoch_loaders import Chunk, Grid
from tasks.consensus.epoch_terms import EdgeResults

KEY = list(EPOCH_KEY)


def dense_edge_steps(grid: Grid, chunk: Chunk) -> EdgeResults:
    """§2.5–§2.10 over one chunk on the dense grid; the same rules as `edge_steps`, entry for entry, in the
    compiled kernel `epoch_kernels.dense_epoch_terms` (one pass per step and epoch; chunks in parallel on the
    engine's threads).
    An entry absent from a sparse matrix is a 0 on the grid; the presence arrays keep the distinctions the
    sparse path makes between an absent entry and an explicit zero (only liquid alpha needs one)."""
    nr = chunk.nr
    from tasks.consensus.epoch_kernels import dense_epoch_terms, nonzero_bonds  # numba: loaded on first use

    # One dtype per argument (int64, or bool for flags), so the kernel compiles for one signature only.
    flags = {"permit_mask", "new_permit", "is_owner", "yuma3_enabled", "liquid_alpha_enabled"}

    def typed(values: np.ndarray, name: str) -> np.ndarray:
        return np.ascontiguousarray(values, np.bool_ if name in flags else np.int64)

    def stored_edges(table):  # the stored columns as they are (u16) and the chunk's epochs' rows
        return (table.validator_uid, table.miner_uid, table.value, *chunk.edge_rows(table))

    per_neuron = {name: typed(grid.per_epoch(nr[name]), name) for name in (
        "last_update", "block_at_registration", "permit_mask", "new_permit", "is_owner", "commit_block",
        "last_tempo", "median_stake_bits", "active_stake_bits", "liquid_consensus_source", "previous_consensus_bits")}
    per_epoch = {name: typed(grid.per_epoch(nr[name])[:, 0], name) for name in (
        "median_total_bits", "kappa_bits", "bonds_penalty_bits", "yuma3_enabled", "liquid_alpha_enabled",
        "ema_alpha_bits", "steepness_bits", "alpha_low_bits", "alpha_high_bits")}
    consensus_bits, trust_bits, incentive_bits, dividend_bits = (np.zeros((grid.n_epochs, grid.n), np.int64)
                                                                 for _ in range(4))
    shape = grid.shape
    stored = np.zeros(shape, np.uint16)
    row_at, col_at = grid.positions()
    dense_epoch_terms(
        grid.rows.astype(np.int64), grid.cols.astype(np.int64), row_at, col_at,
        *stored_edges(chunk.batch.weights), *stored_edges(chunk.batch.bonds),
        *per_neuron.values(), *per_epoch.values(),
        consensus_bits, trust_bits, incentive_bits, dividend_bits, stored)

    # §2.12: the stored bonds, nonzero entries, in (vid, mid) order (the grid's), gathered in one compiled pass.
    counts = np.zeros(grid.n_epochs, np.int64)
    validator_uid, miner_uid, bond = nonzero_bonds(stored, grid.rows.astype(np.uint16), grid.cols.astype(np.uint16),
                                                   counts)
    schema = EPOCH_BONDS_OUT.polars_schema()
    bond_frame = pl.DataFrame({
        **{k: pl.Series(k, np.repeat(chunk.epoch_keys[k], counts), dtype=schema[k]) for k in KEY},
        "validator_uid": validator_uid, "miner_uid": miner_uid, "bond": bond})
    return EdgeResults(
        {"consensus_bits": consensus_bits.ravel(), "validator_trust_bits": trust_bits.ravel(),
         "incentive_bits": incentive_bits.ravel(), "raw_dividend_bits": dividend_bits.ravel()},
        bond_frame)
