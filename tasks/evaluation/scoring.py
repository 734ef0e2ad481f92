"""Batched scoring of an epoch's forecasts (DESIGN.md §7): one torch computation over
miners × challenges × horizon.

Per challenge c with truth y (H values) and a miner's forecast f:

    scale_c = mean |x_t − x_{t−m}| over the context x (the in-sample error of the seasonal-naive
              forecast with season m = season_length; m = 1 when the context is not longer than m;
              1.0 when the context is constant), as in MASE — so errors compare across series of any
              magnitude
    error   = mean_h |f_h − y_h| / scale_c                    (MASE-like, ≥ 0)
    score   = 1 / (1 + error) ∈ (0, 1] for a valid answer; 0 for an invalid one or a copier's

and a miner's batch score is the mean of its per-challenge scores over all challenges of the epoch.
1/(1+error) rather than exp(−error): a poor but honest forecast (error 20) keeps a score clearly above
an invalid one, instead of underflowing towards zero.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from tasks.evaluation.validate import ForecastBatch

DEFAULT_SEASON_LENGTH = 24  # steps; the generator's main seasonality (series.SEASON_PERIODS_STEPS)


def challenge_tensors(challenges: pl.DataFrame, season_length: int = DEFAULT_SEASON_LENGTH
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """truth [C, H] and scale [C] (float64), challenges in ascending query_id."""
    ordered = challenges.sort("query_id")

    def naive_mae(lag: int) -> pl.Expr:
        return pl.col("context").list.diff(lag).list.eval(pl.element().abs()).list.mean()

    scale = ordered.select(
        pl.when(pl.col("context").list.len() > season_length).then(naive_mae(season_length))
        .otherwise(naive_mae(1)).alias("seasonal"),
        naive_mae(1).alias("lag1"),
    ).select(pl.when(pl.col("seasonal") > 0).then("seasonal")
             .when(pl.col("lag1") > 0).then("lag1").otherwise(1.0).alias("scale"))["scale"]
    horizon = int(ordered["horizon"][0])
    truth = ordered["truth"].explode().to_numpy().reshape(ordered.height, horizon)
    return torch.from_numpy(truth.copy()), torch.from_numpy(scale.to_numpy().copy())


def score_batch(forecasts: torch.Tensor, scored: torch.Tensor, truth: torch.Tensor, scale: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """forecasts [M, C, H], scored [M, C] bool, truth [C, H], scale [C] →
    (scaled error [M, C] (NaN where not scored), challenge score [M, C], batch score [M])."""
    error = (forecasts - truth[None]).abs().mean(dim=2) / scale[None]
    challenge_score = torch.where(scored, 1.0 / (1.0 + error), torch.zeros((), dtype=error.dtype))
    batch_score = challenge_score.mean(dim=1)
    return torch.where(scored, error, torch.full((), float("nan"), dtype=error.dtype)), challenge_score, batch_score


def score_miners(batch: ForecastBatch, challenges: pl.DataFrame,
                 season_length: int = DEFAULT_SEASON_LENGTH) -> pl.DataFrame:
    """One row per miner: miner_uid, hotkey, batch_score, valid_challenges (answers that counted),
    copier, mean_scaled_error (over counted answers; null if none) — the input of smoothing."""
    truth, scale = challenge_tensors(challenges.filter(pl.col("query_id").is_in(batch.query_ids)), season_length)
    error, _, batch_score = score_batch(batch.forecasts, batch.scored, truth, scale)
    counted = batch.scored.sum(dim=1)
    mean_error = torch.nansum(error, dim=1) / counted.clamp(min=1)
    return pl.DataFrame({
        "miner_uid": pl.Series(batch.miner_uids, dtype=pl.UInt16),
        "hotkey": pl.Series(batch.hotkeys, dtype=pl.String),
        "batch_score": batch_score.numpy(),
        "valid_challenges": pl.Series(counted.numpy(), dtype=pl.UInt32),
        "copier": batch.copier.numpy(),
        "mean_scaled_error": torch.where(counted > 0, mean_error, float("nan")).numpy(),
    }).with_columns(pl.col("mean_scaled_error").fill_nan(None))


def score_per_miner_loop(forecasts: torch.Tensor, scored: torch.Tensor, truth: torch.Tensor,
                         scale: torch.Tensor) -> torch.Tensor:
    """The same batch scores computed the way a hand-rolled validator does: a Python loop over miners
    and their answers. For benchmarks/scoring.py only; the flow uses `score_batch`."""
    forecasts_np, scored_np = forecasts.numpy(), scored.numpy()
    truth_np, scale_np = truth.numpy(), scale.numpy()
    n_miners, n_challenges, _ = forecasts_np.shape
    batch_score = np.zeros(n_miners)
    for m in range(n_miners):
        total = 0.0
        for c in range(n_challenges):
            if scored_np[m, c]:
                error = float(np.mean(np.abs(forecasts_np[m, c] - truth_np[c]))) / float(scale_np[c])
                total += 1.0 / (1.0 + error)
        batch_score[m] = total / n_challenges
    return torch.from_numpy(batch_score)
