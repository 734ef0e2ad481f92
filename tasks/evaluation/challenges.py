"""Forecasting challenges of an epoch (DESIGN.md §7): context windows cut from series, and the request.

A challenge is `context_len` consecutive values of one series and the `horizon` values that follow
(the truth, held back from miners). Windows are cut at random positions drawn from a seed, so an
epoch's challenges can be regenerated exactly from (series, epoch_id, seed, sizes).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl

from schemas import validate_frame
from schemas.evaluation import CHALLENGES
from tasks.evaluation.protocol import MAX_REQUEST_BYTES


def challenge_rng(seed: int, epoch_id: str) -> np.random.Generator:
    """The generator of an epoch's windows: the seed mixed with the epoch id (sha256, so stable across
    processes and Python versions), so that a flow reusing one seed still cuts new windows each epoch."""
    epoch_word = int.from_bytes(hashlib.sha256(epoch_id.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), epoch_word])


def make_challenges(series: pl.DataFrame, epoch_id: str, netuid: int, block: int, n_challenges: int,
                    context_len: int, horizon: int, seed: int) -> pl.DataFrame:
    """`n_challenges` windows of the SERIES frame `series`; one row per challenge (CHALLENGES table).

    query_id runs 0..n−1. Each challenge picks a series uniformly among those with at least
    context_len + horizon steps (sorted by series_id, so input row order does not matter), then a start
    step uniformly among the windows that fit. Same inputs → identical frame.
    """
    if n_challenges < 1 or context_len < 1 or horizon < 1:
        raise ValueError(f"make_challenges: n_challenges ({n_challenges}), context_len ({context_len}) and "
                         f"horizon ({horizon}) must be >= 1")
    window = context_len + horizon
    by_series = (series.sort("series_id", "t").group_by("series_id", maintain_order=True)
                 .agg(pl.col("value").alias("values"))
                 .with_columns(pl.col("values").list.len().alias("length"))
                 .filter(pl.col("length") >= window))
    if by_series.height == 0:
        longest = series.group_by("series_id").len()["len"].max() if series.height else 0
        raise ValueError(f"make_challenges: no series has context_len + horizon = {window} steps "
                         f"(longest has {longest})")
    rng = challenge_rng(seed, epoch_id)
    series_idx = rng.integers(0, by_series.height, n_challenges)
    max_start = by_series["length"].to_numpy()[series_idx] - window  # inclusive
    start = (rng.random(n_challenges) * (max_start + 1)).astype(np.int64)
    picks = pl.DataFrame({"query_id": np.arange(n_challenges, dtype=np.uint32), "row": series_idx,
                          "start": start})
    frame = (picks.join(by_series.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64)),
                        on="row", how="left")
             .sort("query_id")
             .select(
                 pl.lit(epoch_id, pl.String).alias("epoch_id"),
                 pl.col("query_id"),
                 pl.lit(netuid, pl.UInt16).alias("netuid"),
                 pl.lit(block, pl.UInt64).alias("block"),
                 pl.col("series_id"),
                 pl.lit(seed, pl.UInt64).alias("seed"),
                 pl.col("values").list.slice(pl.col("start"), context_len).alias("context"),
                 pl.lit(horizon, pl.UInt16).alias("horizon"),
                 pl.col("values").list.slice(pl.col("start") + context_len, horizon).alias("truth"),
                 pl.lit("forecast", pl.String).alias("task"),
                 pl.lit(None, pl.UInt64).alias("truth_block"),
             ))
    return validate_frame(frame, CHALLENGES, where=f"epoch {epoch_id}")


def request_body(challenges: pl.DataFrame) -> bytes:
    """The protocol's request body for a batch of challenges of one epoch, WITHOUT the truth:
    {"epoch_id": str, "challenges": [{"query_id": int, "context": [float, ...], "horizon": int}, ...]}.
    Compact JSON, challenges in query_id order; raises if the body would exceed MAX_REQUEST_BYTES
    (miners refuse larger bodies with 413)."""
    epochs = challenges["epoch_id"].unique().to_list()
    if len(epochs) != 1:
        raise ValueError(f"request_body: challenges must belong to one epoch, got epoch_id {sorted(epochs)}")
    rows = challenges.sort("query_id").select("query_id", "context", "horizon").to_dicts()
    body = json.dumps({"epoch_id": epochs[0], "challenges": rows}, separators=(",", ":"),
                      allow_nan=False).encode()
    if len(body) > MAX_REQUEST_BYTES:
        raise ValueError(f"request_body: {len(rows)} challenges make a {len(body)}-byte body, above the "
                         f"protocol's {MAX_REQUEST_BYTES}; use fewer challenges or shorter contexts")
    return body
