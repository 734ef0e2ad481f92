"""The Yuma Consensus epoch (on-chain sparse path `epoch_mechanism`) as columnar steps.

Reads top to bottom in the order of ../shared/yuma_spec.md §2: activity, stake, permits, active stake,
weights, consensus, clipping/trust/incentive, bond weights and masking, bonds (classic or Yuma3 with
liquid alpha), dividends, emission. Many epochs run in one batch (`validate.index_batch`): each epoch
has an index `eid`, each neuron a global row `nid` (epochs in key order, uids 0..n−1 inside), and each
edge the global rows of its validator (`vid`) and miner (`mid`), with edges sorted by (vid, mid).

Per-neuron steps (§2.1–§2.4 before the edges; dividends and emission after) run epoch by epoch in
compiled code (`neuron_kernels`, numba) over the batch's flat NumPy columns. Edge steps (§2.5–§2.10) run
over chunks of whole epochs (~0.5M edges each). A chunk of epochs that share n and whose weights are
dense (the usual subnet) runs in the compiled kernel of `epoch_kernels` (`dense_edge_steps`): per epoch,
one pass per step over a [validator, miner] grid scattered straight from the stored edge columns. Any
other chunk (sparse weights, mixed n) runs the functions below on whole Int64 columns (NumPy): per-neuron
values reach edges by gathering on `vid`/`mid`, row and column sums are group sums over them, and two
edge sets are aligned by merging their sorted keys. No Python loop runs over epochs, uids or edges.

The engine is split by role as subtensor's `run_epoch/` is: this module is `epoch_mechanism` (the steps,
in the spec's order, and the batch's orchestration); `epoch_loaders` reads the batch into per-chunk
columns, edge arrays and grids (`weights_bonds_loaders`); `epoch_dense` runs the dense kernel;
`epoch_kernels` and `neuron_kernels` are the compiled steps (the chain's `math/*.rs` helpers at their
top); `epoch_terms` turns the results into the rows the chain stores (`epoch_terms`); `files` writes them.

All epoch quantities are I32F32 bits in int64 (suffix `_bits`), computed with the exact integer helpers
of `fixed.py` (NumPy) or their scalar forms in `epoch_kernels` (compiled), value for value; outputs are u16
and rao exactly as the chain stores them.

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
from tasks.consensus.epoch_dense import dense_edge_steps
from tasks.consensus.epoch_liquid_alpha import LIQUID_CURRENT, LIQUID_MAX, LIQUID_PREVIOUS, liquid_alpha_consensus
from tasks.consensus.epoch_loaders import (
    Chunk,
    ChunkNeurons,
    Edges,
    dense_grid,
    epoch_chunks,
    lookup_edges,
    max_by,
    sum_by,
    sum_by_sorted,
    union_edges,
)
from tasks.consensus.epoch_terms import EdgeResults, EpochOutputs, bond_outputs, neuron_outputs
from tasks.consensus.fixed import (
    ONE,
    np_fx_div,
    np_fx_mul,
    np_fx_normalize,
    np_int_normalize,
    np_liquid_alpha,
    np_to_u16,
    np_u16_proportion_bits,
)
from tasks.consensus.median import median_by_group_of_members
from tasks.consensus.validate import IndexedBatch, index_batch

KEY = list(EPOCH_KEY)


def run_epochs(epochs: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
               bonds: pl.DataFrame, *, threads: int | None = None) -> EpochOutputs:
    """Run every epoch of the batch (DESIGN.md §5 file contract; spec §2, §3).

    Inputs have the EPOCHS, EPOCH_NEURONS, EPOCH_WEIGHTS and EPOCH_BONDS schemas and are validated
    first (ConsensusInputError). Epochs are independent: each uses only its own rows. The per-neuron
    steps run epoch by epoch in compiled code over the batch's flat columns; the edge steps run over
    chunks of whole epochs, on `threads` threads (default EDGE_STEP_THREADS; the results do not depend on it).
    """
    from tasks.consensus import neuron_kernels as steps  # numba: loaded on first use

    batch = index_batch(epochs, neurons, weights, bonds)
    if batch.epochs.height == 0:
        return EpochOutputs(EPOCH_NEURONS_OUT.empty(), EPOCH_BONDS_OUT.empty())
    params = epoch_parameters(batch.epochs)
    nr = neuron_inputs(batch, params)
    offset, count = nr.pop("epoch_offset"), nr.pop("epoch_count")
    for name, dtype in (("active", np.bool_), ("is_owner", np.bool_), ("stake_bits", np.int64),
                        ("stake_weight", np.int64), ("permit_mask", np.bool_), ("new_permit", np.bool_),
                        ("active_stake_bits", np.int64), ("median_stake_bits", np.int64),
                        ("median_total_bits", np.int64)):
        nr[name] = np.zeros(len(nr["uid"]), dtype)
    # §2.1 activity, §2.2 stake, §2.3 validator permits, §2.4 active stake, §2.6 the median's stake.
    steps.neuron_steps_before_edges(
        offset, count, params["current_block"], params["activity_cutoff"], params["tao_weight_bits"],
        params["stake_threshold_rao"], params["max_allowed_validators"], params["owner_uid"],
        nr["last_update"], nr["alpha_stake"], nr["tao_stake"], nr["validator_permit"],
        nr["active"], nr["is_owner"], nr["stake_bits"], nr["stake_weight"], nr["permit_mask"], nr["new_permit"],
        nr["active_stake_bits"], nr["median_stake_bits"], nr["median_total_bits"])

    # §2.5–§2.10 over chunks of whole epochs.
    keys = batch.neurons.select(*KEY, "uid")
    chunks = run_chunks(batch, nr, keys, threads or EDGE_STEP_THREADS)
    for name in EdgeResults.NEURON_COLUMNS:
        nr[name] = np.concatenate([c.neurons[name] for c in chunks])

    # Dividends, §2.11 emission.
    for name in ("dividend_bits", "server_emission", "validator_emission", "emission"):
        nr[name] = np.zeros(len(nr["uid"]), np.int64)
    steps.neuron_steps_after_edges(
        offset, count, params["emission_rao"], nr["incentive_bits"], nr["raw_dividend_bits"],
        nr["active_stake_bits"], nr["stake_bits"], nr["dividend_bits"], nr["server_emission"],
        nr["validator_emission"], nr["emission"])
    return EpochOutputs(neurons=neuron_outputs(keys, nr), bonds=pl.concat([c.bonds for c in chunks]))


# Chunks are independent: with more than one thread they run concurrently (the compiled kernels and
# NumPy's array loops release the GIL). One by default: a library call does not take every core unasked
# (a flow may already run chunks of epochs side by side); `yumaflow consensus --threads` sets it.
EDGE_STEP_THREADS = 1


def run_chunks(batch: IndexedBatch, nr: dict[str, np.ndarray], keys: pl.DataFrame, threads: int = 1
               ) -> list[EdgeResults]:
    """`edge_steps` of every chunk, in order; at most 2·threads chunks are built ahead (bounded memory)."""
    chunks = epoch_chunks(batch, nr)
    if threads <= 1:
        return [edge_steps(chunk, keys) for chunk in chunks]
    results, pending = [], deque()
    with ThreadPoolExecutor(threads) as pool:
        for chunk in chunks:
            pending.append(pool.submit(edge_steps, chunk, keys))
            if len(pending) >= 2 * threads:
                results.append(pending.popleft().result())
        results.extend(future.result() for future in pending)
    return results


def edge_steps(chunk: Chunk, keys: pl.DataFrame) -> EdgeResults:
    """§2.5–§2.10 over one chunk: weights, consensus, clipping, trust, incentive, bonds, dividends.
    A chunk of same-size epochs with dense weights runs on the dense grid instead (`dense_edge_steps`)."""
    grid = dense_grid(chunk)
    if grid is not None:
        return dense_edge_steps(grid, chunk)
    nr, weights, bonds, first_nid = chunk.nr, chunk.weights, chunk.bonds, chunk.first_nid
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


# ---------------------------------------------------------------- §2.0 inputs, per epoch and per neuron

def epoch_parameters(epochs: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per epoch (`eid` order): hyperparameters as I32F32 bits and integers (§2, §3, §7), NumPy columns."""
    def column(name: str, dtype=np.int64) -> np.ndarray:
        return epochs.get_column(name).to_numpy().astype(dtype)

    block, tempo = column("block"), column("tempo")
    steepness = column("alpha_sigmoid_steepness")
    owner, has_owner = nullable_u16(epochs.get_column("owner_uid"))
    tao_weight = column("tao_weight", np.uint64)
    last_step = column("last_mechanism_step_block")
    mode, bonds_penalty = column("liquid_alpha_consensus_mode"), column("bonds_penalty")
    return {
        "current_block": block,
        "owner_uid": np.where(has_owner, owner, -1),  # −1: no owner
        # §2.1: cutoff = max(1, ⌊ActivityCutoffFactorMilli·T/1000⌋) blocks.
        "activity_cutoff": np.maximum(column("activity_cutoff_factor_milli") * tempo // 1000, 1),
        # §2.2: tw = ⌊TaoWeight·2^32/(2^64−1)⌋ (U96F32). With TaoWeight = h·2^32 + l that is h, except that
        # u64::MAX gives exactly 1.0: l + TaoWeight/(2^64−1) reaches 2^32 only there.
        "tao_weight_bits": (tao_weight >> np.uint64(32)).astype(np.int64)
        + (tao_weight == np.uint64((1 << 64) - 1)),
        "stake_threshold_rao": column("stake_threshold", np.uint64),
        "max_allowed_validators": column("max_allowed_validators"),
        # §2.6, §2.8, §3: u16 ⊘ 65535.
        "kappa_bits": np_u16_proportion_bits(column("kappa")),
        "bonds_penalty_bits": np_u16_proportion_bits(bonds_penalty),
        "alpha_low_bits": np_u16_proportion_bits(column("alpha_low")),
        "alpha_high_bits": np_u16_proportion_bits(column("alpha_high")),
        # §2.9.3: ρ = BondsMovingAverage/10^6 in I64F64, truncated to I32F32; α_b = 1 − ρ.
        "ema_alpha_bits": ONE - column("bonds_moving_avg") * ONE // 1_000_000,
        # §3: k = steepness ⊘ (−100), a quotient truncated toward zero.
        "steepness_bits": np.where(steepness >= 0, -(steepness * ONE // 100), (-steepness) * ONE // 100),
        # §2.8: t* = LMS + 1 if LMS > 0, else max(b − T, 0).
        "last_tempo": np.where(last_step > 0, last_step + 1, np.maximum(block - tempo, 0)),
        "yuma3_enabled": column("yuma3_enabled", np.bool_),
        "liquid_alpha_enabled": column("liquid_alpha_enabled", np.bool_),
        "commit_reveal_enabled": column("commit_reveal_enabled", np.bool_),
        # `compute_consensus_for_liquid_alpha`'s switch: Previous, or Auto with BondsPenalty exactly 65535.
        "liquid_reads_previous": (mode == CONSENSUS_MODES.index("previous"))
        | ((mode == CONSENSUS_MODES.index("auto")) & (bonds_penalty == U16_MAX)),
        "liquid_reads_max": mode == CONSENSUS_MODES.index("max"),
        "emission_rao": column("emission"),
    }


# Per-epoch parameters the edge steps read per neuron.
_EDGE_STEP_PARAMETERS = ("kappa_bits", "bonds_penalty_bits", "last_tempo", "yuma3_enabled", "liquid_alpha_enabled",
                         "ema_alpha_bits", "steepness_bits", "alpha_low_bits", "alpha_high_bits")


def neuron_inputs(batch: IndexedBatch, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per neuron (`nid` order) the columns the steps read, with each epoch's parameters repeated over its
    uids, and `epoch_offset`/`epoch_count` (each epoch's first nid and n)."""
    neurons = batch.neurons
    column = neurons.get_column
    count = np.bincount(column("eid").to_numpy(), minlength=batch.epochs.height).astype(np.int64)
    offset = np.r_[0, np.cumsum(count)[:-1]].astype(np.int64)
    per_neuron = {name: np.repeat(params[name], count) for name in _EDGE_STEP_PARAMETERS}
    # §2.5.5: c_i where the commit-reveal mask applies, else "never" (no entry has R_j above it).
    commit = column("commit_block").fill_null(MAX_BLOCK).to_numpy().astype(np.int64)
    commit[~np.repeat(params["commit_reveal_enabled"], count)] = MAX_BLOCK
    # The stored previous consensus as I32F32 (0 past the stored vector's end), and which vector liquid alpha
    # reads: LIQUID_CURRENT when the epoch stores none (the chain falls back to C).
    previous, stored = nullable_u16(column("previous_consensus"))
    any_stored = np.repeat(np.logical_or.reduceat(stored, offset), count) if len(stored) else stored
    source = np.where(np.repeat(params["liquid_reads_max"], count), LIQUID_MAX,
                      np.where(np.repeat(params["liquid_reads_previous"], count), LIQUID_PREVIOUS, LIQUID_CURRENT))
    return {
        **per_neuron,
        "uid": column("uid").to_numpy().astype(np.int64),
        "offset": column("offset").to_numpy(),
        "last_update": column("last_update").to_numpy().astype(np.int64),
        "block_at_registration": column("block_at_registration").to_numpy().astype(np.int64),
        "alpha_stake": column("alpha_stake").to_numpy().astype(np.int64),  # < 2^63: the epoch's total is
        "tao_stake": column("tao_stake").to_numpy().astype(np.int64),
        "validator_permit": column("validator_permit").to_numpy(),
        "commit_block": commit,
        "previous_consensus_bits": np_u16_proportion_bits(previous),
        "liquid_consensus_source": np.where(any_stored, source, LIQUID_CURRENT).astype(np.int8),
        "epoch_offset": offset,
        "epoch_count": count,
    }


def nullable_u16(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A nullable u16 column as (int64 values, 0 where null; present) without a Polars pass: NumPy reads it
    as u16, or as float64 with NaN where null (exact for u16)."""
    values = series.to_numpy()
    present = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(len(values), bool)
    return np.where(present, values, 0).astype(np.int64), present


# A block no registration reaches: the commit-reveal mask's "no unexpired commit".
MAX_BLOCK = (1 << 63) - 1


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
    row_sum = sum_by_sorted(w.vid, w.value, nr.height)
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
    trust = sum_by_sorted(clipped.vid, clipped.value, nr.height)
    rank = sum_by(clipped.mid, np_fx_mul(a, clipped.value), nr.height)
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
    old = old.with_value(np_int_normalize(old.value, sum_by(old.mid, old.value, size)[old.mid]))
    delta = np_fx_mul(wb.value, nr["active_stake_bits"][wb.vid])
    delta = wb.with_value(np_fx_normalize(delta, sum_by(wb.mid, delta, size)[wb.mid]))
    ema, delta_at, old_at = union_edges(delta, old, size)
    alpha = nr["ema_alpha_bits"][ema.vid]
    ema = ema.with_value(np_fx_mul(delta_at, alpha) + np_fx_mul(old_at, ONE - alpha))
    ema = ema.select(ema.value > 0)
    ema = ema.with_value(np_fx_div(ema.value, sum_by(ema.mid, ema.value, size)[ema.mid]))
    d = sum_by_sorted(ema.vid, np_fx_mul(nr["incentive_bits"][ema.mid], ema.value), size)
    stored = ema.with_value(np_to_u16(np_fx_div(ema.value, max_by(ema.mid, ema.value, size)[ema.mid])))
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
    b = lookup_edges(ol, wl, size)
    alpha = np_liquid_alpha(
        wl.value, b, liquid_alpha_consensus(nr["consensus_bits"], nr)[wl.mid], nr["steepness_bits"][wl.vid],
        nr["alpha_low_bits"][wl.vid], nr["alpha_high_bits"][wl.vid])
    liquid_ema = wl.with_value(np.minimum(
        np_fx_mul(b, ONE - alpha) + np.maximum(np_fx_mul(alpha, wl.value), 0), ONE))

    # Fixed α_b: EMA over the union of W^B and B.
    fixed_ema, w_at, b_at = union_edges(wb.select(~liquid[wb.vid]), old.select(~liquid[old.vid]), size)
    alpha_b = nr["ema_alpha_bits"][fixed_ema.vid]
    fixed_ema = fixed_ema.with_value(np_fx_mul(w_at, alpha_b) + np_fx_mul(b_at, ONE - alpha_b))

    ema = Edges(*(np.concatenate([x, y]) for x, y in zip(liquid_ema, fixed_ema, strict=True)))
    ema = ema.select(ema.value > 0)
    normalized = np_fx_div(ema.value, sum_by(ema.mid, ema.value, size)[ema.mid])
    bond_value = sum_by(ema.vid, np_fx_mul(normalized, nr["incentive_bits"][ema.mid]), size)
    d = np_fx_mul(bond_value, nr["active_stake_bits"])
    return ema.with_value(np_to_u16(ema.value)), d
