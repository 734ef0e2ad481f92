"""EMA smoothing of batch scores with its state in the warehouse (DESIGN.md §7): a restarted validator
continues where it was, and a re-run epoch is not smoothed twice.

    smoothed = alpha · batch_score + (1 − alpha) · previous

The state (`previous_smoothed`) is the `scores` rows of this subnet's most recent epoch strictly
before this one: block < this block, and never this epoch_id. Rules:

- A miner with a row there under the same hotkey continues from its smoothed score.
- A miner not in that epoch (new, or absent last epoch) starts from previous = 0, so its first
  smoothed score is alpha · batch. Starting from 0 is how the chain treats a new uid and it means
  dropping out (no axon) never pays: coming back does not restore an older, higher score.
- A uid whose hotkey changed (deregistered and re-registered) starts from 0 as well: the state of
  the old hotkey is not inherited.
- A miner absent this epoch (in the state but not in this batch — no axon served, or no longer
  registered) gets no row this epoch, hence no weight, and starts from 0 if it returns.

Idempotence: the state is read strictly before this epoch, and the warehouse write of `scores`
replaces the whole epoch_id scope, so re-running an epoch recomputes the same rows from the same
state and leaves one copy.
"""

from __future__ import annotations

import polars as pl

from schemas import validate_frame
from schemas.evaluation import SCORES

DEFAULT_ALPHA = 0.1


def previous_smoothed(warehouse, netuid: int, block: int, epoch_id: str) -> pl.DataFrame:
    """The EMA state for an epoch at `block`: the scores rows (miner_uid, hotkey, smoothed_score) of
    the subnet's latest epoch with block < `block` and another epoch_id; empty if there is none."""
    empty = SCORES.empty().select("miner_uid", "hotkey", "smoothed_score")
    if block == 0:
        return empty
    earlier = warehouse.read("scores", pl.col("epoch_id") != epoch_id, netuid=netuid, block_end=block - 1)
    if earlier.height == 0:
        return empty
    last_block = earlier["block"].max()
    latest = earlier.filter(pl.col("block") == last_block)
    if latest["epoch_id"].n_unique() > 1:  # two epochs at one block: take the lexically last id
        latest = latest.filter(pl.col("epoch_id") == latest["epoch_id"].max())
    return latest.select("miner_uid", "hotkey", "smoothed_score")


def smooth_scores(batch_scores: pl.DataFrame, previous: pl.DataFrame, *, epoch_id: str, netuid: int,
                  block: int, alpha: float = DEFAULT_ALPHA) -> pl.DataFrame:
    """SCORES rows, one per miner of `batch_scores` (columns miner_uid, hotkey, batch_score):
    the EMA of the batch score over `previous` (miner_uid, hotkey, smoothed_score; see the rules of
    this module). Raises on a NaN, infinite or out-of-[0, 1] batch score (our own bug, not a miner's)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"smooth_scores: alpha must be in (0, 1], got {alpha}")
    bad = batch_scores.filter(~pl.col("batch_score").is_finite() | (pl.col("batch_score") < 0)
                              | (pl.col("batch_score") > 1))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(f"smooth_scores: epoch {epoch_id}: batch_score {row['batch_score']} of miner_uid "
                         f"{row['miner_uid']} is not in [0, 1]")
    state = previous.select(pl.col("miner_uid").cast(pl.UInt16), "hotkey",
                            pl.col("smoothed_score").alias("previous"))
    rows = (batch_scores.select(pl.col("miner_uid").cast(pl.UInt16), "hotkey", pl.col("batch_score").cast(pl.Float64))
            .join(state, on=["miner_uid", "hotkey"], how="left")  # a changed hotkey finds no state
            .select(
                pl.lit(epoch_id, pl.String).alias("epoch_id"), pl.lit(netuid, pl.UInt16).alias("netuid"),
                pl.lit(block, pl.UInt64).alias("block"), "miner_uid", "hotkey", "batch_score",
                (alpha * pl.col("batch_score") + (1.0 - alpha) * pl.col("previous").fill_null(0.0))
                .alias("smoothed_score"),
            ).sort("miner_uid"))
    return validate_frame(rows, SCORES, where=f"epoch {epoch_id}")
