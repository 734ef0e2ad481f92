"""Several tables in one commit, scopes emptied by a re-read, ingest_log ranges in the same commit."""

from __future__ import annotations

import polars as pl
import pytest

from tests.test_warehouse import neurons, weights
from warehouse import Completion, Warehouse


def test_tables_and_log_become_visible_in_one_manifest_version(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    before = wh.manifest().version
    summary = wh.write_many({"neurons": neurons(1, 100), "weights": weights(1, 100, 2, 3)},
                            complete=[Completion("neurons", 1, 100, 100, 8, "replay:x")])
    assert {s.manifest_version for s in summary.values()} == {before + 1}
    assert wh.manifest().version == before + 1
    assert wh.read("neurons").height == 8
    assert wh.read("weights").height == 6
    assert wh.completed_ranges("neurons", 1) == [(100, 100)]


def test_replace_retires_edges_a_reread_snapshot_no_longer_has(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write_many({"weights": pl.concat([weights(1, 100, 2, 3), weights(1, 460, 1, 2)])})
    # Block 100 re-read: its validators have cleared their weights, so the frame holds no edge of it.
    empty = weights(1, 100, 0, 0)
    wh.write_many({"weights": empty}, replace={"weights": pl.DataFrame(
        {"netuid": [1], "block": [100]}, schema={"netuid": pl.UInt16, "block": pl.UInt64})})
    got = wh.read("weights")
    assert got["block"].unique().to_list() == [460]
    assert got.height == 2


def test_replace_by_non_scope_column_is_refused(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with pytest.raises(ValueError, match="must be scope columns"):
        wh.write_many({"weights": weights(1, 1, 1, 1)},
                      replace={"weights": pl.DataFrame({"miner_uid": [0]}, schema={"miner_uid": pl.UInt16})})
    assert wh.read("weights").height == 0


def test_mark_complete_keeps_earlier_ranges(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.mark_complete("neurons", 1, 0, 9, 10, "sim")
    wh.mark_complete("neurons", 1, 20, 29, 10, "sim")
    wh.mark_complete("neurons", 2, 0, 4, 5, "sim")
    assert wh.completed_ranges("neurons", 1) == [(0, 9), (20, 29)]
    assert wh.missing_ranges("neurons", 1, 0, 29) == [(10, 19)]
    assert wh.completed_ranges("neurons", 2) == [(0, 4)]
