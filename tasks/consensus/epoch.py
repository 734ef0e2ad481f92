"""The Yuma Consensus epoch (on-chain sparse path `epoch_mechanism`) as columnar steps.

Reads top to bottom in the order of ../shared/yuma_spec.md §2: activity, stake, permits, active stake,
weights, consensus, clipping/trust/incentive, bond weights and masking, bonds (classic or Yuma3 with
liquid alpha), dividends, emission. Many epochs run in one batch (`validate.index_batch`): each epoch
has an index `eid`, each neuron a global row `nid` (epochs in key order, uids 0..n−1 inside), and each
edge the global rows of its validator (`vid`) and miner (`mid`), with edges sorted by (vid, mid).

Per-neuron steps (§2.1–§2.4, dividends, emission) are one lazy Polars query each over all neurons of
the batch, grouped by `eid`. Edge steps (§2.5–§2.10) work on whole Int64 columns (NumPy) of a chunk of
whole epochs (~0.5M edges, so each pass stays in the CPU caches): per-neuron values reach edges by
gathering on `vid`/`mid`, row and column sums are group sums over them, and two edge sets are aligned
by merging their sorted keys. No Python loop runs over epochs, uids or edges, only over chunks.
A chunk of epochs that share n and whose weights are dense (the usual subnet) runs on a dense grid
[epoch, validator, miner] instead (`dense_edge_steps`): the same rules, with broadcasts and axis sums in
place of gathers and group sums, and the median's sort along the validator axis.

All epoch quantities are I32F32 bits in Int64 columns (suffix `_bits`), computed with the exact
integer helpers of `fixed.py`; outputs are u16 and rao exactly as the chain stores them.

Rules the chain gained after spec 425 are selected per epoch by its own columns (README "Epoch
variants"): the commit-reveal column mask (§2.5.5, `commit_reveal_enabled` with each validator's
`commit_block`) and the consensus vector liquid alpha reads (`liquid_alpha_consensus_mode`, with the
stored `previous_consensus`). Mechanism aggregation (§5.3) is outside this engine (emission_split.py).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import polars as pl

from schemas.consensus import CONSENSUS_MODES, EPOCH_BONDS_OUT, EPOCH_KEY, EPOCH_NEURONS_OUT, U16_MAX
from tasks.consensus.fixed import (
    ONE,
    fx_div,
    fx_normalize,
    np_fx_div,
    np_fx_div_by,
    np_fx_mul,
    np_fx_normalize,
    np_int_normalize,
    np_liquid_alpha,
    np_to_u16,
    np_u16_proportion_bits,
    rao_share,
    to_u16,
    u16_proportion_bits,
)
from tasks.consensus.median import median_by_group_of_members
from tasks.consensus.validate import EdgeTable, IndexedBatch, index_batch

KEY = list(EPOCH_KEY)


class EpochOutputs(NamedTuple):
    """neurons: one row per (netuid, mechid, block, uid), EPOCH_NEURONS_OUT columns, in that order;
    bonds: one row per new nonzero bond edge as the chain stores it, EPOCH_BONDS_OUT columns, sorted
    by (netuid, mechid, block, validator_uid, miner_uid)."""

    neurons: pl.DataFrame
    bonds: pl.DataFrame


class Edges(NamedTuple):
    """A sparse matrix of the batch: entry k is (vid[k], mid[k]) with value[k]; keys sorted, unique."""

    vid: np.ndarray
    mid: np.ndarray
    value: np.ndarray

    def select(self, mask: np.ndarray) -> Edges:
        if mask.all():
            return self
        return Edges(self.vid[mask], self.mid[mask], self.value[mask])

    def with_value(self, value: np.ndarray) -> Edges:
        return Edges(self.vid, self.mid, value)


def run_epochs(epochs: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
               bonds: pl.DataFrame) -> EpochOutputs:
    """Run every epoch of the batch (DESIGN.md §5 file contract; spec §2, §3).

    Inputs have the EPOCHS, EPOCH_NEURONS, EPOCH_WEIGHTS and EPOCH_BONDS schemas and are validated
    first (ConsensusInputError). Epochs are independent: each uses only its own rows. The per-neuron
    steps run once over the whole batch; the edge steps run over chunks of whole epochs.
    """
    batch = index_batch(epochs, neurons, weights, bonds)
    if batch.epochs.height == 0:
        return EpochOutputs(EPOCH_NEURONS_OUT.empty(), EPOCH_BONDS_OUT.empty())
    nr = neuron_frame(batch.neurons, epoch_parameters(batch.epochs))  # lazy: §2.1–§2.4 as one query
    nr = activity(nr)
    nr = stake(nr)
    nr = validator_permits(nr)
    nr = active_stake(nr)
    nr = median_stake(nr).collect()

    keys = nr.select(*KEY, "uid")
    chunks = run_chunks(batch, nr, keys)
    per_neuron = {name: np.concatenate([c.neurons[name] for c in chunks]) for name in EdgeResults.NEURON_COLUMNS}
    nr = nr.with_columns(**{name: pl.Series(v) for name, v in per_neuron.items()})
    paid = emission(dividends(nr.lazy()))
    return EpochOutputs(neurons=neuron_outputs(paid), bonds=pl.concat([c.bonds for c in chunks]))


# Epochs are processed in chunks of about this many edges: whole-column passes then stay within the
# CPU caches and memory stays bounded; a chunk is itself a columnar batch of many epochs.
CHUNK_EDGES = 1 << 19

# Chunks are independent: with more than one thread they run concurrently (NumPy releases the GIL in
# its array loops). One by default: the figures and tests are single-threaded.
EDGE_STEP_THREADS = 1


def run_chunks(batch: IndexedBatch, nr: pl.DataFrame, keys: pl.DataFrame) -> list[EdgeResults]:
    """`edge_steps` of every chunk, in order; at most 2·threads chunks are built ahead (bounded memory)."""
    chunks = epoch_chunks(batch, nr)
    if EDGE_STEP_THREADS <= 1:
        return [edge_steps(*chunk, keys) for chunk in chunks]
    results, pending = [], deque()
    with ThreadPoolExecutor(EDGE_STEP_THREADS) as pool:
        for chunk in chunks:
            pending.append(pool.submit(edge_steps, *chunk, keys))
            if len(pending) >= 2 * EDGE_STEP_THREADS:
                results.append(pending.popleft().result())
        results.extend(future.result() for future in pending)
    return results


# Per-neuron inputs of the edge steps (§2.5–§2.10).
_EDGE_STEP_INPUTS = ("permit_mask", "new_permit", "is_owner", "last_update", "block_at_registration", "offset",
                     "commit_block", "active_stake_bits", "median_stake_bits", "median_total_bits", "kappa_bits",
                     "bonds_penalty_bits", "last_tempo", "yuma3_enabled", "liquid_alpha_enabled",
                     "liquid_consensus_source", "previous_consensus_bits",
                     "ema_alpha_bits", "steepness_bits", "alpha_low_bits", "alpha_high_bits")


class ChunkNeurons:
    """Per-neuron NumPy columns of one chunk of whole epochs (row = nid − first nid of the chunk)."""

    def __init__(self, columns: dict[str, np.ndarray], epoch_start: np.ndarray, epoch_of: np.ndarray | None = None):
        self.columns = columns
        self.height = len(columns["offset"])
        self.epoch_start = epoch_start  # row of each epoch's first neuron
        self.epoch_of = epoch_of if epoch_of is not None else np.repeat(
            np.arange(len(epoch_start)), np.diff(np.r_[epoch_start, self.height]))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def with_columns(self, **columns: np.ndarray) -> ChunkNeurons:
        return ChunkNeurons({**self.columns, **columns}, self.epoch_start, self.epoch_of)

    def epoch_sum(self, values: np.ndarray) -> np.ndarray:
        """Σ of `values` over each neuron's epoch, per neuron (exact Int64)."""
        return np.add.reduceat(values, self.epoch_start)[self.epoch_of]


def epoch_chunks(batch: IndexedBatch, nr: pl.DataFrame, chunk_edges: int | None = None):
    """Split the batch into runs of whole epochs with ~chunk_edges weight and bond edges each:
    (ChunkNeurons, weight Edges, bond Edges, first nid), with `vid`, `mid` and `offset` re-based to the
    chunk."""
    chunk_edges = chunk_edges or CHUNK_EDGES
    n_epochs = batch.epochs.height
    edges_per_epoch = (batch.weights.stop - batch.weights.start) + (batch.bonds.stop - batch.bonds.start)
    neurons_per_epoch = np.bincount(nr.get_column("eid").to_numpy(), minlength=n_epochs)
    cumulative = np.cumsum(edges_per_epoch + neurons_per_epoch)
    bounds = np.searchsorted(cumulative, np.arange(chunk_edges, cumulative[-1], chunk_edges), side="right")
    bounds = np.unique(np.r_[0, bounds, n_epochs])
    first_nid = np.r_[0, np.cumsum(neurons_per_epoch)]
    columns = {name: nr.get_column(name).to_numpy() for name in _EDGE_STEP_INPUTS}
    for e0, e1 in zip(bounds[:-1], bounds[1:], strict=True):
        n0, n1 = int(first_nid[e0]), int(first_nid[e1])
        part = {name: col[n0:n1] for name, col in columns.items()}
        part["offset"] = part["offset"] - n0
        epoch_start = first_nid[e0:e1] - n0
        yield (ChunkNeurons(part, epoch_start), _chunk_of(batch.weights, e0, e1, epoch_start),
               _chunk_of(batch.bonds, e0, e1, epoch_start), n0)


def _chunk_of(table: EdgeTable, e0: int, e1: int, epoch_start: np.ndarray) -> Edges:
    """The edges of epochs e0..e1−1 with chunk rows vid = epoch start + validator uid (mid likewise)."""
    start, stop = table.start[e0:e1], table.stop[e0:e1]
    filled = stop > start
    first, last = start[filled], stop[filled]
    if len(first) and (first[1:] == last[:-1]).all():  # one run of rows (the usual layout)
        rows = slice(int(first[0]), int(last[-1]))
        columns = (table.validator_uid[rows], table.miner_uid[rows], table.value[rows])
    else:
        columns = tuple(np.concatenate([col[a:b] for a, b in zip(first, last, strict=True)] or [col[:0]])
                        for col in (table.validator_uid, table.miner_uid, table.value))
    offset = np.repeat(epoch_start, stop - start)
    validator, miner, value = columns
    return Edges(offset + validator, offset + miner, value.astype(np.int64))


class EdgeResults(NamedTuple):
    """What the edge steps give back per chunk: per-neuron columns and the stored bond edges (global
    vid/mid)."""

    neurons: dict[str, np.ndarray]
    bonds: pl.DataFrame
    NEURON_COLUMNS = ("consensus_bits", "validator_trust_bits", "incentive_bits", "raw_dividend_bits")


def edge_steps(nr: ChunkNeurons, weights: Edges, bonds: Edges, first_nid: int, keys: pl.DataFrame
               ) -> EdgeResults:
    """§2.5–§2.10 over one chunk: weights, consensus, clipping, trust, incentive, bonds, dividends.
    A chunk of same-size epochs with dense weights runs on the dense grid instead (`dense_edge_steps`)."""
    grid = dense_grid(nr, weights, bonds)
    if grid is not None:
        return dense_edge_steps(grid, nr, weights, bonds, first_nid, keys)
    w = normalized_weights(weights, nr)
    nr = nr.with_columns(consensus_bits=consensus(w, nr))
    clipped = clipped_weights(w, nr)
    trust_bits, incentive_bits = validator_trust_and_incentive(w, clipped, nr)
    nr = nr.with_columns(validator_trust_bits=trust_bits, incentive_bits=incentive_bits)
    wb = bond_weights(w, clipped, nr)
    old = masked_old_bonds(bonds, nr)

    yuma3 = nr["yuma3_enabled"]
    classic_ema, classic_div = classic_bonds_and_dividends(wb.select(~yuma3[wb.vid]),
                                                           old.select(~yuma3[old.vid]), nr)
    yuma3_ema, yuma3_div = yuma3_bonds_and_dividends(wb.select(yuma3[wb.vid]), old.select(yuma3[old.vid]), nr)
    nr = nr.with_columns(raw_dividend_bits=classic_div + yuma3_div)
    return EdgeResults({name: nr[name] for name in EdgeResults.NEURON_COLUMNS},
                       bond_outputs([classic_ema, yuma3_ema], nr, keys, first_nid))


# ---------------------------------------------------------------- helpers over the batch index

def _sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Exact Int64 sum of `values` per dense index 0..size−1 (0 for an index without entries)."""
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, index, values)
    return out


def _sum_by_sorted(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """`_sum_by` for a non-decreasing index (edges are sorted by vid): one pass of segment sums."""
    out = np.zeros(size, dtype=np.int64)
    if len(index):
        start = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        out[index[start]] = np.add.reduceat(values, start)
    return out


def _max_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    np.maximum.at(out, index, values)
    return out


def _union(a: Edges, b: Edges, size: int) -> tuple[Edges, np.ndarray, np.ndarray]:
    """Align two sparse matrices on the union of their entries: (keys, a's value or 0, b's or 0).
    Both are sorted by key, so positions come from binary searches (no hash join)."""
    key_a, key_b = a.vid * size + a.mid, b.vid * size + b.mid
    if np.array_equal(key_a, key_b):  # the same entries (dense weights and bonds)
        return a.with_value(np.zeros(len(key_a), np.int64)), a.value, b.value
    at = np.minimum(np.searchsorted(key_a, key_b), max(len(key_a) - 1, 0))
    found = (key_a[at] == key_b) if len(key_a) else np.zeros(len(key_b), bool)
    if found.all():  # b's entries are a subset of a's (the usual case: bonds follow weights)
        keys, a_value = key_a, a.value
        b_value = np.zeros(len(keys), np.int64)
        b_value[at] = b.value
    else:
        keys = np.sort(np.concatenate([key_a, key_b[~found]]))
        a_value = np.zeros(len(keys), np.int64)
        a_value[np.searchsorted(keys, key_a)] = a.value
        b_value = np.zeros(len(keys), np.int64)
        b_value[np.searchsorted(keys, key_b)] = b.value
    return Edges(keys // size, keys % size, np.zeros(len(keys), np.int64)), a_value, b_value


def _lookup(table: Edges, query: Edges, size: int) -> np.ndarray:
    """The value of `table` at each entry of `query`, 0 where `table` has no such entry."""
    table_key = table.vid * size + table.mid
    query_key = query.vid * size + query.mid
    if np.array_equal(table_key, query_key):
        return table.value
    if not len(table_key):
        return np.zeros(len(query_key), np.int64)
    at = np.minimum(np.searchsorted(table_key, query_key), len(table_key) - 1)
    return np.where(table_key[at] == query_key, table.value[at], 0)


# ---------------------------------------------------------------- §2.0 inputs, per epoch and per neuron

def epoch_parameters(epochs: pl.DataFrame) -> pl.DataFrame:
    """One row per epoch (`eid`): hyperparameters as I32F32 bits and integers (§2, §3, §7)."""
    steep = pl.col("alpha_sigmoid_steepness").cast(pl.Int64)
    return epochs.select(
        "eid",
        pl.col("block").cast(pl.Int64).alias("current_block"),
        pl.col("owner_uid").cast(pl.Int64),
        # §2.1: cutoff = max(1, ⌊ActivityCutoffFactorMilli·T/1000⌋) blocks.
        (pl.col("activity_cutoff_factor_milli").cast(pl.Int64) * pl.col("tempo").cast(pl.Int64) // 1000)
        .clip(lower_bound=1).alias("activity_cutoff"),
        # §2.2: tw = TaoWeight/(2^64−1) in U96F32 (u64::MAX gives exactly 1.0).
        ((pl.col("tao_weight").cast(pl.Int128) * ONE) // ((1 << 64) - 1)).cast(pl.Int64).alias("tao_weight_bits"),
        pl.col("stake_threshold").cast(pl.Int128).alias("stake_threshold_rao"),
        pl.col("max_allowed_validators").cast(pl.Int64),
        # §2.6, §2.8, §3: u16 ⊘ 65535.
        u16_proportion_bits("kappa").alias("kappa_bits"),
        u16_proportion_bits("bonds_penalty").alias("bonds_penalty_bits"),
        u16_proportion_bits("alpha_low").alias("alpha_low_bits"),
        u16_proportion_bits("alpha_high").alias("alpha_high_bits"),
        # §2.9.3: ρ = BondsMovingAverage/10^6 in I64F64, truncated to I32F32; α_b = 1 − ρ.
        (ONE - pl.col("bonds_moving_avg").cast(pl.Int64) * ONE // 1_000_000).alias("ema_alpha_bits"),
        # §3: k = steepness ⊘ (−100), a quotient truncated toward zero.
        pl.when(steep >= 0).then(-(steep * ONE // 100)).otherwise((-steep) * ONE // 100).alias("steepness_bits"),
        # §2.8: t* = LMS + 1 if LMS > 0, else max(b − T, 0).
        pl.when(pl.col("last_mechanism_step_block") > 0)
        .then(pl.col("last_mechanism_step_block").cast(pl.Int64) + 1)
        .otherwise((pl.col("block").cast(pl.Int64) - pl.col("tempo").cast(pl.Int64)).clip(lower_bound=0))
        .alias("last_tempo"),
        "yuma3_enabled",
        "liquid_alpha_enabled",
        "commit_reveal_enabled",
        liquid_alpha_reads_previous().alias("liquid_reads_previous"),
        (pl.col("liquid_alpha_consensus_mode") == CONSENSUS_MODES.index("max")).alias("liquid_reads_max"),
        pl.col("emission").cast(pl.Int64).alias("emission_rao"),
    )


def liquid_alpha_reads_previous() -> pl.Expr:
    """`compute_consensus_for_liquid_alpha`'s switch: Previous, or Auto with BondsPenalty exactly 65535."""
    mode = pl.col("liquid_alpha_consensus_mode")
    return ((mode == CONSENSUS_MODES.index("previous"))
            | ((mode == CONSENSUS_MODES.index("auto")) & (pl.col("bonds_penalty") == U16_MAX)))


def neuron_frame(neurons: pl.DataFrame, params: pl.DataFrame) -> pl.LazyFrame:
    """One row per (epoch, uid) in `nid` order, with its epoch's parameters."""
    nr = neurons.lazy().join(params.lazy(), on="eid", how="left", maintain_order="left")
    stored_previous = pl.col("previous_consensus").is_not_null().any().over("eid")
    return nr.with_columns(
        pl.col("uid").cast(pl.Int64),
        pl.col("last_update").cast(pl.Int64),
        pl.col("block_at_registration").cast(pl.Int64),
        is_owner=(pl.col("uid").cast(pl.Int64) == pl.col("owner_uid")).fill_null(False),
        # §2.5.5: c_i where the mask applies, else "never" (no entry has R_j above it).
        commit_block=pl.when(pl.col("commit_reveal_enabled"))
        .then(pl.col("commit_block").cast(pl.Int64)).fill_null(MAX_BLOCK),
        # The stored previous consensus as I32F32 (0 past the stored vector's end), and which vector
        # liquid alpha reads: LIQUID_CURRENT when nothing is stored (the chain falls back to C).
        previous_consensus_bits=u16_proportion_bits("previous_consensus").fill_null(0),
        liquid_consensus_source=pl.when(~stored_previous).then(LIQUID_CURRENT)
        .when(pl.col("liquid_reads_max")).then(LIQUID_MAX)
        .when(pl.col("liquid_reads_previous")).then(LIQUID_PREVIOUS)
        .otherwise(LIQUID_CURRENT).cast(pl.Int8),
    )


# `liquid_consensus_source`: the consensus vector liquid alpha reads for a neuron's epoch.
LIQUID_CURRENT, LIQUID_PREVIOUS, LIQUID_MAX = 0, 1, 2
# A block no registration reaches: the commit-reveal mask's "no unexpired commit".
MAX_BLOCK = (1 << 63) - 1


# ---------------------------------------------------------------- §2.1 – §2.4 per-neuron vectors

def activity(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.1: inactive_i ⇔ LU_i + cutoff < b (strict); Active = ¬inactive."""
    return nr.with_columns(
        active=~(pl.col("last_update") + pl.col("activity_cutoff") < pl.col("current_block")))


def stake(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.2: combined stake U = Â·2^32 + Θ·tw bits (exact, Int128); threshold ⌊T⌋ < StakeThreshold → 0
    except for the owner; s = ⌊U·2^32/ΣU⌋ (I64F64 normalisation truncated to I32F32), or 0 if ΣU = 0.
    StakeWeight = floor(s·65535)."""
    combined = (pl.col("alpha_stake").cast(pl.Int128) * ONE
                + pl.col("tao_stake").cast(pl.Int128) * pl.col("tao_weight_bits").cast(pl.Int128))
    nr = nr.with_columns(combined_stake=combined).with_columns(
        combined_stake=pl.when((pl.col("combined_stake") // ONE < pl.col("stake_threshold_rao"))
                               & ~pl.col("is_owner")).then(pl.lit(0, pl.Int128))
        .otherwise(pl.col("combined_stake")))
    total = pl.col("combined_stake").sum().over("eid")
    return nr.with_columns(
        stake_bits=pl.when(total > 0).then(pl.col("combined_stake") * ONE // total).otherwise(0).cast(pl.Int64),
    ).with_columns(stake_weight=to_u16("stake_bits"))


def validator_permits(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.3: this epoch masks with the stored permit P' (owner forced on); the new permits NP are the
    top-K nonzero stakes: stable ascending sort (ties in uid order), the first n−K lose; owner forced."""
    position = pl.col("stake_bits").rank("ordinal").over("eid").cast(pl.Int64) - 1
    return nr.with_columns(
        permit_mask=pl.col("validator_permit") | pl.col("is_owner"),
        new_permit=((pl.col("stake_bits") != 0) & (position >= pl.col("n") - pl.col("max_allowed_validators")))
        | pl.col("is_owner"),
    )


def active_stake(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.4: a_i = s_i if active and permitted (P'), else 0; then a ⊘ Σa (skipped if Σa = 0)."""
    nr = nr.with_columns(
        active_stake_bits=pl.when(pl.col("active") & pl.col("permit_mask")).then(pl.col("stake_bits"))
        .otherwise(0))
    return nr.with_columns(
        active_stake_bits=fx_normalize("active_stake_bits", pl.col("active_stake_bits").sum().over("eid")))


def median_stake(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.6: the median's stake σ = a ⊘ Σa over V = {a > 0} (re-normalised once more), and S = Σσ."""
    return nr.with_columns(
        median_stake_bits=fx_normalize("active_stake_bits", pl.col("active_stake_bits").sum().over("eid"))
    ).with_columns(median_total_bits=pl.col("median_stake_bits").sum().over("eid"))


# ---------------------------------------------------------------- §2.5 weights

def normalized_weights(weights: Edges, nr: ChunkNeurons) -> Edges:
    """§2.5: raw u16 rows, masked (rows of validators without P'; the diagonal except (o, o); outdated
    entries LU_i ≤ R_j; with commit-reveal, entries c_i < R_j of a validator whose earliest unexpired
    commit c_i predates j's registration), then row-normalised ⌊v·2^32/Σv⌋. An all-zero row keeps its
    explicit zeros."""
    vid, mid = weights.vid, weights.mid
    registered = nr["block_at_registration"][mid]
    keep = (
        nr["permit_mask"][vid]
        & ((vid != mid) | nr["is_owner"][vid])
        & (nr["last_update"][vid] > registered)
        & (nr["commit_block"][vid] >= registered)
    )
    w = weights.select(keep)
    row_sum = _sum_by_sorted(w.vid, w.value, nr.height)
    return w.with_value(np_int_normalize(w.value, row_sum[w.vid]))


# ---------------------------------------------------------------- §2.6 consensus

def consensus(w: Edges, nr: ChunkNeurons) -> np.ndarray:
    """§2.6: C_j = stake-weighted median of column j over the validators V with a_i > 0, with the
    active stake re-normalised σ = a ⊘ Σa, S = Σσ and κ = Kappa ⊘ 65535 (C bits per neuron j)."""
    sigma = nr["median_stake_bits"][w.vid]
    in_v = sigma > 0
    columns = w.select(in_v)
    offset = nr["offset"]
    c = median_by_group_of_members(
        columns.mid, columns.vid - offset[columns.vid], columns.value, nr["median_stake_bits"],
        offset, nr["median_total_bits"], nr["kappa_bits"])  # S and κ of the miner's epoch
    consensus_bits = np.zeros(nr.height, dtype=np.int64)
    consensus_bits[: len(c)] = c
    return consensus_bits


def liquid_alpha_consensus(consensus_bits: np.ndarray, nr: ChunkNeurons) -> np.ndarray:
    """The consensus vector liquid alpha's sigmoid reads (`compute_consensus_for_liquid_alpha`): C itself,
    the stored previous consensus P (u16 ⊘ 65535, 0 past its end), or max(C, P), per the epoch's mode.
    Only the sigmoid reads it: the liquid-alpha gate, clipping, trust, W^B and dividends keep C."""
    source = nr["liquid_consensus_source"]
    if not source.any():
        return consensus_bits
    previous = nr["previous_consensus_bits"]
    return np.where(source == LIQUID_PREVIOUS, previous,
                    np.where(source == LIQUID_MAX, np.maximum(consensus_bits, previous), consensus_bits))


# ---------------------------------------------------------------- §2.7 clipping, trust, incentive

class Clipped(NamedTuple):
    """W̄ aligned with W's entries: `value` = min(w, C_j), `kept` false where the entry is removed."""

    value: np.ndarray
    kept: np.ndarray


def clipped_weights(w: Edges, nr: ChunkNeurons) -> Clipped:
    """§2.7: w̄ = min(w, C_j); an entry with w > C_j = 0 is removed, all others are kept (zeros too)."""
    c = nr["consensus_bits"][w.mid]
    return Clipped(np.minimum(w.value, c), ~((c == 0) & (w.value > 0)))


def validator_trust_and_incentive(w: Edges, clipped: Clipped, nr: ChunkNeurons
                                  ) -> tuple[np.ndarray, np.ndarray]:
    """§2.7: VT_i = Σ_j w̄_ij; rank r_j = Σ_i a_i ⊗ w̄_ij; incentive I = r ⊘ Σr (bits per neuron)."""
    clipped = w.with_value(clipped.value).select(clipped.kept)
    a = nr["active_stake_bits"][clipped.vid]
    trust = _sum_by_sorted(clipped.vid, clipped.value, nr.height)
    rank = _sum_by(clipped.mid, np_fx_mul(a, clipped.value), nr.height)
    return trust, np_fx_normalize(rank, nr.epoch_sum(rank))


# ---------------------------------------------------------------- §2.8 bond weights, bond masking

def bond_weights(w: Edges, clipped: Clipped, nr: ChunkNeurons) -> Edges:
    """§2.8: W^B = W if β = 0; W̄ if β = 1; else w ⊕ β ⊗ (w̄ − w) over W's entries, keeping > 0
    (a removed clipped entry counts as w̄ = 0)."""
    beta = nr["bonds_penalty_bits"][w.vid]
    clipped_or_zero = np.where(clipped.kept, clipped.value, 0)
    interpolated = w.value + np_fx_mul(clipped_or_zero - w.value, beta)
    value = np.where(beta == 0, w.value, np.where(beta == ONE, clipped.value, interpolated))
    keep = (beta == 0) | ((beta == ONE) & clipped.kept) | ((beta != 0) & (beta != ONE) & (interpolated > 0))
    return w.with_value(value).select(keep)


def masked_old_bonds(bonds: Edges, nr: ChunkNeurons) -> Edges:
    """§2.8: the stored u16 bonds without entries whose miner registered at or after t* (t* ≤ R_j:
    the uid was re-registered since the last successful epoch)."""
    keep = nr["last_tempo"][bonds.vid] > nr["block_at_registration"][bonds.mid]
    return bonds.select(keep)


# ---------------------------------------------------------------- §2.9 classic bonds

def classic_bonds_and_dividends(wb: Edges, old: Edges, nr: ChunkNeurons) -> tuple[Edges, np.ndarray]:
    """§2.9 (Yuma3 off): B = colnorm(raw u16 bonds); ΔB = colnorm(W^B ∘ a); E = α_b ⊗ ΔB ⊕ (1 − α_b) ⊗ B
    over the union, keeping > 0; E ← colnorm(E); d_i = Σ_j I_j ⊗ E_ij. Stored: E ⊘ max_i E (column
    max-upscale), floor(·65535). Returns (stored u16 bond edges, d per nid)."""
    size = nr.height
    old = old.with_value(np_int_normalize(old.value, _sum_by(old.mid, old.value, size)[old.mid]))
    delta = np_fx_mul(wb.value, nr["active_stake_bits"][wb.vid])
    delta = wb.with_value(np_fx_normalize(delta, _sum_by(wb.mid, delta, size)[wb.mid]))
    ema, delta_at, old_at = _union(delta, old, size)
    alpha = nr["ema_alpha_bits"][ema.vid]
    ema = ema.with_value(np_fx_mul(delta_at, alpha) + np_fx_mul(old_at, ONE - alpha))
    ema = ema.select(ema.value > 0)
    ema = ema.with_value(np_fx_div(ema.value, _sum_by(ema.mid, ema.value, size)[ema.mid]))
    d = _sum_by_sorted(ema.vid, np_fx_mul(nr["incentive_bits"][ema.mid], ema.value), size)
    stored = ema.with_value(np_to_u16(np_fx_div(ema.value, _max_by(ema.mid, ema.value, size)[ema.mid])))
    return stored, d


# ---------------------------------------------------------------- §2.10 Yuma3 bonds, §3 liquid alpha

def yuma3_bonds_and_dividends(wb: Edges, old: Edges, nr: ChunkNeurons) -> tuple[Edges, np.ndarray]:
    """§2.10 (Yuma3 on): B = u16 ⊘ 65535 (absolute). With liquid alpha (and some C_j ≠ 0 in the epoch)
    the per-edge α of §3 gives E = min(1, (1 − α) ⊗ B ⊕ max(0, α ⊗ W^B)) over W^B's entries only (a bond
    whose column is absent from the W^B row is dropped); otherwise E = α_b ⊗ W^B ⊕ (1 − α_b) ⊗ B over
    the union. Entries ≤ 0 are dropped. Ê = colnorm(E); d_i = (Σ_j Ê_ij ⊗ I_j) ⊗ a_i.
    Stored: floor(E·65535). Returns (stored u16 bond edges, d per nid)."""
    size = nr.height
    any_consensus = nr.epoch_sum((nr["consensus_bits"] > 0).astype(np.int64)) > 0
    liquid = nr["liquid_alpha_enabled"] & any_consensus
    old = old.with_value(np_u16_proportion_bits(old.value))

    # Liquid alpha (§3): α per W^B entry, B looked up per entry (0 if absent).
    wl, ol = wb.select(liquid[wb.vid]), old.select(liquid[old.vid])
    b = _lookup(ol, wl, size)
    alpha = np_liquid_alpha(
        wl.value, b, liquid_alpha_consensus(nr["consensus_bits"], nr)[wl.mid], nr["steepness_bits"][wl.vid],
        nr["alpha_low_bits"][wl.vid], nr["alpha_high_bits"][wl.vid])
    liquid_ema = wl.with_value(np.minimum(
        np_fx_mul(b, ONE - alpha) + np.maximum(np_fx_mul(alpha, wl.value), 0), ONE))

    # Fixed α_b: EMA over the union of W^B and B.
    fixed_ema, w_at, b_at = _union(wb.select(~liquid[wb.vid]), old.select(~liquid[old.vid]), size)
    alpha_b = nr["ema_alpha_bits"][fixed_ema.vid]
    fixed_ema = fixed_ema.with_value(np_fx_mul(w_at, alpha_b) + np_fx_mul(b_at, ONE - alpha_b))

    ema = Edges(*(np.concatenate([x, y]) for x, y in zip(liquid_ema, fixed_ema, strict=True)))
    ema = ema.select(ema.value > 0)
    normalized = np_fx_div(ema.value, _sum_by(ema.mid, ema.value, size)[ema.mid])
    bond_value = _sum_by(ema.vid, np_fx_mul(normalized, nr["incentive_bits"][ema.mid]), size)
    d = np_fx_mul(bond_value, nr["active_stake_bits"])
    return ema.with_value(np_to_u16(ema.value)), d


# ---------------------------------------------------------------- dividends, §2.11 emission

def dividends(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.9.5 / §2.10.4: D = d ⊘ Σd per epoch (each epoch's d comes from exactly one bond model)."""
    return nr.with_columns(
        dividend_bits=fx_normalize("raw_dividend_bits", pl.col("raw_dividend_bits").sum().over("eid")))


def emission(nr: pl.LazyFrame) -> pl.LazyFrame:
    """§2.11: c = I ⊕ D. If Σc ≠ 0: server σS = I ⊘ Σc, validator σV = D ⊘ Σc, combined σC = c ⊘ Σc.
    Else (emergency) σS = I, σV = σC = a if Σa ≠ 0, else s. Rao: ⌊σ·E⌋ each."""
    combined = pl.col("incentive_bits") + pl.col("dividend_bits")
    total = combined.sum().over("eid")
    active_total = pl.col("active_stake_bits").sum().over("eid")
    fallback = pl.when(active_total != 0).then(pl.col("active_stake_bits")).otherwise(pl.col("stake_bits"))
    nr = nr.with_columns(
        server_share_bits=pl.when(total != 0).then(fx_div("incentive_bits", total))
        .otherwise(pl.col("incentive_bits")),
        validator_share_bits=pl.when(total != 0).then(fx_div("dividend_bits", total)).otherwise(fallback),
        combined_share_bits=pl.when(total != 0).then(fx_div(combined, total)).otherwise(fallback),
    )
    return nr.with_columns(
        server_emission=rao_share("server_share_bits", "emission_rao"),
        validator_emission=rao_share("validator_share_bits", "emission_rao"),
        emission=rao_share("combined_share_bits", "emission_rao"),
    )


# ---------------------------------------------------------------- §2.12 outputs

def neuron_outputs(nr: pl.LazyFrame) -> pl.DataFrame:
    """EPOCH_NEURONS_OUT rows, sorted by (netuid, mechid, block, uid) (the `nid` order)."""
    schema = EPOCH_NEURONS_OUT.polars_schema()
    out = nr.select(*KEY, "uid", "stake_weight", "active", pl.col("new_permit").alias("validator_permit"),
                    consensus=to_u16("consensus_bits"), incentive=to_u16("incentive_bits"),
                    dividends=to_u16("dividend_bits"), validator_trust=to_u16("validator_trust_bits"),
                    server_emission="server_emission", validator_emission="validator_emission",
                    emission="emission")
    return out.select([pl.col(c).cast(t) for c, t in schema.items()]).collect()


def bond_outputs(parts: list[Edges], nr: ChunkNeurons, keys: pl.DataFrame, first_nid: int) -> pl.DataFrame:
    """§2.12: rows of uids with a new permit, nonzero u16 entries, sorted by key, validator, miner
    (the (vid, mid) order, since nid follows the key order). `keys`: the batch's key and uid per nid."""
    stored = Edges(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))
    stored = stored.select(nr["new_permit"][stored.vid] & (stored.value > 0))
    order = np.argsort(stored.vid * nr.height + stored.mid, kind="stable")
    vid, mid = stored.vid[order] + first_nid, stored.mid[order] + first_nid
    out = keys[vid].select(*KEY, validator_uid="uid").with_columns(
        miner_uid=keys.get_column("uid").gather(mid), bond=pl.Series(stored.value[order]))
    schema = EPOCH_BONDS_OUT.polars_schema()
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])


# ---------------------------------------------------------------- the dense layout of a regular chunk

# A chunk whose epochs all have the same n, and whose weight edges fill at least this share of the grid
# (epochs × rows used × columns used), runs on dense [epoch, validator row, miner column] arrays: gathers,
# group sums, merges and the median's sort become broadcasts, axis sums and a sort along one axis.
DENSE_MIN_FILL = 0.5


class Grid(NamedTuple):
    """The dense layout of a chunk: E epochs of n uids each; `rows`/`cols` the uids that have any weight
    or bond edge as validator/miner. Per-uid columns become [E, rows, 1] (`by_row`) or [E, 1, cols]
    (`by_col`)."""

    n_epochs: int
    n: int
    rows: np.ndarray
    cols: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.n_epochs, len(self.rows), len(self.cols)

    def per_epoch(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.n_epochs, self.n)

    def by_row(self, values: np.ndarray) -> np.ndarray:
        return self.per_epoch(values)[:, self.rows, None]

    def by_col(self, values: np.ndarray) -> np.ndarray:
        return self.per_epoch(values)[:, None, self.cols]

    def scatter(self, edges: Edges) -> tuple[np.ndarray, np.ndarray | None]:
        """(values, present) on the grid, 0 / False where the matrix has no entry (present None: all are)."""
        shape = self.shape
        cells = shape[0] * shape[1] * shape[2]
        if len(edges.vid) == cells:  # sorted, unique keys inside the grid: every cell, in grid order
            return edges.value.reshape(shape), None
        # Cell of each edge from two small tables over the chunk's rows (nid): validator → epoch·rows + row,
        # miner → column; no division per edge.
        row_at = np.zeros((self.n_epochs, self.n), np.int64)
        row_at[:, self.rows] = np.arange(shape[0] * shape[1]).reshape(shape[0], shape[1])
        col_at = np.zeros((self.n_epochs, self.n), np.int64)
        col_at[:, self.cols] = np.arange(shape[2])
        position = row_at.ravel()[edges.vid] * shape[2] + col_at.ravel()[edges.mid]
        values = np.zeros(cells, np.int64)
        values[position] = edges.value
        present = np.zeros(cells, bool)
        present[position] = True
        return values.reshape(shape), present.reshape(shape)


def dense_grid(nr: ChunkNeurons, weights: Edges, bonds: Edges) -> Grid | None:
    """The chunk's grid if its epochs share n and its weights fill at least DENSE_MIN_FILL of it."""
    n_epochs = len(nr.epoch_start)
    n = nr.height // n_epochs
    if n * n_epochs != nr.height or not np.array_equal(nr.epoch_start, np.arange(n_epochs) * n):
        return None
    rows = np.zeros(nr.height, bool)
    cols = np.zeros(nr.height, bool)
    for edges in (weights, bonds):
        rows[edges.vid[np.r_[True, edges.vid[1:] != edges.vid[:-1]]] if len(edges.vid) else []] = True
        cols[edges.mid] = True
    grid = Grid(n_epochs, n, np.flatnonzero(rows.reshape(n_epochs, n).any(axis=0)),
                np.flatnonzero(cols.reshape(n_epochs, n).any(axis=0)))
    cells = n_epochs * len(grid.rows) * len(grid.cols)
    if cells == 0 or len(weights.vid) < DENSE_MIN_FILL * cells:
        return None
    return grid


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
