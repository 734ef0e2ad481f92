"""Scores → the u16 weight row a validator sends, exactly as the bittensor SDK computes it.

The pipeline is chain_interface.md §6.1, step by step:

1. `process_weights` (SDK 10.x `utils/weight_utils.py`, exclude_quantile 0): float32 cast, keep the
   non-zero weights; pad with 1e-5 when fewer than `min_allowed_weights` are non-zero; clip with
   `normalize_max_weight` at `max_weight_limit = MaxWeightsLimit / 65535`.
2. `convert_weights_and_uids_for_emit`: max-upscale with Python `round` (ties to even), zeros dropped.
3. uids sorted ascending, each with its weight (the chain keeps submission order, yuma_spec.md §6).

`chain_stored_row` is what the chain then stores: its own re-upscale in I32F32, half away from zero
(yuma_spec.md §6, subtensor `vec_u16_max_upscale_to_u16`).

Scores are refused (`WeightsRefused`) when they are empty, not finite, negative or all zero: the SDK
would turn an all-zero vector into uniform weights, which a validator must never push by accident
(issue 4, "Never push from an empty, NaN … or all-zero score vector").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

U16_MAX = 65535
# normalize_max_weight's epsilon "for numerical stability after normalization"
_SDK_EPSILON = 1e-7
# process_weights pads every uid with this when too few weights are non-zero
_SDK_MIN_PAD = 1e-5
# the chain's re-upscale: above this max it multiplies by the factor 65535/max, else divides last
_CHAIN_FACTOR_BRANCH_MAX = 32768
_I32F32_HALF = 1 << 31


class WeightsRefused(ValueError):
    """Scores that must not become weights; the message names the reason."""


@dataclass(frozen=True)
class WeightRow:
    """The row to send: uids ascending, u16 weights (max 65535, no zeros), and what produced it."""

    uids: list[int]
    weights: list[int]
    num_neurons: int
    min_allowed_weights: int
    max_weight_limit_u16: int


def check_scores(uids, scores) -> tuple[np.ndarray, np.ndarray]:
    """uids (int) and scores (float64) as arrays, or WeightsRefused naming what is wrong."""
    uids = np.asarray(uids)
    scores = np.asarray(scores, dtype=np.float64)
    if uids.ndim != 1 or scores.ndim != 1 or len(uids) != len(scores):
        raise WeightsRefused(f"scores: {len(scores)} scores for {len(uids)} uids (need one score per uid)")
    if len(scores) == 0:
        raise WeightsRefused("scores: empty score vector")
    if len(uids) and (uids.min() < 0 or uids.max() > U16_MAX):
        raise WeightsRefused(f"scores: uid out of the u16 range in {uids.min()}..{uids.max()}")
    if len(np.unique(uids)) != len(uids):
        raise WeightsRefused("scores: duplicate uid")
    bad = ~np.isfinite(scores)
    if bad.any():
        raise WeightsRefused(f"scores: {int(bad.sum())} NaN/inf score(s), e.g. uid {int(uids[bad][0])}")
    if (scores < 0).any():
        raise WeightsRefused(f"scores: negative score at uid {int(uids[scores < 0][0])}")
    if not (scores > 0).any():
        raise WeightsRefused("scores: all scores are zero")
    return uids.astype(np.int64), scores


def normalize_max_weight(x: np.ndarray, limit: float) -> np.ndarray:
    """SDK `normalize_max_weight`: sum 1, no value above `limit`, in x's dtype (chain_interface.md §6.1).

    The per-position estimate `(n − i − 1)·estimation[i]` is computed in x's dtype, as the SDK's
    scalar-by-scalar list does (an exact integer times a float32 rounds once, the same either way).
    """
    weights = x.copy()
    values = np.sort(weights)
    n = x.shape[0]
    if x.sum() == 0 or n * limit <= 1:
        return np.ones_like(x) / n
    estimation = values / values.sum()
    if estimation.max() <= limit:
        return weights / weights.sum()
    cumsum = np.cumsum(estimation, 0)
    estimation_sum = (n - 1 - np.arange(n)).astype(x.dtype) * estimation
    n_values = int((estimation / (estimation_sum + cumsum + _SDK_EPSILON) < limit).sum())
    cutoff_scale = (limit * cumsum[n_values - 1] - _SDK_EPSILON) / (1 - (limit * (n - n_values)))
    cutoff = cutoff_scale * values.sum()
    weights[weights > cutoff] = cutoff
    return weights / weights.sum()


def process_weights(scores: np.ndarray, min_allowed_weights: int, max_weight_limit: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """SDK `process_weights` with exclude_quantile 0 over a dense vector (position = uid 0..n−1).

    Returns (uids, normalised weights). The dtypes follow the SDK: float32 for the clipped row,
    float64 where it builds arrays from `np.ones(n, dtype=int64)` (the uniform and padded branches).
    """
    num_neurons = len(scores)
    weights = scores.astype(np.float32)
    nonzero = np.flatnonzero(weights > 0)
    if len(nonzero) == 0 or num_neurons < min_allowed_weights:
        return np.arange(num_neurons), np.ones(num_neurons, dtype=np.int64) / num_neurons
    if len(nonzero) < min_allowed_weights:
        padded = np.ones(num_neurons, dtype=np.int64) * _SDK_MIN_PAD
        padded[nonzero] += weights[nonzero]
        return np.arange(num_neurons), normalize_max_weight(padded, max_weight_limit)
    # exclude_quantile 0: the 0-quantile is the minimum, so every non-zero weight stays.
    return nonzero, normalize_max_weight(weights[nonzero], max_weight_limit)


def convert_for_emit(uids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SDK `convert_weights_and_uids_for_emit`: w/max·65535 in float64, round half to even, zeros dropped.

    np.rint on float64 is Python's `round` on the same double (both ties-to-even on the exact value).
    """
    w = weights.astype(np.float64)
    if (w < 0).any():
        raise WeightsRefused("weights: negative weight cannot exist on chain")
    if w.sum() == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    u16 = np.rint((w / float(w.max())) * float(U16_MAX)).astype(np.int64)
    keep = u16 != 0
    return uids[keep], u16[keep]


def scores_to_weights(uids, scores, *, num_neurons: int, min_allowed_weights: int,
                      max_weight_limit_u16: int) -> WeightRow:
    """Per-uid scores → the sorted u16 row to send (chain_interface.md §6.1).

    `uids`/`scores`: one score per uid (uids not listed score 0); `num_neurons` is the subnet's
    SubnetworkN; `max_weight_limit_u16` the subnet's MaxWeightsLimit as stored (u16).
    """
    uids, scores = check_scores(uids, scores)
    if uids.max() >= num_neurons:
        raise WeightsRefused(f"scores: uid {int(uids.max())} is not on a subnet of {num_neurons} uids")
    dense = np.zeros(num_neurons, dtype=np.float64)
    dense[uids] = scores
    kept_uids, normalised = process_weights(dense, int(min_allowed_weights), max_weight_limit_u16 / U16_MAX)
    sent_uids, sent = convert_for_emit(kept_uids, normalised)
    order = np.argsort(sent_uids, kind="stable")
    return WeightRow(uids=[int(u) for u in sent_uids[order]], weights=[int(w) for w in sent[order]],
                     num_neurons=num_neurons, min_allowed_weights=int(min_allowed_weights),
                     max_weight_limit_u16=int(max_weight_limit_u16))


def chain_stored_row(weights) -> list[int]:
    """The u16 row the chain stores for `weights` sent (yuma_spec.md §6), in the same order.

    mx = max; if mx > 32768 each value is multiplied by the I32F32 factor 65535 ⊘ mx (truncated),
    otherwise (v·65535) ⊘ mx; then rounded half away from zero (values are non-negative, so
    ⌊x + ½⌋). All in exact int64 bits: v·factor < 2^49 and (v·65535)·2^32 < 2^63 for mx ≤ 32768.
    """
    v = np.asarray(weights, dtype=np.int64)
    if v.size == 0:
        return []
    if (v < 0).any() or (v > U16_MAX).any():
        raise ValueError(f"weights: values must be u16, got {v.min()}..{v.max()}")
    peak = int(v.max())
    if peak == 0:
        return [0] * len(v)
    if peak > _CHAIN_FACTOR_BRANCH_MAX:
        factor_bits = (U16_MAX << 32) // peak
        stored = (v * factor_bits + _I32F32_HALF) >> 32
    else:
        stored = ((((v * U16_MAX) << 32) // peak) + _I32F32_HALF) >> 32
    return [int(x) for x in stored]
