"""`yumaflow snapshot` and `yumaflow backfill` as real processes against a real Subtensor runtime.

The chain is spec 218 under Chopsticks on 127.0.0.1 (tests/support/localchain.py), seeded with a subnet
by real extrinsics; flows run on a real Prefect server; the warehouse is real Parquet and DuckDB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.table import by_name
from tests.support.faultproxy import fault_proxy
from tests.support.localchain import rpc_over_http
from tests.support.seed_subnet import seeded_local_chain  # noqa: F401  (module fixture)
from warehouse import Warehouse

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")
EXTRA_BLOCKS = 12
CHAIN_TABLES = ("blocks", "subnets", "neurons", "weights", "bonds")


@pytest.fixture(scope="module")
def chain(seeded_local_chain):  # noqa: F811
    """The seeded chain, grown by EXTRA_BLOCKS empty blocks so a backfill has a range to read."""
    for _ in range(EXTRA_BLOCKS):
        rpc_over_http(seeded_local_chain.chain.http_url, "dev_newBlock", [])
    return seeded_local_chain


def yumaflow(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f"yumaflow {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def test_snapshot_reads_back_exactly_what_was_written(chain, tmp_path, cli_env):
    seed = chain.seed
    wh_dir = tmp_path / "wh"
    yumaflow("snapshot", "--chain", chain.chain.url, "--netuid", str(seed["netuid"]), "--block",
             str(seed["block_number"]), "--warehouse", str(wh_dir), env=cli_env)
    wh = Warehouse(wh_dir)
    neurons = wh.read("neurons").sort("uid")
    assert neurons["block"].unique().to_list() == [seed["block_number"]]
    assert {u: h for u, h in zip(neurons["uid"], neurons["hotkey"], strict=True)} == {
        int(u): n["hotkey"] for u, n in seed["neurons"].items()}
    assert {u: c for u, c in zip(neurons["uid"], neurons["coldkey"], strict=True)} == {
        int(u): n["coldkey"] for u, n in seed["neurons"].items()}
    alpha = dict(zip(neurons["hotkey"], neurons["alpha_stake"], strict=True))
    for hotkey, stake in seed["stakes"].items():
        assert alpha[hotkey] == stake["alpha_rao"]
    weights = wh.read("weights")
    got_rows = {v: [[m, w] for m, w in zip(g["miner_uid"], g["weight"], strict=True)]
                for (v,), g in weights.sort("validator_uid", "miner_uid").group_by("validator_uid",
                                                                                  maintain_order=True)}
    assert got_rows == {int(v): rows for v, rows in seed["weights"].items()}
    block = wh.read("blocks").row(0, named=True)
    assert (block["block_hash"], block["spec_version"]) == (seed["block_hash"], seed["spec_version"])
    assert wh.completed_ranges("neurons", seed["netuid"]) == [(seed["block_number"], seed["block_number"])]
    # The analyst's view: the catalog answers SQL by table name, in the chain's units.
    with duckdb.connect(str(wh_dir / "catalog.duckdb"), read_only=True) as con:
        n, total = con.sql("select count(*), sum(alpha_stake) from neurons").fetchall()[0]
    assert n == len(seed["neurons"]) and total == sum(neurons["alpha_stake"])


def _tables(root: Path) -> dict[str, pl.DataFrame]:
    wh = Warehouse(root)
    out = {name: wh.read(name).sort(list(by_name(name).key)) for name in CHAIN_TABLES}
    out["ingest_log"] = wh.read("ingest_log").drop("completed_at").sort("table_name", "block_start")
    return out


def backfill_args(chain, url: str | None = None) -> tuple[list[str], int, int]:
    seed = chain.seed
    first, last = seed["block_number"] - 2, seed["block_number"] + EXTRA_BLOCKS
    return (["backfill", "--chain", url or chain.chain.url, "--netuid", str(seed["netuid"]), "--start-block",
             str(first), "--end-block", str(last), "--chunk-size", "2", "--concurrency", "2"], first, last)


@pytest.fixture(scope="module")
def reference(chain, tmp_path_factory, prefect_api):
    """An uninterrupted backfill of the range, straight from the node."""
    root = tmp_path_factory.mktemp("reference")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    yumaflow(*backfill_args(chain)[0], "--warehouse", str(root), env=env)
    return root


def test_backfill_killed_midway_and_resumed_equals_an_uninterrupted_run(chain, reference, tmp_path, cli_env):
    seed = chain.seed
    args, first, last = backfill_args(chain)

    # The same backfill, SIGKILLed (with its whole process group) once some chunks are stored.
    killed = tmp_path / "killed"
    proc = subprocess.Popen([BIN, *args, "--warehouse", str(killed)], env=cli_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "_manifest.parquet").exists() and Warehouse(killed).completed_ranges("neurons", seed["netuid"]):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the backfill finished before it could be killed; give it more blocks"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = Warehouse(killed).completed_ranges("neurons", seed["netuid"])
    assert partial and partial != [(first, last)]

    resumed = yumaflow(*args, "--warehouse", str(killed), env=cli_env)
    assert "were already complete" in resumed.stdout
    got, want = _tables(killed), _tables(reference)
    for name in want:
        assert_frame_equal(got[name], want[name], check_row_order=True), name
    neurons = got["neurons"]
    assert neurons.select("block", "uid").is_unique().all()  # no duplicates
    assert sorted(neurons["block"].unique()) == list(range(first, last + 1))  # no gaps


def test_dropped_connections_are_retried_to_the_same_data(chain, reference, tmp_path, cli_env):
    # Every third connection is cut after 20 kB from the node: mid-snapshot, mid-message.
    with fault_proxy(chain.chain.port, lambda n: 20_000 if n % 3 == 1 else None) as proxy:
        args, _, _ = backfill_args(chain, url=proxy.url)
        yumaflow(*args, "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert proxy.dropped >= 2
    got, want = _tables(tmp_path / "wh"), _tables(reference)
    for name in want:
        assert_frame_equal(got[name], want[name].with_columns(
            pl.lit(proxy.url).alias("source")) if name in ("blocks", "ingest_log") else want[name])


def test_a_node_that_always_drops_fails_clearly_and_writes_nothing(chain, tmp_path, cli_env):
    seed = chain.seed
    block = str(seed["block_number"])
    with fault_proxy(chain.chain.port, lambda n: 20_000) as proxy:
        res = subprocess.run([BIN, "backfill", "--chain", proxy.url, "--netuid", str(seed["netuid"]),
                              "--start-block", block, "--end-block", block, "--warehouse", str(tmp_path / "wh")],
                             capture_output=True, text=True, env=cli_env, timeout=600)
    assert res.returncode != 0
    assert proxy.connections >= 5  # the first attempt and four retries
    assert "Connection" in res.stderr or "connection" in res.stderr
    wh = Warehouse(tmp_path / "wh")
    assert all(wh.read(name).height == 0 for name in CHAIN_TABLES)
    assert wh.completed_ranges("neurons", seed["netuid"]) == []


def test_a_recorded_snapshot_replays_offline_to_the_same_warehouse(chain, tmp_path, cli_env):
    seed = chain.seed
    recording = tmp_path / "session.json"
    common = ["--netuid", str(seed["netuid"]), "--block", str(seed["block_number"])]
    live = yumaflow("snapshot", "--chain", chain.chain.url, *common, "--warehouse", str(tmp_path / "live"),
                    "--record", str(recording), env=cli_env)
    assert f"replay:{recording}" in live.stdout
    yumaflow("snapshot", "--chain", f"replay:{recording}", *common, "--warehouse", str(tmp_path / "offline"),
             env=cli_env)
    got, want = _tables(tmp_path / "offline"), _tables(tmp_path / "live")
    for name in want:
        if name in ("blocks", "ingest_log"):  # they name the source they were read from
            got[name], want[name] = got[name].drop("source"), want[name].drop("source")
        assert_frame_equal(got[name], want[name])
    assert got["neurons"].height == len(seed["neurons"])
