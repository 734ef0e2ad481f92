"""Batched scoring (tasks/evaluation/scoring.py): exact numbers on a hand-computed case, ranking of
honest miners by their true error, zeros for invalid answers and copiers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from tasks.evaluation.challenges import make_challenges
from tasks.evaluation.scoring import challenge_tensors, score_batch, score_miners, score_per_miner_loop
from tasks.evaluation.series import generate_series
from tasks.evaluation.validate import validate_forecasts
from tests.test_evaluation_validate import response_frame


def hand_challenges() -> pl.DataFrame:
    # season_length 2. Scales by hand:
    #  q0 context 1,2,3,4: lag-2 diffs 2,2 → 2
    #  q1 context 10,10,10: lag-2 diff 0, lag-1 diffs 0,0 → constant context → 1.0
    #  q2 context 3,5: not longer than the season → lag-1 diff 2 → 2
    return pl.DataFrame({
        "epoch_id": ["e"] * 3, "query_id": [0, 1, 2], "netuid": [1] * 3, "block": [10] * 3,
        "series_id": ["s"] * 3, "seed": [0] * 3,
        "context": [[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0], [3.0, 5.0]], "horizon": [2] * 3,
        "truth": [[5.0, 6.0], [10.0, 10.0], [5.0, 5.0]],
    }, schema_overrides={"query_id": pl.UInt32, "netuid": pl.UInt16, "block": pl.UInt64, "seed": pl.UInt64,
                         "horizon": pl.UInt16})


def test_hand_computed_scores():
    truth, scale = challenge_tensors(hand_challenges(), season_length=2)
    assert scale.tolist() == [2.0, 1.0, 2.0]
    assert truth.tolist() == [[5.0, 6.0], [10.0, 10.0], [5.0, 5.0]]
    rows = [
        # miner 0: errors (0+2)/2/2 = 0.5 → 2/3; (1+3)/2/1 = 2 → 1/3; 0 → 1. Mean 2/3.
        (0, 0, "ok", 5.0, [5.0, 8.0]), (0, 1, "ok", 5.0, [11.0, 13.0]), (0, 2, "ok", 5.0, [5.0, 5.0]),
        # miner 1: (1+0)/2/2 = 0.25 → 0.8; NaN → 0; (4+0)/2/2 = 1 → 0.5. Mean 1.3/3.
        (1, 0, "ok", 6.0, [4.0, 6.0]), (1, 1, "ok", 6.0, [float("nan"), 10.0]), (1, 2, "ok", 6.0, [9.0, 5.0]),
        # miner 2: timed out everywhere → 0.
        (2, 0, "timeout", 7.0, None), (2, 1, "timeout", 7.0, None), (2, 2, "timeout", 7.0, None),
    ]
    batch = validate_forecasts(response_frame(rows), hand_challenges())
    error, challenge_score, batch_score = score_batch(batch.forecasts, batch.scored, truth, scale)
    expected = [[2 / 3, 1 / 3, 1.0], [0.8, 0.0, 0.5], [0.0, 0.0, 0.0]]
    assert challenge_score.flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-15)
    assert batch_score.tolist() == pytest.approx([2 / 3, 1.3 / 3, 0.0], abs=1e-15)
    assert error[0].tolist() == [0.5, 2.0, 0.0] and np.isnan(error[1, 1].item())
    loop = score_per_miner_loop(batch.forecasts, batch.scored, truth, scale)
    assert loop.tolist() == pytest.approx(batch_score.tolist(), abs=1e-15)

    table = score_miners(batch, hand_challenges(), season_length=2)
    assert table["batch_score"].to_list() == pytest.approx([2 / 3, 1.3 / 3, 0.0], abs=1e-15)
    assert table["valid_challenges"].to_list() == [3, 2, 0]
    assert table["mean_scaled_error"].to_list() == pytest.approx([2.5 / 3, 1.25 / 2, None], abs=1e-15)


def test_honest_miners_are_ranked_by_true_error_and_copiers_and_invalid_score_zero():
    challenges = make_challenges(generate_series(10, 400, seed=2), "e", 1, 10, n_challenges=32, context_len=96,
                                 horizon=24, seed=4)
    truth, scale = challenge_tensors(challenges)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((32, 24)) * scale.numpy()[:, None]
    noise_levels = {0: 0.1, 1: 0.5, 2: 1.0, 3: 2.0, 4: 4.0}  # in units of each challenge's scale
    rows = []
    for uid, level in noise_levels.items():
        forecast = truth.numpy() + level * np.roll(noise, uid, axis=1)
        rows += [(uid, q, "ok", 50.0 + uid, forecast[q].tolist()) for q in range(32)]
    rows += [(5, q, "ok", 90.0, (truth[q] * 1e9 + 1e12).tolist()) for q in range(32)]  # huge
    rows += [(6, q, "ok", 95.0, rows[32 * 2 + q][4]) for q in range(32)]  # copies miner 2, later
    rows += [(7, q, "invalid", 1.0, None) for q in range(32)]
    batch = validate_forecasts(response_frame(rows), challenges)
    table = score_miners(batch, challenges).sort("miner_uid")

    honest = table.filter(pl.col("miner_uid") < 5)
    assert honest.sort("batch_score", descending=True)["miner_uid"].to_list() == [0, 1, 2, 3, 4]
    assert honest.sort("mean_scaled_error")["miner_uid"].to_list() == [0, 1, 2, 3, 4]
    assert (honest["batch_score"] > 0).all()
    assert table.filter(pl.col("miner_uid") >= 5)["batch_score"].to_list() == [0.0, 0.0, 0.0]
    assert table["copier"].to_list() == [False] * 6 + [True, False]
    # the original keeps exactly the score it would have had without the copier
    alone = validate_forecasts(response_frame([r for r in rows if r[0] != 6]), challenges)
    assert (score_miners(alone, challenges).filter(pl.col("miner_uid") == 2)["batch_score"][0]
            == table.filter(pl.col("miner_uid") == 2)["batch_score"][0])


def test_scores_are_scale_free():
    challenges = hand_challenges()
    scaled = challenges.with_columns(pl.col("context").list.eval(pl.element() * 1000),
                                     pl.col("truth").list.eval(pl.element() * 1000))
    forecasts = torch.tensor([[[5.0, 8.0], [11.0, 13.0], [5.0, 5.0]]], dtype=torch.float64)
    scored = torch.ones(1, 3, dtype=torch.bool)
    small = score_batch(forecasts, scored, *challenge_tensors(challenges, 2))[1]
    large = score_batch(forecasts * 1000, scored, *challenge_tensors(scaled, 2))[1]
    # q1's context is constant, so its scale falls back to 1.0 and is not scale-free; the others are
    assert large[0, [0, 2]].tolist() == pytest.approx(small[0, [0, 2]].tolist(), rel=1e-12)
