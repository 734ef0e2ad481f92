"""The task plug-in `price`: predict a price-like series block by block; the truth arrives later.

As on prediction subnets, a challenge asks for the next `horizon` values of a live feed, and the truth is
only known once those blocks have passed: the epoch that asks records the answers, and a later epoch
settles them (`settle`) when its head has reached the challenge's `truth_block`.

The feed: one price per (asset, block), a deterministic function of (seed, asset, block) so that every
validator of a subnet sees the same prices (here it stands for the subnet's oracle; a real deployment
reads its own): a log-price made of slow cycles and per-block noise (splitmix64 of the key, through
Box–Muller), around 100 × (1 + asset). Challenges: the last `context_len` prices of an asset up to the
epoch's block; the answer: the prices of the next `horizon` blocks.

Its scorer is its own, per (miner, challenge), over the miners × challenges tensor at once:

    direction = 1 if the predicted and the true move of the last step (from the context's last price)
                have the same sign (or both none), else 0
    accuracy  = exp(−mean_h |f_h − y_h| / (ERROR_SCALE × last price))
    score     = (direction + accuracy) / 2 ∈ [0, 1]; an invalid answer or a copier's scores 0
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from schemas import validate_frame
from schemas.evaluation import CHALLENGES
from tasks.evaluation.challenges import challenge_rng
from tasks.evaluation.plugin import ChallengeOptions, Task

N_ASSETS = 8
CYCLES_BLOCKS = (37.0, 211.0, 997.0)  # periods of the feed's cycles
CYCLE_AMPLITUDES = (0.004, 0.01, 0.03)  # in log-price
NOISE_SIGMA = 0.002  # per-block log-price noise
ERROR_SCALE = 0.01  # a mean error of 1 % of the price costs a factor e of accuracy
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 (wrapping arithmetic): a counter-based hash, same on every machine."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _uniform(seed: int, asset: int, blocks: np.ndarray, stream: int) -> np.ndarray:
    key = np.uint64((seed * 0x100000001B3 + asset * 0x9E3779B1 + stream * 0x85EBCA77) & _MASK64)
    with np.errstate(over="ignore"):
        bits = _splitmix64(blocks.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03) ^ key)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # (0, 1)


def price_at(seed: int, asset: int, blocks: np.ndarray) -> np.ndarray:
    """The feed's price of `asset` at each of `blocks` (float64)."""
    blocks = np.asarray(blocks, dtype=np.int64)
    phases = _uniform(seed, asset, np.arange(len(CYCLES_BLOCKS)), stream=1) * 2 * np.pi
    log_price = np.log(100.0 * (1 + asset)) + sum(
        amplitude * np.sin(2 * np.pi * blocks / period + phase)
        for amplitude, period, phase in zip(CYCLE_AMPLITUDES, CYCLES_BLOCKS, phases, strict=True))
    u1, u2 = _uniform(seed, asset, blocks, stream=2), _uniform(seed, asset, blocks, stream=3)
    noise = np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)
    return np.exp(log_price + NOISE_SIGMA * noise)


class PriceTask(Task):
    name = "price"
    path = "/predict"

    def make_challenges(self, epoch_id: str, netuid: int, block: int, options: ChallengeOptions) -> pl.DataFrame:
        if options.n_challenges < 1 or options.context_len < 1 or options.horizon < 1:
            raise ValueError("price challenges: n_challenges, context_len and horizon must be >= 1")
        rng = challenge_rng(options.seed, epoch_id)
        assets = rng.integers(0, N_ASSETS, options.n_challenges)
        past = np.arange(block - options.context_len + 1, block + 1)
        contexts = [price_at(options.seed, int(a), past).tolist() for a in assets]
        frame = pl.DataFrame({
            "epoch_id": epoch_id, "query_id": np.arange(options.n_challenges, dtype=np.uint32), "netuid": netuid,
            "block": block, "series_id": [f"asset-{a}" for a in assets], "seed": options.seed, "context": contexts,
            "horizon": options.horizon, "truth": None, "task": self.name, "truth_block": block + options.horizon,
        }, schema=CHALLENGES.polars_schema())
        return validate_frame(frame, CHALLENGES, where=f"price challenges of epoch {epoch_id}")

    def settle(self, challenges: pl.DataFrame, head_block: int) -> pl.DataFrame:
        """The challenges whose truth block has passed, with the feed's prices of the blocks after their
        epoch's block as the truth."""
        due = challenges.filter(pl.col("truth_block") <= head_block)
        truths = [price_at(int(seed), int(series.split("-")[1]), np.arange(block + 1, block + horizon + 1)).tolist()
                  for seed, series, block, horizon in due.select("seed", "series_id", "block", "horizon").iter_rows()]
        return due.with_columns(pl.Series("truth", truths, dtype=pl.List(pl.Float64)))

    def score(self, batch, challenges: pl.DataFrame) -> pl.DataFrame:
        ordered = challenges.filter(pl.col("query_id").is_in(batch.query_ids)).sort("query_id")
        horizon = int(ordered["horizon"][0])
        truth = torch.from_numpy(ordered["truth"].explode().to_numpy().reshape(ordered.height, horizon).copy())
        last = torch.from_numpy(ordered["context"].list.last().to_numpy().copy())
        challenge_score = price_scores(batch.forecasts, batch.scored, truth, last)
        return pl.DataFrame({
            "miner_uid": pl.Series(batch.miner_uids, dtype=pl.UInt16),
            "hotkey": pl.Series(batch.hotkeys, dtype=pl.String),
            "batch_score": challenge_score.mean(dim=1).numpy(),
            "valid_challenges": pl.Series(batch.scored.sum(dim=1).numpy(), dtype=pl.UInt32),
            "copier": batch.copier.numpy(),
        })


def price_scores(forecasts: torch.Tensor, scored: torch.Tensor, truth: torch.Tensor, last: torch.Tensor
                 ) -> torch.Tensor:
    """forecasts [M, C, H], scored [M, C], truth [C, H], last [C] (the context's last price) → [M, C]."""
    direction = (torch.sign(forecasts[:, :, -1] - last[None]) == torch.sign(truth[:, -1] - last)[None]).double()
    error = (forecasts - truth[None]).abs().mean(dim=2) / (ERROR_SCALE * last.abs().clamp(min=1e-12))[None]
    score = (direction + torch.exp(-error)) / 2.0
    return torch.where(scored, score, torch.zeros((), dtype=score.dtype))
