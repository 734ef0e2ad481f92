"""The warehouse on real Parquet files and a real catalog.duckdb in tmp_path (no mocks)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from schemas import SchemaError
from schemas.chain import NEURONS, WEIGHTS
from schemas.table import all_tables
from warehouse import Warehouse, WarehouseError
from warehouse.catalog import CATALOG_NAME


def neurons(netuid: int, block: int, n: int = 8, stake: int = 10**9) -> pl.DataFrame:
    """One snapshot of `n` uids; alpha_stake = stake + uid so rows are distinguishable."""
    return pl.DataFrame({
        "netuid": [netuid] * n, "block": [block] * n, "uid": list(range(n)),
        "hotkey": [f"5Hot{u}" for u in range(n)], "coldkey": [f"5Cold{u}" for u in range(n)],
        "alpha_stake": [stake + u for u in range(n)], "tao_stake": [7] * n,
        "total_stake": [stake + u + 7 for u in range(n)], "emission": [123_456_789] * n,
        "consensus": [u * 100 for u in range(n)], "incentive": [65535] * n, "dividends": [0] * n,
        "validator_trust": [1] * n, "active": [True] * n, "validator_permit": [u < 2 for u in range(n)],
        "last_update": [block - 1] * n, "block_at_registration": [10] * n,
        "axon_ip": ["127.0.0.1"] * n, "axon_port": [8091] * n, "axon_protocol": [4] * n, "commit_block": [None] * n,
    }).cast(NEURONS.polars_schema())


def weights(netuid: int, block: int, validators: int, miners: int, mechid: int = 0) -> pl.DataFrame:
    v = pl.int_range(validators, eager=True).repeat_by(miners).explode()
    m = pl.Series(list(range(miners)) * validators)
    return pl.DataFrame({"netuid": netuid, "mechid": mechid, "block": block, "validator_uid": v,
                         "miner_uid": m, "weight": (v * 7 + m) % 65536}).cast(WEIGHTS.polars_schema())


def sorted_rows(frame: pl.DataFrame, table=NEURONS) -> pl.DataFrame:
    return frame.sort(list(table.key))


def test_write_twice_leaves_one_copy(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    snap = neurons(1, 7_000)
    wh.write("neurons", snap)
    wh.write("neurons", snap)
    got = wh.read("neurons")
    assert got.schema == NEURONS.polars_schema()
    assert sorted_rows(got).equals(snap)
    assert wh.manifest().live("neurons").height == 1
    assert wh.stats().filter(pl.col("table_name") == "neurons")["rows"].item() == 8


def test_rerun_chunk_replaces_only_its_own_scopes(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    # One write holding two snapshots in the same partition, then a chunk of another block.
    wh.write("neurons", pl.concat([neurons(1, 100), neurons(1, 460)]))
    wh.write("neurons", neurons(1, 820))
    wh.write("neurons", neurons(2, 100))
    # Re-run of block 460 with new stakes and fewer uids: the old snapshot goes entirely.
    wh.write("neurons", neurons(1, 460, n=5, stake=42))
    got = wh.read("neurons", netuid=1)
    per_block = dict(got.group_by("block").len().sort("block").iter_rows())
    assert per_block == {100: 8, 460: 5, 820: 8}
    assert got.filter(pl.col("block") == 460)["alpha_stake"].to_list() == [42, 43, 44, 45, 46]
    assert sorted_rows(got.filter(pl.col("block") == 100)).equals(neurons(1, 100))
    assert wh.read("neurons", netuid=2).height == 8


def test_weights_snapshot_with_fewer_edges_drops_the_old_edges(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write("weights", weights(3, 1_000, validators=4, miners=10))
    wh.write("weights", weights(3, 1_000, validators=2, miners=3))  # two validators cleared theirs
    wh.write("weights", weights(3, 1_000, validators=1, miners=1, mechid=1))  # other mechanism: own scope
    got = wh.read("weights")
    assert got.filter(pl.col("mechid") == 0).height == 6
    assert got.filter(pl.col("mechid") == 1).height == 1


def test_bad_frame_is_rejected_naming_table_and_column(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    bad = neurons(1, 5).with_columns(pl.col("alpha_stake").cast(pl.Float64))
    with pytest.raises(SchemaError, match=r"neurons: column 'alpha_stake' has type Float64, expected UInt64"):
        wh.write("neurons", bad)
    dup = pl.concat([neurons(1, 5), neurons(1, 5).head(1)])
    with pytest.raises(SchemaError, match=r"duplicate key \{'netuid': 1, 'block': 5, 'uid': 0\}"):
        wh.write("neurons", dup)
    assert wh.manifest().version == 0
    assert not (wh.root / "neurons").exists()


# DuckDB's own types for the contract's Arrow types, written out for the contract table (DESIGN.md §4).
NEURONS_DUCKDB_TYPES = [
    ("netuid", "USMALLINT"), ("block", "UBIGINT"), ("uid", "USMALLINT"), ("hotkey", "VARCHAR"),
    ("coldkey", "VARCHAR"), ("alpha_stake", "UBIGINT"), ("tao_stake", "UBIGINT"), ("total_stake", "UBIGINT"),
    ("emission", "UBIGINT"), ("consensus", "USMALLINT"), ("incentive", "USMALLINT"),
    ("dividends", "USMALLINT"), ("validator_trust", "USMALLINT"), ("active", "BOOLEAN"),
    ("validator_permit", "BOOLEAN"), ("last_update", "UBIGINT"), ("block_at_registration", "UBIGINT"),
    ("axon_ip", "VARCHAR"), ("axon_port", "USMALLINT"), ("axon_protocol", "UTINYINT"), ("commit_block", "UBIGINT"),
]


def test_every_table_is_a_typed_view_by_name_even_when_empty(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write("neurons", neurons(1, 5))
    con = duckdb.connect(str(wh.root / CATALOG_NAME), read_only=True)
    try:
        assert con.sql("describe neurons").fetchall()[0][:2] == ("netuid", "USMALLINT")
        assert [r[:2] for r in con.sql("describe neurons").fetchall()] == NEURONS_DUCKDB_TYPES
        assert con.sql("select count(*), sum(alpha_stake) from neurons").fetchall() == [(8, 8 * 10**9 + 28)]
        for name, table in all_tables().items():
            # Oracle: the types DuckDB itself gives an (empty) Arrow table of the contract's schema.
            arrow = pa.Table.from_batches([], schema=table.schema)  # noqa: F841 (scanned by name)
            expected = [(f.name, str(t)) for f, t in zip(table.schema, duckdb.sql("select * from arrow").types,
                                                          strict=True)]
            got = [r[:2] for r in con.sql(f'describe "{name}"').fetchall()]
            assert got == expected, name
            if name != "neurons":
                assert con.sql(f'select count(*) from "{name}"').fetchall() == [(0,)], name
    finally:
        con.close()


def test_catalog_opens_from_another_working_directory(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write("neurons", pl.concat([neurons(1, 5), neurons(1, 9_000)]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    query = (f"import duckdb; con = duckdb.connect({str(wh.root / CATALOG_NAME)!r}, read_only=True); "
             "print(con.sql('select count(*), count(distinct block), max(uid) from neurons').fetchall())")
    out = subprocess.run([sys.executable, "-c", query], cwd=elsewhere, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[(16, 2, 7)]"


def test_compaction_keeps_rows_and_leaves_one_file_per_partition(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    for block in (100, 460, 820, 1_180):
        wh.write("neurons", neurons(1, block))
    wh.write("neurons", neurons(1, 7_300))  # the next block bucket: a partition with one file
    before = sorted_rows(wh.read("neurons"))
    report = wh.compact("neurons")
    assert report.select("partition", "files_before", "rows").rows() == [("netuid=1/block_bucket=0", 4, 32)]
    after = sorted_rows(wh.read("neurons"))
    assert after.equals(before)
    assert sorted(wh.manifest().live("neurons")["partition"].to_list()) == [
        "netuid=1/block_bucket=0", "netuid=1/block_bucket=1"]
    con = duckdb.connect(str(wh.root / CATALOG_NAME), read_only=True)
    assert con.sql("select count(*) from neurons").fetchall() == [(40,)]
    con.close()


def test_retired_files_are_deleted_once_no_reader_can_need_them(tmp_path):
    wh = Warehouse(tmp_path / "wh", retire_grace_s=0)
    wh.write("neurons", neurons(1, 100))
    first = wh.files("neurons")
    wh.write("neurons", neurons(1, 100, stake=5))
    assert not first[0].exists()
    assert wh.manifest().files.height == 1
    on_disk = sorted(p for p in (wh.root / "neurons").rglob("*") if p.is_file())
    assert on_disk == wh.files("neurons")


def test_corrupted_file_error_names_table_and_file(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write("neurons", neurons(1, 100))
    wh.write("neurons", neurons(1, 200))
    damaged = wh.files("neurons")[0]
    damaged.write_bytes(b"not parquet at all" * 10)
    with pytest.raises(WarehouseError, match=rf"table 'neurons': file {damaged} is not readable Parquet"):
        wh.read("neurons")
    problems = wh.verify()
    assert len(problems) == 1 and str(damaged) in problems[0]
    # Writing a snapshot stored in the damaged file must say so too, not silently drop it.
    with pytest.raises(WarehouseError, match=rf"table 'neurons': file {damaged}"):
        wh.write("neurons", neurons(1, 100))


def test_missing_file_error_names_table_and_file(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.write("neurons", neurons(1, 100))
    gone = wh.files("neurons")[0]
    gone.unlink()
    with pytest.raises(WarehouseError, match=rf"table 'neurons': file {gone} is in the manifest but missing"):
        wh.read("neurons")
    assert wh.verify() == [f"table 'neurons': file {gone} is in the manifest but missing on disk"]


def test_named_queries_latest_and_snapshot_at_block(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    for netuid, block in [(1, 100), (1, 460), (1, 9_000), (3, 460)]:
        wh.write("neurons", neurons(netuid, block, stake=block))
    assert wh.latest_blocks().rows() == [(1, 9_000), (3, 460)]
    assert wh.latest_blocks(at_or_before=459).rows() == [(1, 100)]
    snap = wh.snapshot("neurons", 1, block=8_999)
    assert snap["block"].unique().to_list() == [460] and snap.height == 8
    assert wh.snapshot("neurons", 1)["alpha_stake"].min() == 9_000
    assert wh.snapshot("neurons", 7).height == 0
    in_range = wh.read("neurons", block_start=200, block_end=9_000, columns=["netuid", "block"]).unique()
    assert sorted(in_range.rows()) == [(1, 460), (1, 9_000), (3, 460)]
    # The DuckDB side of the same data, for flows that want SQL.
    con = wh.connect()
    assert con.sql("select netuid, max(block) from neurons group by netuid order by netuid").fetchall() == [
        (1, 9_000), (3, 460)]


def test_ingest_log_resume_ranges(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    wh.mark_complete("neurons", 1, 0, 3_599, rows=10 * 1024, source="sim")
    wh.mark_complete("neurons", 1, 3_600, 7_199, rows=10 * 1024, source="sim")
    wh.mark_complete("neurons", 1, 14_400, 17_999, rows=10 * 1024, source="sim")
    wh.mark_complete("neurons", 1, 14_400, 17_999, rows=10 * 1024, source="sim")  # a re-run: still one row
    wh.mark_complete("neurons", 2, 0, 99, rows=5, source="sim")
    wh.mark_complete("weights", 1, 0, 20_000, rows=5, source="sim")
    assert wh.completed_ranges("neurons", 1) == [(0, 7_199), (14_400, 17_999)]
    assert wh.missing_ranges("neurons", 1, 0, 21_599) == [(7_200, 14_399), (18_000, 21_599)]
    assert wh.missing_ranges("neurons", 1, 3_000, 7_000) == []
    assert wh.missing_blocks("neurons", 1, [0, 7_199, 7_200, 14_399, 14_400, 18_000]) == [7_200, 14_399, 18_000]
    assert wh.completed_ranges("neurons", 2) == [(0, 99)]
    log = wh.read("ingest_log")
    assert log.height == 5 and log.schema == all_tables()["ingest_log"].polars_schema()
    with pytest.raises(SchemaError, match="unknown table 'neuron'"):
        wh.mark_complete("neuron", 1, 0, 1, rows=1, source="sim")


def test_string_partition_values_are_escaped_and_read_back(tmp_path):
    from schemas.consensus import EPOCH_RESULTS
    from schemas.evaluation import SCORES

    wh = Warehouse(tmp_path / "wh")
    scores = pl.DataFrame({"epoch_id": ["sn1/b=720 x", "sn1/b=720 x", "sn2"], "netuid": [1, 1, 2],
                           "block": [720, 720, 720], "miner_uid": [0, 1, 0], "hotkey": ["a", "b", "c"],
                           "batch_score": [0.5, 0.25, 1.0], "smoothed_score": [0.1, 0.2, 0.3]},
                          ).cast(SCORES.polars_schema())
    wh.write("scores", scores)
    assert sorted(p.parent.name for p in wh.files("scores")) == ["epoch_id=sn1%2Fb%3D720%20x", "epoch_id=sn2"]
    assert wh.read("scores").sort("epoch_id", "miner_uid").equals(scores.sort("epoch_id", "miner_uid"))
    wh.write("scores", scores.filter(pl.col("epoch_id") == "sn2").with_columns(batch_score=pl.lit(0.0)))
    assert wh.read("scores").filter(pl.col("epoch_id") == "sn2")["batch_score"].to_list() == [0.0]
    assert wh.read("scores").height == 3
    results = EPOCH_RESULTS.empty().vstack(pl.DataFrame(
        {"variant": ["what if: kappa=0.6"], "netuid": [1], "mechid": [0], "block": [720], "uid": [0],
         "stake_weight": [65535], "active": [True], "validator_permit": [True], "consensus": [1],
         "incentive": [2], "dividends": [3], "validator_trust": [4], "server_emission": [5],
         "validator_emission": [6], "emission": [11]}).cast(EPOCH_RESULTS.polars_schema()))
    wh.write("epoch_results", results)
    assert wh.files("epoch_results")[0].parent.parent.parent.name == "variant=what%20if%3A%20kappa%3D0.6"
    assert wh.read("epoch_results").equals(results)
    with pytest.raises(SchemaError, match="series: has no netuid and block columns"):
        wh.latest_blocks("series")


def test_a_damaged_catalog_never_loses_a_write_and_is_rebuilt(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    (wh.root / CATALOG_NAME).write_bytes(b"this is not a DuckDB database" * 100)
    wh.write("neurons", neurons(1, 100))
    assert wh.read("neurons").height == 8
    (wh.root / CATALOG_NAME).unlink()
    rebuilt = Warehouse(wh.root)
    con = duckdb.connect(str(rebuilt.root / CATALOG_NAME), read_only=True)
    assert con.sql("select count(*) from neurons").fetchall() == [(8,)]
    con.close()


def test_files_written_before_a_table_gained_columns_read_them_as_null(tmp_path):
    """An upgrade adds nullable columns (subnets gained the epoch and commit-reveal settings): files
    written by the earlier version are read, and queried through the catalog's views, with nulls there."""
    import duckdb

    from schemas.chain import SUBNET_SETTINGS_COLUMNS, SUBNETS
    from warehouse.catalog import view_sql

    row = {name: None for name in SUBNETS.columns}
    row.update(netuid=1, block=5, subnetwork_n=3, tempo=20, kappa=32767, bonds_moving_avg=900000,
               liquid_alpha_enabled=False, alpha_low=1, alpha_high=2, activity_cutoff=5000,
               max_allowed_validators=8, max_allowed_uids=64, min_allowed_weights=1, max_weight_limit=65535,
               weights_version=0, weights_rate_limit=5, immunity_period=100, commit_reveal_enabled=False)
    old = pl.DataFrame([row], schema=SUBNETS.polars_schema()).drop(SUBNET_SETTINGS_COLUMNS)
    path = tmp_path / "old-subnets.parquet"
    old.write_parquet(path)
    read = Warehouse(tmp_path / "wh")._scan_files(SUBNETS, [path]).collect()
    assert read.columns == SUBNETS.columns and read.schema == SUBNETS.polars_schema()
    assert read["tempo"].to_list() == [20] and read["subnet_epoch_index"].to_list() == [None]
    con = duckdb.connect()
    con.execute(view_sql(SUBNETS, [str(path)]))
    assert con.sql("select tempo, reveal_period_epochs from subnets").fetchall() == [(20, None)]
