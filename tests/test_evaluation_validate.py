"""Validation of answers and copy detection (tasks/evaluation/validate.py)."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from schemas.evaluation import RESPONSES
from tasks.evaluation.validate import detect_copiers, validate_forecasts

HORIZON = 3


def challenge_frame(contexts: list[list[float]]) -> pl.DataFrame:
    n = len(contexts)
    return pl.DataFrame({
        "epoch_id": ["e"] * n, "query_id": list(range(n)), "netuid": [1] * n, "block": [10] * n,
        "series_id": ["s"] * n, "seed": [0] * n, "context": contexts, "horizon": [HORIZON] * n,
        "truth": [[0.0] * HORIZON] * n,
    }, schema_overrides={"query_id": pl.UInt32, "netuid": pl.UInt16, "block": pl.UInt64, "seed": pl.UInt64,
                         "horizon": pl.UInt16})


def response_frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (miner_uid, query_id, status, latency_ms, forecast)."""
    return pl.DataFrame({
        "epoch_id": ["e"] * len(rows), "miner_uid": [r[0] for r in rows], "query_id": [r[1] for r in rows],
        "hotkey": [f"hk{r[0]}" for r in rows], "status": [r[2] for r in rows],
        "latency_ms": [r[3] for r in rows], "payload_bytes": [100] * len(rows),
        "forecast": [r[4] for r in rows], "detail": [None] * len(rows),
    }, schema_overrides={"miner_uid": pl.UInt16, "query_id": pl.UInt32, "payload_bytes": pl.UInt64,
                         "latency_ms": pl.Float64, "forecast": pl.List(pl.Float64), "detail": pl.String})


def test_each_kind_of_bad_answer_is_invalid_and_nothing_raises():
    nan, inf = float("nan"), float("inf")
    challenges = challenge_frame([[1.0, -3.0], [0.5, 0.2]])  # bounds: 1e6·3 and 1e6·max(0.5, 1) = 1e6
    rows = [
        (0, 0, "ok", 5.0, [1.0, 2.0, 3.0]), (0, 1, "ok", 5.0, [-1e6, 1e6, 0.0]),  # at the bound: fine
        (1, 0, "ok", 6.0, [1.0, nan, 3.0]), (1, 1, "ok", 6.0, [1.0, 2.0, -inf]),
        (2, 0, "ok", 7.0, [1.0, 2.0]), (2, 1, "ok", 7.0, [1.0, 2.0, 3.0, 4.0]),
        (3, 0, "ok", 8.0, [3e6 + 1, 0.0, 0.0]), (3, 1, "ok", 8.0, [0.0, -1.5e6, 0.0]),
        (4, 0, "timeout", 9.0, None), (4, 1, "ok", 9.0, None),
        (5, 1, "ok", 10.0, []), (6, 0, "refused", 1.0, None),
        (7, 0, "ok", 4.0, [1.0, 2.0, 3.0]), (7, 99, "ok", 4.0, [1.0, 2.0, 3.0]),  # 99 was never asked
    ]
    extra = pl.DataFrame({"miner_uid": [8], "hotkey": ["hk8"]})
    batch = validate_forecasts(response_frame(rows), challenges, miners=extra)

    assert batch.miner_uids == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    verdicts = {(u, q): v for u, q, v in batch.verdicts.iter_rows()}
    assert verdicts == {
        (0, 0): "ok", (0, 1): "ok", (1, 0): "non_finite", (1, 1): "non_finite",
        (2, 0): "wrong_length", (2, 1): "wrong_length", (3, 0): "too_large", (3, 1): "too_large",
        (4, 0): "status:timeout", (4, 1): "missing", (5, 0): "missing", (5, 1): "wrong_length",
        (6, 0): "status:refused", (6, 1): "missing", (7, 0): "ok", (7, 1): "missing",
        (8, 0): "missing", (8, 1): "missing",
    }
    assert batch.valid.tolist() == [[verdicts[(u, q)] == "ok" for q in (0, 1)] for u in batch.miner_uids]
    assert batch.forecasts[0].tolist() == [[1.0, 2.0, 3.0], [-1e6, 1e6, 0.0]]
    assert batch.forecasts[1:7].abs().sum().item() == 0.0  # invalid answers leave zeros, never NaN
    assert torch.isfinite(batch.forecasts).all()
    assert batch.latency_ms[-1].item() == float("inf")  # a miner with no response row


def test_mixed_horizons_are_our_error():
    challenges = challenge_frame([[1.0], [2.0]]).with_columns(pl.Series("horizon", [3, 4], pl.UInt16))
    with pytest.raises(ValueError, match="one horizon"):
        validate_forecasts(response_frame([(0, 0, "ok", 1.0, [1.0, 2.0, 3.0])]), challenges)


def copy_case(answers: dict[int, tuple[float, list]]) -> list[int]:
    """answers: uid -> (latency_ms, [forecast or None per challenge]); returns the flagged uids."""
    rows = [(uid, q, "ok", latency, f) for uid, (latency, fs) in answers.items() for q, f in enumerate(fs)]
    batch = validate_forecasts(response_frame(rows), challenge_frame([[1.0, 2.0]] * 3))
    return [uid for uid, flag in zip(batch.miner_uids, batch.copier.tolist(), strict=True) if flag]


A = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
B = [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]


def test_copy_detection_rule():
    assert copy_case({0: (10.0, A), 1: (20.0, A)}) == [1]  # the later identical answer is the copy
    assert copy_case({0: (30.0, A), 1: (20.0, A)}) == [0]  # arrival order decides, not uid
    assert copy_case({0: (10.0, A), 1: (10.0, A)}) == [1]  # a tie: the lower uid is the original
    assert copy_case({0: (10.0, A), 1: (20.0, A), 2: (30.0, A)}) == [1, 2]  # only the earliest kept
    assert copy_case({0: (10.0, A), 1: (20.0, B)}) == []  # one value differs: not a copy
    spoiled = [A[0], A[1], [float("nan")] * 3]  # a copy with one answer spoiled is still a copy
    assert copy_case({0: (10.0, A), 1: (20.0, spoiled)}) == [1]
    assert copy_case({0: (10.0, spoiled), 1: (20.0, A)}) == []  # the original must cover the copy's answers
    nothing = [[float("nan")] * 3] * 3
    assert copy_case({0: (10.0, nothing), 1: (20.0, nothing)}) == []  # no valid answer, nothing copied
    assert copy_case({0: (10.0, A), 1: (20.0, B), 2: (30.0, B)}) == [2]


def test_detect_copiers_on_tensors_directly():
    forecasts = torch.tensor([[[1.0], [2.0]], [[1.0], [2.0]], [[1.0], [0.0]]], dtype=torch.float64)
    valid = torch.tensor([[True, True], [True, True], [True, False]])
    latency = torch.tensor([5.0, 3.0, 9.0], dtype=torch.float64)
    # miner 1 answered first, so miner 0 is its copy; miner 2's only valid answer matches both
    assert detect_copiers(forecasts, valid, latency).tolist() == [True, False, True]


def test_an_epoch_without_answers_is_an_empty_batch():
    batch = validate_forecasts(RESPONSES.empty(), challenge_frame([[1.0], [2.0]]))
    assert batch.forecasts.shape == (0, 2, HORIZON) and batch.copier.shape == (0,)
    assert batch.verdicts.height == 0
