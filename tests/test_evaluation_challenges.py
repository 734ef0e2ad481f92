"""Challenges of an epoch and the request body (tasks/evaluation/challenges.py)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from schemas import validate_frame
from schemas.evaluation import CHALLENGES
from tasks.evaluation.challenges import make_challenges, request_body
from tasks.evaluation.series import generate_series

SERIES = generate_series(5, 300, seed=9)


def challenges(**change) -> pl.DataFrame:
    args = dict(epoch_id="sn1-720", netuid=1, block=720, n_challenges=12, context_len=64, horizon=8, seed=77)
    return make_challenges(SERIES, **(args | change))


def test_same_inputs_identical_frame_any_change_other_windows():
    first = challenges()
    validate_frame(first, CHALLENGES)
    assert first.equals(challenges())
    assert first.equals(make_challenges(SERIES.sample(fraction=1.0, shuffle=True, seed=1), "sn1-720", 1, 720,
                                        12, 64, 8, 77))  # input row order does not matter
    assert not first["context"].equals(challenges(seed=78)["context"])
    assert not first["context"].equals(challenges(epoch_id="sn1-1080")["context"])
    assert first["query_id"].to_list() == list(range(12))
    assert first.select(pl.col("netuid").unique(), pl.col("block").unique(), pl.col("seed").unique(),
                        pl.col("horizon").unique()).row(0) == (1, 720, 77, 8)


def test_context_and_truth_are_consecutive_values_of_the_series():
    frame = challenges()
    values = {sid: rows.sort("t")["value"].to_list() for (sid,), rows in SERIES.group_by("series_id")}
    starts = set()
    for series_id, context, truth in frame.select("series_id", "context", "truth").iter_rows():
        series = values[series_id]
        assert len(context) == 64 and len(truth) == 8
        start = next(s for s in range(len(series) - 71) if series[s:s + 64] == context)
        assert series[start + 64:start + 72] == truth  # the truth is the next `horizon` values
        starts.add((series_id, start))
    assert len(starts) > 6  # cut at random positions, not one window repeated


def test_series_too_short_for_the_window_is_an_error():
    with pytest.raises(ValueError, match="no series has context_len \\+ horizon = 400 steps \\(longest has 300\\)"):
        challenges(context_len=390, horizon=10)


def test_request_body_is_the_protocol_body_without_truth():
    frame = challenges(n_challenges=3)
    body = json.loads(request_body(frame))
    assert set(body) == {"epoch_id", "challenges"} and body["epoch_id"] == "sn1-720"
    assert [set(c) for c in body["challenges"]] == [{"query_id", "context", "horizon"}] * 3
    assert [c["context"] for c in body["challenges"]] == frame["context"].to_list()
    assert [c["horizon"] for c in body["challenges"]] == [8, 8, 8]
    with pytest.raises(ValueError, match="one epoch"):
        request_body(pl.concat([frame, challenges(epoch_id="other", n_challenges=1)]))
    with pytest.raises(ValueError, match="above the protocol's"):
        request_body(challenges(n_challenges=5000, context_len=200))
