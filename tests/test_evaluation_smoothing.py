"""EMA smoothing with its state in a real warehouse (tasks/evaluation/smoothing.py): across epochs,
hotkey changes, absent and new miners, and an idempotent re-run of an epoch."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.evaluation.smoothing import previous_smoothed, smooth_scores
from warehouse import Warehouse

ALPHA = 0.25


def batch(scores: dict[int, tuple[str, float]]) -> pl.DataFrame:
    return pl.DataFrame({"miner_uid": list(scores), "hotkey": [h for h, _ in scores.values()],
                         "batch_score": [s for _, s in scores.values()]},
                        schema_overrides={"miner_uid": pl.UInt16})


def run_epoch(wh: Warehouse, epoch_id: str, block: int, scores: dict[int, tuple[str, float]]) -> pl.DataFrame:
    previous = previous_smoothed(wh, netuid=1, block=block, epoch_id=epoch_id)
    rows = smooth_scores(batch(scores), previous, epoch_id=epoch_id, netuid=1, block=block, alpha=ALPHA)
    wh.write("scores", rows)
    return rows


def smoothed(rows: pl.DataFrame) -> dict[int, float]:
    return dict(rows.select("miner_uid", "smoothed_score").iter_rows())


def test_state_carries_across_epochs_and_reruns_do_not_smooth_twice(tmp_path):
    wh = Warehouse(tmp_path / "warehouse")
    first = run_epoch(wh, "sn1-360", 360, {0: ("A", 0.8), 1: ("B", 0.4), 2: ("C", 1.0)})
    assert smoothed(first) == pytest.approx({0: 0.2, 1: 0.1, 2: 0.25})  # everyone starts from 0

    # uid 1 re-registered under a new hotkey, uid 2 is absent, uid 3 is new; another subnet's scores
    # at an in-between block must not leak into netuid 1's state
    other = smooth_scores(batch({0: ("A", 0.0)}), previous_smoothed(wh, 2, 500, "sn2-500"), epoch_id="sn2-500",
                          netuid=2, block=500, alpha=ALPHA)
    wh.write("scores", other)
    second_scores = {0: ("A", 0.6), 1: ("B2", 0.5), 3: ("D", 0.9)}
    second = run_epoch(wh, "sn1-720", 720, second_scores)
    expected = {0: 0.25 * 0.6 + 0.75 * 0.2, 1: 0.25 * 0.5, 3: 0.25 * 0.9}
    assert smoothed(second) == pytest.approx(expected, abs=1e-15)
    assert second["batch_score"].to_list() == [0.6, 0.5, 0.9]
    assert second.select(pl.col("epoch_id").unique(), pl.col("block").unique()).row(0) == ("sn1-720", 720)

    # a crash after writing, then the same epoch again: same rows, one copy in the warehouse
    rerun = run_epoch(wh, "sn1-720", 720, second_scores)
    assert rerun.equals(second)
    stored = wh.read("scores", pl.col("epoch_id") == "sn1-720").sort("miner_uid")
    assert stored.height == 3 and smoothed(stored) == pytest.approx(expected, abs=1e-15)

    # re-running the first epoch after the second exists still reads only what came before it
    assert run_epoch(wh, "sn1-360", 360, {0: ("A", 0.8), 1: ("B", 0.4), 2: ("C", 1.0)}).equals(first)

    # uid 2 comes back: it was absent last epoch, so it starts from 0 again; uid 0 continues
    third = run_epoch(wh, "sn1-1080", 1080, {0: ("A", 0.6), 2: ("C", 1.0)})
    assert smoothed(third) == pytest.approx({0: 0.25 * 0.6 + 0.75 * expected[0], 2: 0.25}, abs=1e-15)
    assert wh.read("scores", netuid=1).height == 3 + 3 + 2


def test_batch_scores_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match="batch_score nan of miner_uid 4 is not in \\[0, 1\\]"):
        smooth_scores(batch({4: ("E", float("nan"))}), batch({}).rename({"batch_score": "smoothed_score"}),
                      epoch_id="e", netuid=1, block=1)
    with pytest.raises(ValueError, match="alpha"):
        smooth_scores(batch({4: ("E", 0.5)}), batch({}).rename({"batch_score": "smoothed_score"}),
                      epoch_id="e", netuid=1, block=1, alpha=0.0)
