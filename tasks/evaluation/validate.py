"""Miners' answers → a dense forecast tensor and a validity mask (DESIGN.md §7: miners are untrusted).

Validity is judged per (miner, challenge); an invalid answer scores zero for that challenge and never
raises. Verdicts, in the order they are checked:

    status:<s>    the response row's status is not ok (timeout, refused, invalid, error)
    missing       no response row, or an ok row without a forecast
    wrong_length  the forecast does not have exactly `horizon` values
    non_finite    a NaN or ±inf value
    too_large     a |value| above bound_factor × max(max |context|, 1): no real forecast of this
                  series is a million times its context's magnitude, and such values would dominate
                  any error average
    ok

Copy detection (`detect_copiers`). The rule: miner B is a copier when there is a miner A that
answered earlier — lower latency_ms; on a tie, the lower uid counts as earlier — and, on every
challenge B answered validly, A answered validly with exactly the same values (bitwise float64
equality), and B answered at least one challenge validly. Copiers score zero for the whole batch;
the original keeps its score (of a group of identical miners only the earliest is kept). "Every
challenge B answered validly" rather than "every challenge" so that a copier cannot escape by
spoiling one answer. Consequence to know: two honest miners running the same deterministic model on
the same inputs are indistinguishable from a copy, and the slower of them scores zero. Copies with
added noise are not detected by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import torch

from schemas import validate_frame
from schemas.evaluation import RESPONSES

DEFAULT_BOUND_FACTOR = 1e6


@dataclass
class ForecastBatch:
    """All answers of an epoch as tensors, miners in ascending uid, challenges in ascending query_id.

    forecasts [M, C, H] float64 (0 where invalid), valid [M, C] bool, latency_ms [M] float64 (inf
    when unknown), copier [M] bool. `verdicts`: one row per (miner_uid, query_id) with its verdict.
    """

    miner_uids: list[int]
    hotkeys: list[str]
    query_ids: list[int]
    forecasts: torch.Tensor
    valid: torch.Tensor
    latency_ms: torch.Tensor
    copier: torch.Tensor
    verdicts: pl.DataFrame

    @property
    def scored(self) -> torch.Tensor:
        """[M, C]: the answers that earn a score — valid, and not from a copier."""
        return self.valid & ~self.copier[:, None]


def validate_forecasts(responses: pl.DataFrame, challenges: pl.DataFrame, *,
                       miners: pl.DataFrame | None = None,
                       bound_factor: float = DEFAULT_BOUND_FACTOR) -> ForecastBatch:
    """Judge every (miner, challenge) answer and pack the valid ones into a dense tensor.

    Miners are those with response rows, plus those in `miners` (columns miner_uid, hotkey) if given —
    a miner listed there without any row gets `missing` on every challenge. Challenges must share one
    horizon. Response rows for unknown query_ids are ignored.
    """
    responses = validate_frame(responses, RESPONSES, where="validate_forecasts")
    horizons = challenges["horizon"].unique()
    if horizons.len() != 1:
        raise ValueError(f"validate_forecasts: challenges must share one horizon, got {sorted(horizons.to_list())}")
    horizon = int(horizons[0])
    magnitude = pl.max_horizontal(pl.col("context").list.eval(pl.element().abs()).list.max(), pl.lit(1.0))
    by_challenge = (challenges.sort("query_id").with_row_index("j")
                    .select("j", "query_id", (bound_factor * magnitude).alias("bound")))
    known = responses.group_by("miner_uid").agg(pl.col("hotkey").first(), pl.col("latency_ms").min())
    if miners is not None:
        listed = miners.select(pl.col("miner_uid").cast(pl.UInt16), "hotkey",
                               pl.lit(None, pl.Float64).alias("latency_ms"))
        known = pl.concat([known, listed.join(known, on="miner_uid", how="anti")])
    by_miner = known.sort("miner_uid").with_row_index("i")

    forecast = pl.col("forecast")
    verdict = (pl.when(pl.col("status") != "ok").then(pl.lit("status:") + pl.col("status"))
               .when(forecast.is_null()).then(pl.lit("missing"))
               .when(forecast.list.len() != horizon).then(pl.lit("wrong_length"))
               .when(~forecast.list.eval(pl.element().is_finite()).list.all()).then(pl.lit("non_finite"))
               .when(forecast.list.eval(pl.element().abs()).list.max() > pl.col("bound")).then(pl.lit("too_large"))
               .otherwise(pl.lit("ok")))
    judged = (responses.join(by_challenge, on="query_id", how="inner")
              .select("miner_uid", "query_id", "forecast", verdict.alias("verdict")))
    verdicts = (by_miner.select("i", "miner_uid").join(by_challenge.select("j", "query_id"), how="cross")
                .join(judged, on=["miner_uid", "query_id"], how="left")
                .with_columns(pl.col("verdict").fill_null("missing"))
                .sort("i", "j"))

    n_miners, n_challenges = by_miner.height, by_challenge.height
    forecasts = torch.zeros(n_miners, n_challenges, horizon, dtype=torch.float64)
    valid = torch.zeros(n_miners, n_challenges, dtype=torch.bool)
    ok = verdicts.filter(pl.col("verdict") == "ok")
    if ok.height:
        i = torch.tensor(ok["i"].cast(pl.Int64).to_numpy())
        j = torch.tensor(ok["j"].cast(pl.Int64).to_numpy())
        values = ok["forecast"].explode().to_numpy().reshape(ok.height, horizon)
        forecasts[i, j] = torch.from_numpy(values.copy())
        valid[i, j] = True
    latency_ms = torch.from_numpy(by_miner["latency_ms"].fill_null(float("inf")).to_numpy().copy())
    return ForecastBatch(
        miner_uids=by_miner["miner_uid"].to_list(), hotkeys=by_miner["hotkey"].to_list(),
        query_ids=by_challenge["query_id"].to_list(), forecasts=forecasts, valid=valid, latency_ms=latency_ms,
        copier=detect_copiers(forecasts, valid, latency_ms),
        verdicts=verdicts.select("miner_uid", "query_id", "verdict"),
    )


def detect_copiers(forecasts: torch.Tensor, valid: torch.Tensor, latency_ms: torch.Tensor) -> torch.Tensor:
    """[M] bool: miners flagged as copiers by the rule in this module's docstring. Miners are rows in
    ascending uid (the tie-break). Identical answers are found per challenge by grouping equal rows
    (torch.unique), so memory is [M, M] per challenge, not [M, M, C, H]."""
    n_miners, n_challenges, horizon = forecasts.shape
    if n_miners < 2:
        return torch.zeros(n_miners, dtype=torch.bool)
    # group id of each (miner, challenge) answer: equal values of the same challenge share an id;
    # invalid answers get ids of their own, so they never match anything.
    rows = torch.cat([forecasts.reshape(-1, horizon),
                      torch.arange(n_challenges, dtype=torch.float64).repeat(n_miners)[:, None]], dim=1)
    _, group = torch.unique(rows, dim=0, return_inverse=True)
    group = group.reshape(n_miners, n_challenges)
    own_ids = group.max() + 1 + torch.arange(n_miners * n_challenges).reshape(n_miners, n_challenges)
    group = torch.where(valid, group, own_ids)

    copies = valid.any(dim=1)[:, None].expand(n_miners, n_miners).clone()  # copies[b, a]: b copies a
    for c in range(n_challenges):
        copies &= ~valid[:, c, None] | (group[:, c, None] == group[None, :, c])
    index = torch.arange(n_miners)
    earlier = (latency_ms[None, :] < latency_ms[:, None]) | (
        (latency_ms[None, :] == latency_ms[:, None]) & (index[None, :] < index[:, None]))  # [b, a]: a before b
    return (copies & earlier).any(dim=1)
