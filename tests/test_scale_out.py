"""Scale-out (flows/runners.py): the same flows on Prefect's thread pool and on Dask give the same warehouse.

Real parts throughout: the simulated subnet `sim:7`, a real Prefect server (`prefect_api`), real Dask
clusters of two worker processes on 127.0.0.1, real Parquet warehouses compared table by table, row
for row. One killed worker (SIGKILL, mid-backfill) must not change the result.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from flows.consensus import consensus_flow
from flows.ingest import backfill_flow
from flows.runners import local_cluster_kwargs, run_flow, task_runner_for
from flows.settings import load_settings
from flows.whatif import whatif_flow
from schemas.table import all_tables
from warehouse import Warehouse

pytestmark = pytest.mark.slow

CHAIN, NETUID = "sim:7", 1
FIRST, LAST, CHUNK_SIZE = 150, 200, 3  # 51 snapshots in 17 chunks
VOLATILE = {"ingest_log": ["completed_at"]}  # when a range was logged, not what


def backfill(warehouse: Path, task_runner: str) -> dict:
    return run_flow(backfill_flow, task_runner=task_runner, dask_workers=2, chain=CHAIN, netuids=[NETUID],
                    start_block=FIRST, end_block=LAST, warehouse=str(warehouse), chunk_size=CHUNK_SIZE,
                    progress=False)


def tables(root: Path) -> dict[str, pl.DataFrame]:
    """Every table of the warehouse, sorted by its key."""
    wh = Warehouse(root)
    return {name: wh.read(name).drop(VOLATILE.get(name, [])).sort(list(table.key))
            for name, table in sorted(all_tables().items())}


def assert_same_warehouse(got: Path, want: Path) -> None:
    got_tables, want_tables = tables(got), tables(want)
    for name, frame in want_tables.items():
        try:
            assert_frame_equal(got_tables[name], frame, check_exact=True)
        except AssertionError as differs:
            raise AssertionError(f"table {name} differs from {want}: {differs}") from None


def descendants() -> set[int]:
    """Live descendant processes, except multiprocessing's resource tracker: Python starts that one
    helper with the first worker process it spawns and keeps it for the life of this process."""
    found = set()
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "multiprocessing.resource_tracker" not in " ".join(
                    process.cmdline()):
                found.add(process.pid)
        except psutil.Error:
            pass  # ended while we looked
    return found


def assert_no_new_processes(before: set[int], wait_s: float = 15.0) -> None:
    """Every process started since `before` has ended (a Dask cluster closes its workers asynchronously)."""
    deadline = time.monotonic() + wait_s
    while (left := descendants() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        described = []
        for pid in left:  # named in the failure, then stopped so they do not leak into the session
            try:
                process = psutil.Process(pid)
                described.append(" ".join(process.cmdline()[:4]))
                process.kill()
            except psutil.Error:
                pass
        raise AssertionError(f"processes left running: {described}")


@pytest.fixture(scope="module", autouse=True)
def no_leftover_processes(prefect_api):
    """No Dask scheduler, nanny or worker outlives this module (the Prefect server is older than it)."""
    before = descendants()
    yield
    assert_no_new_processes(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, prefect_api) -> tuple[Path, dict]:
    """The backfill on the default runner (Prefect's thread pool, in this process)."""
    root = tmp_path_factory.mktemp("threads") / "wh"
    return root, backfill(root, "threads")


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of two worker processes, reached by address like any existing cluster."""
    from distributed import Client, LocalCluster

    with LocalCluster(**local_cluster_kwargs(2)) as local, Client(local) as client:
        yield local, client


def test_the_task_runner_setting_is_validated_with_the_bad_value_named():
    assert load_settings(task_runner="dask://127.0.0.1:8786").task_runner == "tcp://127.0.0.1:8786"
    with pytest.raises(ValueError, match=r"setting 'task_runner'.*task runner 'ray' is not one of: threads"):
        load_settings(task_runner="ray")
    with pytest.raises(ValueError, match=r"task runner 'tcp://host' is not one of"):
        task_runner_for("tcp://host")
    assert type(task_runner_for("threads")).__name__ == "ThreadPoolTaskRunner"
    assert type(task_runner_for("dask")).__name__ == "DaskTaskRunner"  # built lazily: no cluster yet


def test_backfill_on_a_local_dask_cluster_equals_the_default_runner(reference, tmp_path):
    ref_root, ref_result = reference
    before = descendants()
    result = backfill(tmp_path / "wh", "dask")
    assert result == ref_result and result["blocks_read"] == LAST - FIRST + 1
    assert_same_warehouse(tmp_path / "wh", ref_root)
    assert Warehouse(tmp_path / "wh").completed_ranges("neurons", NETUID) == [(FIRST, LAST)]
    assert tables(ref_root)["neurons"]["block"].n_unique() == LAST - FIRST + 1
    # The runner's own cluster (scheduler, nannies, workers) is gone once the flow has returned.
    assert_no_new_processes(before)


def test_consensus_in_chunks_on_dask_equals_the_default_runner_and_one_chunk(reference, cluster, tmp_path):
    ref_root, _ = reference
    local, _client = cluster
    runs = {}
    for name, runner, chunk_epochs in (("one_chunk", "threads", 1000), ("threads", "threads", 7),
                                       ("dask", local.scheduler_address, 7)):
        root = tmp_path / name
        shutil.copytree(ref_root, root)
        runs[name] = root, run_flow(consensus_flow, task_runner=runner, netuid=NETUID, start_block=FIRST + 1,
                                    end_block=LAST, warehouse=str(root), chunk_epochs=chunk_epochs)
    # Snapshots 150..199 are the inputs of the epochs at 151..200: 50 epochs, in 8 chunks of 7 or one.
    assert [r["chunks"] for _root, r in runs.values()] == [1, 8, 8]
    for _root, result in runs.values():
        assert result["epochs"] == LAST - FIRST
        parity = result["parity"]
        assert parity.height == 7 and (parity["equal"] == parity["uids"]).all() and parity["uids"].min() > 0
        assert_frame_equal(result["parity"], runs["one_chunk"][1]["parity"])
        assert result["compared_epochs"] == runs["one_chunk"][1]["compared_epochs"] > 0
    one_chunk = tables(runs["one_chunk"][0])
    assert one_chunk["epoch_results"]["block"].n_unique() == LAST - FIRST
    assert_same_warehouse(runs["threads"][0], runs["one_chunk"][0])
    assert_same_warehouse(runs["dask"][0], runs["one_chunk"][0])


def test_whatif_chunked_by_variant_on_dask_equals_one_batch(cluster, tmp_path):
    local, _client = cluster
    variants = ["classic:yuma3_enabled=false", "liquid:liquid_alpha_enabled=false", "kappa:kappa=16384"]
    one = run_flow(whatif_flow, task_runner="threads", warehouse=str(tmp_path / "one"), variants=variants,
                   scenario="weight_copier", variants_per_chunk=4)
    split = run_flow(whatif_flow, task_runner=local.scheduler_address, warehouse=str(tmp_path / "split"),
                     variants=variants, scenario="weight_copier", variants_per_chunk=1)
    assert (one["chunks"], split["chunks"]) == (1, 4)
    assert split["variants"] == one["variants"] == ["weight_copier/" + v for v in
                                                    ("baseline", "classic", "liquid", "kappa")]
    assert_frame_equal(split["comparison"], one["comparison"])
    assert_frame_equal(split["dividends"], one["dividends"])
    assert_same_warehouse(tmp_path / "split", tmp_path / "one")


def test_a_dask_worker_killed_mid_backfill_changes_nothing(reference, cluster, tmp_path):
    ref_root, ref_result = reference
    local, client = cluster
    root = tmp_path / "wh"
    pids = client.run(os.getpid)  # worker address -> pid
    killed: list[tuple[str, int, tuple]] = []
    stop = threading.Event()

    def kill_a_busy_worker_once_a_chunk_is_stored() -> None:
        while not stop.is_set():
            stored = (root / "_manifest.parquet").exists() and Warehouse(root).completed_ranges("neurons", NETUID)
            busy = [(addr, keys) for addr, keys in client.processing().items() if keys and addr in pids]
            if stored and busy:
                addr, keys = busy[0]
                os.kill(pids[addr], signal.SIGKILL)
                killed.append((addr, pids[addr], tuple(keys)))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker_once_a_chunk_is_stored, daemon=True)
    killer.start()
    try:
        result = backfill(root, local.scheduler_address)
    finally:
        stop.set()
        killer.join()
    assert killed, "the backfill finished before a worker could be killed; give it more chunks"
    assert killed[0][1] not in client.run(os.getpid).values()  # the nanny started a new worker process
    assert result == ref_result
    assert_same_warehouse(root, ref_root)
    assert Warehouse(root).verify() == []
