"""Checks on the consensus engine's inputs (DESIGN.md §5), and the batch index the engine runs on.

Every error names the table, the epoch key (and uid or edge) and the problem. Validation and indexing
are one pass: the same epoch index (`eid`), global neuron rows (`nid`) and edge keys that prove the
inputs consistent are what `epoch.py` computes on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from schemas import SchemaError, validate_frame
from schemas.consensus import EPOCH_BONDS, EPOCH_KEY, EPOCH_NEURONS, EPOCH_WEIGHTS, EPOCHS

KEY = list(EPOCH_KEY)
MAX_INT64 = (1 << 63) - 1
# I64F64 holds integer parts below 2^63: an epoch's combined stake must stay below that (spec §1).
MAX_TOTAL_STAKE_RAO = MAX_INT64
MAX_ACTIVITY_CUTOFF_FACTOR_MILLI = 1 << 40
# The epoch key packs into one Int64 (netuid 16 bits, mechid 8 bits, block 39 bits) in key order.
_BLOCK_BITS = 39


class ConsensusInputError(SchemaError):
    """The consensus inputs break the file contract; the message names table, key and problem."""


class IndexedBatch(NamedTuple):
    """A validated batch. `epochs`: one row per epoch sorted by key, with `eid` (0..E−1).
    `neurons`: sorted by (eid, uid), with `eid`, `nid` (row index), `offset` (the epoch's first nid)
    and `n`. `weights` / `bonds`: `EdgeTable`s (edges per epoch, sorted by validator and miner uid).
    `frames`: the four validated input frames."""

    epochs: pl.DataFrame
    neurons: pl.DataFrame
    weights: EdgeTable
    bonds: EdgeTable
    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]

    @property
    def epoch_keys(self) -> dict[str, np.ndarray]:
        """The epoch key columns in `eid` order (NumPy)."""
        return {name: self.epochs.get_column(name).to_numpy() for name in KEY}


def _key_text(row: dict, extra: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{k}={row[k]}" for k in KEY + list(extra) if k in row)


def _fail(table: str, row: dict, problem: str, extra: tuple[str, ...] = ()) -> None:
    raise ConsensusInputError(f"{table}: at ({_key_text(row, extra)}): {problem}")


def _first(frame: pl.DataFrame) -> dict | None:
    return frame.row(0, named=True) if frame.height else None


def validate_inputs(epochs: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
                    bonds: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Validate the four input tables; return them with columns in contract order.

    Rejects (ConsensusInputError, a SchemaError): missing columns, wrong types, nulls, duplicate keys
    (a duplicate epoch, uid or edge); an epoch without neurons; neurons, weights or bonds of an epoch
    that has no epoch row; uids that are not exactly 0..n−1; an edge whose validator or miner uid is
    ≥ n; an owner uid ≥ n; an epoch with the Null epoch consensus; alpha_low > alpha_high;
    bonds_moving_avg > 10^6; a block ≥ 2^39 (the epoch key is packed into one Int64); an emission,
    last_mechanism_step_block, last_update, block_at_registration or commit_block ≥ 2^63;
    activity_cutoff_factor_milli > 2^40; an epoch whose total stake reaches 2^63 rao; a validator's
    weight row whose consecutive rows are not in ascending miner_uid order.
    """
    return index_batch(epochs, neurons, weights, bonds).frames


def index_batch(epochs: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
                bonds: pl.DataFrame) -> IndexedBatch:
    """Validate (as `validate_inputs`) and index the batch for the engine."""
    try:
        # A duplicate epoch key is caught below on the packed, sorted keys.
        epochs = validate_frame(epochs, EPOCHS, check_key=False)
        # A duplicate uid is caught by `_index_neurons` (uids exactly 0..n−1, one row each).
        neurons = validate_frame(neurons, EPOCH_NEURONS, check_key=False)
        # Edge keys are checked below on packed integer keys (a hash group-by on five columns is slow).
        weights = validate_frame(weights, EPOCH_WEIGHTS, check_key=False)
        bonds = validate_frame(bonds, EPOCH_BONDS, check_key=False)
    except ConsensusInputError:
        raise
    except SchemaError as err:
        raise ConsensusInputError(str(err)) from None
    frames = (epochs, neurons, weights, bonds)
    # One chunk per column, so the NumPy views of the per-epoch and per-neuron columns are views, not a copy
    # per read (a Parquet file read or a concatenation gives several chunks). The edge tables are not copied
    # whole: `_index_edges` takes the three columns the engine reads out once.
    epochs, neurons = epochs.rechunk(), neurons.rechunk()

    _check_epoch_parameters(epochs)
    params = epochs.lazy().sort(KEY).with_row_index("eid").with_columns(pl.col("eid").cast(pl.Int64)).collect()
    codes = _epoch_codes(params)
    repeated = np.flatnonzero(codes[1:] == codes[:-1])
    if len(repeated):
        row = params.row(int(repeated[0]), named=True)
        key = {k: row[k] for k in KEY}
        _fail("epochs", row, f"duplicate key {key} ({int((codes == codes[repeated[0]]).sum())} rows); "
              f"one row per ({', '.join(KEY)}) expected")
    nr = _index_neurons(neurons, params, codes)
    _check_owner(params, nr)
    _check_total_stake(nr)
    w = _index_edges("epoch_weights", weights, "weight", params, codes, nr, check_row_order=True)
    b = _index_edges("epoch_bonds", bonds, "bond", params, codes, nr, check_row_order=False)
    return IndexedBatch(params, nr, w, b, frames)


def _check_epoch_parameters(epochs: pl.DataFrame) -> None:
    checks = [
        (pl.col("alpha_low") > pl.col("alpha_high"), "alpha_low {alpha_low} > alpha_high {alpha_high}"),
        (pl.col("bonds_moving_avg") > 1_000_000, "bonds_moving_avg {bonds_moving_avg} > 1000000"),
        (pl.col("emission") > MAX_INT64, "emission {emission} rao is not below 2^63"),
        (pl.col("block") >= 1 << _BLOCK_BITS, "block {block} is not below 2^39"),
        (pl.col("last_mechanism_step_block") > MAX_INT64,
         "last_mechanism_step_block {last_mechanism_step_block} is not below 2^63"),
        (pl.col("activity_cutoff_factor_milli") > MAX_ACTIVITY_CUTOFF_FACTOR_MILLI,
         "activity_cutoff_factor_milli {activity_cutoff_factor_milli} is out of range (at most 2^40)"),
        # The Null epoch consensus (SubnetEpochConsensus = Null) is not in the subtensor source this
        # engine follows (README "Epoch variants"): refused rather than recomputed as Yuma.
        (pl.col("epoch_consensus") == 1,
         "epoch_consensus 1 (Null) is not supported: the engine recomputes Yuma epochs only"),
    ]
    flags = epochs.select([condition.any().alias(str(k)) for k, (condition, _) in enumerate(checks)]).row(0)
    for (condition, problem), failed in zip(checks, flags, strict=True):
        bad = _first(epochs.filter(condition)) if failed else None
        if bad:
            _fail("epochs", bad, problem.format(**bad))


def _codes_of(frame: pl.DataFrame) -> np.ndarray:
    """The epoch key packed into one Int64, increasing in (netuid, mechid, block) order."""
    return ((frame.get_column("netuid").to_numpy().astype(np.int64) << (8 + _BLOCK_BITS))
            | (frame.get_column("mechid").to_numpy().astype(np.int64) << _BLOCK_BITS)
            | frame.get_column("block").to_numpy().astype(np.int64))


def _epoch_codes(params: pl.DataFrame) -> np.ndarray:
    return _codes_of(params)


def _epoch_runs(table: str, frame: pl.DataFrame, codes: np.ndarray, extra: tuple[str, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Runs of rows with the same epoch key: (first row of each run, epoch index of each run). Rows of
    one epoch usually come together, so the key is packed and searched once per run, not per row.
    A row whose epoch has no row in epochs is an error."""
    if not frame.height:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from tasks.consensus.epoch_kernels import key_run_starts  # numba: one compiled pass over the key columns

    starts = key_run_starts(*(frame.get_column(c).to_numpy() for c in KEY))
    run_codes = _codes_of(frame[starts])
    run_eid = np.searchsorted(codes, run_codes)
    found = (run_eid < len(codes)) & (codes[np.minimum(run_eid, len(codes) - 1)] == run_codes)
    if not found.all():
        bad = frame.row(int(starts[np.flatnonzero(~found)[0]]), named=True)
        _fail(table, bad, "row of an epoch that has no row in epochs", extra)
    return starts, run_eid.astype(np.int64)


def _eid_of(table: str, frame: pl.DataFrame, codes: np.ndarray, extra: tuple[str, ...]) -> np.ndarray:
    """Epoch index of every row (see `_epoch_runs`)."""
    starts, run_eid = _epoch_runs(table, frame, codes, extra)
    return np.repeat(run_eid, np.diff(np.r_[starts, frame.height]))


def _index_neurons(neurons: pl.DataFrame, params: pl.DataFrame, codes: np.ndarray) -> pl.DataFrame:
    eid = _eid_of("epoch_neurons", neurons, codes, ("uid",))
    uid = neurons.get_column("uid").to_numpy().astype(np.int64)
    order_key = eid * (1 << 16) + uid
    if len(order_key) > 1 and not (np.diff(order_key) > 0).all():
        order = np.argsort(order_key, kind="stable")
        neurons, eid, uid = neurons[order], eid[order], uid[order]
    counts = np.bincount(eid, minlength=params.height)
    if (counts == 0).any():
        bad = params.row(int(np.flatnonzero(counts == 0)[0]), named=True)
        _fail("epochs", bad, "epoch has no neurons (expected uids 0..n-1 in epoch_neurons)")
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    expected_uid = np.arange(len(uid)) - offset[eid]
    if not (uid == expected_uid).all():
        k = int(np.flatnonzero(uid != expected_uid)[0])
        _fail("epoch_neurons", neurons.row(k, named=True),
              f"uids must be exactly 0..n-1 (n = {counts[eid[k]]}) with one row each; found uid {uid[k]} "
              f"where uid {expected_uid[k]} was expected")
    return neurons.with_columns(
        eid=pl.Series(eid), nid=pl.Series(np.arange(len(uid), dtype=np.int64)),
        offset=pl.Series(offset[eid]), n=pl.Series(counts[eid].astype(np.int64)))


def _check_owner(params: pl.DataFrame, nr: pl.DataFrame) -> None:
    n = np.bincount(nr.get_column("eid").to_numpy(), minlength=params.height)
    owner = params.get_column("owner_uid").fill_null(0).to_numpy().astype(np.int64)
    bad = np.flatnonzero(owner >= n)
    if len(bad):
        row = params.row(int(bad[0]), named=True)
        _fail("epochs", row, f"owner_uid {row['owner_uid']} is not a uid of the epoch (n = {n[bad[0]]})")


def _check_total_stake(nr: pl.DataFrame) -> None:
    for col in ("last_update", "block_at_registration", "commit_block"):
        values = nr.get_column(col).fill_null(0).to_numpy() if col == "commit_block" else nr.get_column(col).to_numpy()
        if (values > MAX_INT64).any():
            bad = nr.row(int(np.flatnonzero(values > MAX_INT64)[0]), named=True)
            _fail("epoch_neurons", bad, f"{col} {bad[col]} is not below 2^63", ("uid",))
    # Σ(alpha + tao·tw) ≤ Σ(alpha + tao) since tw ≤ 1. In float first (relative error below 2^−40 here):
    # only a batch with an epoch near the limit is summed exactly.
    stake = nr.get_column("alpha_stake").to_numpy().astype(np.float64) + nr.get_column("tao_stake").to_numpy()
    starts = np.flatnonzero(np.r_[True, np.diff(nr.get_column("eid").to_numpy()) != 0])
    if not len(stake) or np.add.reduceat(stake, starts).max() < 2.0**62:
        return
    totals = nr.group_by(KEY).agg(
        total=(pl.col("alpha_stake").cast(pl.Int128) + pl.col("tao_stake").cast(pl.Int128)).sum())
    bad = _first(totals.filter(pl.col("total") > MAX_TOTAL_STAKE_RAO))
    if bad:
        _fail("epoch_neurons", bad, f"total stake {bad['total']} rao of the epoch is not below 2^63 "
              "(the chain's I64F64 stake would saturate)")


class EdgeTable(NamedTuple):
    """One validated edge table: per edge the validator uid, miner uid and value (NumPy, as stored), and
    per epoch (`eid`) the rows [start, stop) of its edges, which are sorted by (validator_uid, miner_uid).
    The engine builds global rows (vid, mid) chunk by chunk, so no per-edge index column is materialised."""

    validator_uid: np.ndarray
    miner_uid: np.ndarray
    value: np.ndarray
    start: np.ndarray
    stop: np.ndarray


def _index_edges(table: str, edges: pl.DataFrame, value: str, params: pl.DataFrame, codes: np.ndarray,
                 nr: pl.DataFrame, *, check_row_order: bool) -> EdgeTable:
    """Edges located per epoch; checks uids < n, the row order of weights and duplicates, in one compiled
    pass over the stored columns. When every epoch's rows are one run in (validator_uid, miner_uid) order (the
    usual layout, in any epoch order) the input columns are used as they are; otherwise they are sorted."""
    extra = ("validator_uid", "miner_uid")
    n_epochs = params.height
    counts = np.bincount(nr.get_column("eid").to_numpy(), minlength=n_epochs)
    height = edges.height
    starts, run_eid = _epoch_runs(table, edges, codes, extra)
    bounds = np.r_[starts, height]
    validator_col = edges.get_column("validator_uid").to_numpy()
    miner_col = edges.get_column("miner_uid").to_numpy()
    value_col = edges.get_column(value).to_numpy()
    # uids below n, and keys increasing inside every run of one epoch (only run starts may step back).
    from tasks.consensus.epoch_kernels import check_edge_runs  # numba: one compiled pass over the edges

    bad_row, bad_column, runs_ordered = check_edge_runs(validator_col, miner_col, bounds, counts[run_eid])
    if bad_row >= 0:
        name, col = (("validator_uid", validator_col), ("miner_uid", miner_col))[bad_column]
        run = np.searchsorted(bounds, bad_row, side="right") - 1
        _fail(table, edges.row(int(bad_row), named=True), f"{name} {col[bad_row]} is not a neuron of the epoch "
              f"(n = {counts[run_eid[run]]})", extra)
    if runs_ordered and len(np.unique(run_eid)) == len(run_eid):
        start, stop = np.zeros(n_epochs, np.int64), np.zeros(n_epochs, np.int64)
        start[run_eid], stop[run_eid] = bounds[:-1], bounds[1:]
        return EdgeTable(validator_col, miner_col, value_col, start, stop)

    eid = np.repeat(run_eid, np.diff(bounds))
    validator, miner = validator_col.astype(np.int64), miner_col.astype(np.int64)
    if check_row_order:
        # Consecutive rows of one validator must name miners in ascending order (DESIGN.md §5):
        # the chain's liquid-alpha lookup merges rows by uid and reads out-of-order entries as 0 (§3).
        bad = (eid[1:] == eid[:-1]) & (validator[1:] == validator[:-1]) & (miner[1:] < miner[:-1])
        if bad.any():
            k = int(np.flatnonzero(bad)[0]) + 1
            _fail(table, edges.row(k, named=True), "weights row is not in ascending miner_uid order", extra)
    edge_key = (eid << 32) | (validator << 16) | miner
    order = np.argsort(edge_key, kind="stable")
    edge_key = edge_key[order]
    dup = np.flatnonzero(edge_key[1:] == edge_key[:-1])
    if len(dup):
        row = edges.row(int(order[dup[0] + 1]), named=True)
        _fail(table, row, "duplicate edge (one row per validator_uid, miner_uid expected)", extra)
    sorted_eid = edge_key >> 32
    epochs = np.arange(n_epochs)
    return EdgeTable(validator_col[order], miner_col[order], value_col[order],
                     np.searchsorted(sorted_eid, epochs, side="left"),
                     np.searchsorted(sorted_eid, epochs, side="right"))
