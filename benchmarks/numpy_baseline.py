"""A plain NumPy float64 Yuma epoch: the baseline the exact engine is measured against.

This is the code a careful analyst writes from yuma_spec.md §9 plus the masks of §2: dense n×n
matrices, one epoch at a time, float64 throughout, u16 and rao taken with floor at the end. It is
*not* bit exact, on purpose (spec §0): products are not truncated to 32 fractional bits, κ is
compared in float, liquid alpha uses `np.exp`, and the dense path does not copy the sparse path's
quirks (§4: a zero-consensus column is set to 0 instead of removed, a liquid-alpha bond whose
weight entry is absent decays instead of being dropped). `benchmarks/consensus.py` reports how far
it lands from the exact engine.

File contract (DESIGN.md §5) in and out, so it can be timed file to file:

    python -m benchmarks.numpy_baseline --inputs IN --output OUT
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import polars as pl

from schemas.consensus import EPOCH_BONDS_OUT, EPOCH_KEY, EPOCH_NEURONS_OUT

U16 = 65535.0


def _colnorm(m: np.ndarray) -> np.ndarray:
    s = m.sum(axis=0)
    return np.divide(m, s, out=np.zeros_like(m), where=s > 0)


def _normalise(v: np.ndarray) -> np.ndarray:
    s = v.sum()
    return v / s if s > 0 else v


def weighted_median_columns(stake: np.ndarray, scores: np.ndarray, kappa: float) -> np.ndarray:
    """Per column: the largest score x such that the stake scoring ≥ x is at least κ of the total.

    `stake` (v,) is positive and sums to 1; `scores` (v, n). Sorting, then the cumulative stake
    (spec §2.6 describes the chain's pivot search that finds the same median in exact arithmetic).
    """
    if stake.size == 0:
        return np.zeros(scores.shape[1])
    order = np.argsort(scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    cumulative = np.cumsum(stake[order], axis=0)
    minority = stake.sum() - kappa
    first_above = np.argmax(cumulative > minority, axis=0)
    return sorted_scores[first_above, np.arange(scores.shape[1])]


def run_epoch(p: dict, alpha_stake, tao_stake, last_update, registered, permit_prev, weights_u16, bonds_u16):
    """One epoch on dense arrays (n uids). Returns a dict of per-uid outputs and the new u16 bonds."""
    n = alpha_stake.shape[0]
    block = p["block"]
    tempo = p["tempo"]
    owner = p["owner_uid"]
    uids = np.arange(n)

    # Activity (§2.1).
    cutoff = max(1, p["activity_cutoff_factor_milli"] * tempo // 1000)
    active = ~(last_update.astype(np.float64) + cutoff < block)

    # Stake (§2.2).
    tao_weight = p["tao_weight"] / (2.0**64 - 1)
    stake = alpha_stake.astype(np.float64) + tao_stake.astype(np.float64) * tao_weight
    below = np.floor(stake) < p["stake_threshold"]
    if owner is not None and owner < n:
        below[owner] = False
    stake = np.where(below, 0.0, stake)
    # The chain truncates normalised stake to 32 fractional bits (§0 pitfalls 9-10): a stake under
    # 2^-32 of the total is 0 and gets no permit, and equal truncated stakes tie in the top-k.
    s = np.floor(_normalise(stake) * 2.0**32) / 2.0**32

    # Permits (§2.3): this epoch masks with the stored permit; the new top-k is stored after.
    permit = permit_prev.copy()
    if owner is not None and owner < n:
        permit[owner] = True
    k = p["max_allowed_validators"]
    new_permit = s > 0
    if n >= k:
        order = np.argsort(s, kind="stable")
        new_permit[order[: n - k]] = False
    if owner is not None and owner < n:
        new_permit[owner] = True

    a = _normalise(np.where(active & permit, s, 0.0))

    # Weights (§2.5): drop rows without permit, the diagonal (but the owner's), outdated edges.
    w = weights_u16.astype(np.float64)
    w[~permit, :] = 0.0
    diag = uids != owner if owner is not None else np.ones(n, bool)
    w[uids[diag], uids[diag]] = 0.0
    w[last_update[:, None] <= registered[None, :]] = 0.0
    W = w / np.where(w.sum(axis=1, keepdims=True) > 0, w.sum(axis=1, keepdims=True), 1.0)

    # Consensus (§2.6) over validators with active stake.
    voters = a > 0
    kappa = p["kappa"] / U16
    C = weighted_median_columns(_normalise(a[voters]), W[voters], kappa)

    # Clipping, trust, incentive (§2.7).
    W_clipped = np.minimum(W, C[None, :])
    validator_trust = W_clipped.sum(axis=1)
    I = _normalise(a @ W_clipped)

    # Bond weights and masking (§2.8).
    beta = p["bonds_penalty"] / U16
    W_bond = W + beta * (W_clipped - W)
    lms = p["last_mechanism_step_block"]
    last_tempo = lms + 1 if lms > 0 else max(block - tempo, 0)
    recent = last_tempo <= registered

    if not p["yuma3_enabled"]:
        # Classic (§2.9 / §9).
        B = bonds_u16.astype(np.float64)
        B[:, recent] = 0.0
        B = _colnorm(B)
        delta = _colnorm(W_bond * a[:, None])
        alpha_b = 1.0 - p["bonds_moving_avg"] / 1e6
        E = _colnorm(alpha_b * delta + (1 - alpha_b) * B)
        D = _normalise(E @ I)
        col_max = E.max(axis=0)
        stored = np.divide(E, col_max, out=np.zeros_like(E), where=col_max > 0)
    else:
        # Yuma3 (§2.10), liquid alpha (§3) with float exp.
        B = bonds_u16.astype(np.float64) / U16
        B[:, recent] = 0.0
        if p["liquid_alpha_enabled"] and np.any(C != 0):
            lo, hi = p["alpha_low"] / U16, p["alpha_high"] / U16
            buy = np.clip(W_bond - C[None, :], 0, 1)
            sell = np.clip(B - W_bond, 0, 1)
            delta = np.where(W_bond >= B, buy, sell)
            steep = p["alpha_sigmoid_steepness"] / -100.0
            sig = 1.0 / (1.0 + np.exp(np.clip(steep * (delta - 0.5), -20, 20)))
            alpha = np.clip(lo + sig * (hi - lo), lo, hi)
            E = np.minimum(1.0, (1 - alpha) * B + alpha * W_bond)
        else:
            alpha_b = 1.0 - p["bonds_moving_avg"] / 1e6
            E = alpha_b * W_bond + (1 - alpha_b) * B
        D = _normalise((_colnorm(E) @ I) * a)
        stored = E

    # Emission (§2.11).
    emission = p["emission"]
    total = I.sum() + D.sum()
    if total > 0:
        server, validator, combined = I / total, D / total, (I + D) / total
    else:
        fallback = a if a.sum() > 0 else s
        server, validator, combined = np.zeros(n), fallback, fallback

    def u16(x):
        return np.clip(np.floor(x * U16), 0, 65535).astype(np.uint16)

    new_bonds = u16(stored)
    new_bonds[~new_permit, :] = 0
    return {
        "stake_weight": u16(s),
        "active": active,
        "validator_permit": new_permit,
        "consensus": u16(C),
        "incentive": u16(I),
        "dividends": u16(D),
        "validator_trust": u16(validator_trust),
        "server_emission": np.floor(server * emission).astype(np.uint64),
        "validator_emission": np.floor(validator * emission).astype(np.uint64),
        "emission": np.floor(combined * emission).astype(np.uint64),
    }, new_bonds


def _epoch_index(frame: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    return frame.join(keys, on=list(EPOCH_KEY), how="inner").sort("epoch_idx", maintain_order=True)


def run_batch(
    epochs: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame, bonds: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run every epoch of the file contract's tables, one at a time; return (neurons_out, bonds_out)."""
    epochs = epochs.sort(list(EPOCH_KEY)).with_row_index("epoch_idx")
    keys = epochs.select(*EPOCH_KEY, "epoch_idx")
    nrn = _epoch_index(neurons, keys).sort("epoch_idx", "uid")
    wts = _epoch_index(weights, keys)
    bnd = _epoch_index(bonds, keys)
    n_epochs = epochs.height

    def bounds(frame):
        idx = frame["epoch_idx"].to_numpy()
        return np.searchsorted(idx, np.arange(n_epochs + 1))

    nb, wb, bb = bounds(nrn), bounds(wts), bounds(bnd)
    ncol = {
        c: nrn[c].to_numpy()
        for c in (
            "uid",
            "alpha_stake",
            "tao_stake",
            "last_update",
            "block_at_registration",
            "validator_permit",
        )
    }
    wv, wm, ww = (wts[c].to_numpy() for c in ("validator_uid", "miner_uid", "weight"))
    bv, bm, bw = (bnd[c].to_numpy() for c in ("validator_uid", "miner_uid", "bond"))
    params = epochs.to_dicts()

    out_neurons, out_bonds = [], []
    for e in range(n_epochs):
        p = params[e]
        lo, hi = nb[e], nb[e + 1]
        n = hi - lo
        W = np.zeros((n, n), np.uint16)
        W[wv[wb[e] : wb[e + 1]], wm[wb[e] : wb[e + 1]]] = ww[wb[e] : wb[e + 1]]
        B = np.zeros((n, n), np.uint16)
        B[bv[bb[e] : bb[e + 1]], bm[bb[e] : bb[e + 1]]] = bw[bb[e] : bb[e + 1]]
        result, new_bonds = run_epoch(
            p,
            ncol["alpha_stake"][lo:hi],
            ncol["tao_stake"][lo:hi],
            ncol["last_update"][lo:hi],
            ncol["block_at_registration"][lo:hi],
            ncol["validator_permit"][lo:hi],
            W,
            B,
        )
        result["uid"] = ncol["uid"][lo:hi]
        result["epoch_idx"] = np.full(n, e, np.uint32)
        out_neurons.append(result)
        vi, mi = np.nonzero(new_bonds)
        out_bonds.append(
            {
                "epoch_idx": np.full(vi.size, e, np.uint32),
                "validator_uid": vi.astype(np.uint16),
                "miner_uid": mi.astype(np.uint16),
                "bond": new_bonds[vi, mi],
            }
        )

    def stack(parts):
        return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}

    neurons_out = (
        pl.DataFrame(stack(out_neurons))
        .join(keys.with_columns(pl.col("epoch_idx").cast(pl.UInt32)), on="epoch_idx")
        .select(EPOCH_NEURONS_OUT.columns)
        .cast(EPOCH_NEURONS_OUT.polars_schema())
    )
    bonds_out = (
        pl.DataFrame(stack(out_bonds))
        .join(keys.with_columns(pl.col("epoch_idx").cast(pl.UInt32)), on="epoch_idx")
        .select(EPOCH_BONDS_OUT.columns)
        .cast(EPOCH_BONDS_OUT.polars_schema())
    )
    return neurons_out, bonds_out


def run_files(inputs: Path, output: Path) -> dict:
    """File to file (DESIGN.md §5 layout): read IN/*.parquet, compute, write OUT/*.parquet."""
    t0 = time.perf_counter()
    frames = {
        name: pl.read_parquet(inputs / f"{name}.parquet")
        for name in ("epochs", "neurons", "weights", "bonds")
    }
    t1 = time.perf_counter()
    neurons_out, bonds_out = run_batch(
        frames["epochs"], frames["neurons"], frames["weights"], frames["bonds"]
    )
    t2 = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    neurons_out.write_parquet(output / "neurons.parquet")
    bonds_out.write_parquet(output / "bonds.parquet")
    t3 = time.perf_counter()
    return {"read_s": t1 - t0, "compute_s": t2 - t1, "write_s": t3 - t2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    timing = run_files(args.inputs, args.output)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        " ".join(f"{k}={v:.3f}" for k, v in timing.items()) + f" peak_rss_mb={peak_mb:.0f}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
