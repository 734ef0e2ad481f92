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

The engine is split by role as subtensor's `run_epoch/` is: this module is `epoch_mechanism` (the steps,
in the spec's order, and the batch's orchestration); `epoch_loaders` reads the batch into per-chunk
NumPy columns and edge arrays (`weights_bonds_loaders`); `epoch_dense` is the same steps on a dense grid;
`epoch_terms` turns the results into the rows the chain stores (`epoch_terms`); `files` writes them.

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
    fx_div,
    fx_normalize,
    np_fx_div,
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
from tasks.consensus.validate import IndexedBatch, index_batch

KEY = list(EPOCH_KEY)


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


# Chunks are independent: with more than one thread they run concurrently (NumPy releases the GIL in
# its array loops). One by default: the figures and tests are single-threaded.
EDGE_STEP_THREADS = 1


def run_chunks(batch: IndexedBatch, nr: pl.DataFrame, keys: pl.DataFrame) -> list[EdgeResults]:
    """`edge_steps` of every chunk, in order; at most 2·threads chunks are built ahead (bounded memory)."""
    chunks = epoch_chunks(batch, nr)
    if EDGE_STEP_THREADS <= 1:
        return [edge_steps(chunk, keys) for chunk in chunks]
    results, pending = [], deque()
    with ThreadPoolExecutor(EDGE_STEP_THREADS) as pool:
        for chunk in chunks:
            pending.append(pool.submit(edge_steps, chunk, keys))
            if len(pending) >= 2 * EDGE_STEP_THREADS:
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
