"""README guarantee 5 (concurrency): two `yumaflow backfill` processes write one warehouse at once, over
overlapping block ranges of one simulated chain state file, while this process reads the warehouse
in a loop (Warehouse.read, Warehouse.connect and the published catalog.duckdb). No read fails or sees
part of a commit, and the result equals the two backfills run one after the other.

The library-level cases are in tests/test_warehouse_concurrency.py (a second writer that times out
names the holder's PID and command; two writer processes; a reader during writes and compactions; an
analyst holding catalog.duckdb). This file adds the same guarantees for the real flows, across tables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import duckdb
import polars as pl
import pytest

from tests.support.crashkit import BIN, REPO, block_coverage, duplicate_keys, hooked, table_rows
from warehouse import Warehouse
from warehouse.catalog import CATALOG_NAME

pytestmark = pytest.mark.slow
NETUID = 1
RANGES = (("1", "120"), ("61", "180"))  # overlapping: blocks 61..120 are read by both
CHAIN_TABLES = ("blocks", "subnets", "neurons", "weights", "bonds")

# One consistent commit, seen through one manifest version: every snapshot whose neurons are visible
# is whole (uids 0..n-1 as its subnets row says, its blocks row present) and logged complete, and
# every block logged complete has its snapshot. A torn read breaks one of these.
TORN = """
with snap as (select netuid, block, count(*) n, min(uid) lo, max(uid) hi from neurons group by all),
     logged as (select netuid, block_start, block_end from ingest_log where table_name = 'neurons')
select
  (select count(*) from snap left join subnets s using (netuid, block)
     where s.subnetwork_n is null or s.subnetwork_n <> snap.n or snap.lo <> 0 or snap.hi <> snap.n - 1),
  (select count(*) from snap anti join blocks b using (block)),
  (select count(*) from snap where not exists (select 1 from logged l where l.netuid = snap.netuid
     and snap.block between l.block_start and l.block_end)),
  (select count(*) from logged l, range(l.block_start::BIGINT, l.block_end::BIGINT + 1) r(b)
     where not exists (select 1 from snap where snap.netuid = l.netuid and snap.block = r.b)),
  (select count(*) from snap)
"""


def backfill(state, warehouse, first: str, last: str, env: dict, commit_point: str | None = None,
             **popen) -> subprocess.Popen:
    args = ["backfill", "--chain", f"sim:7@{state}", "--netuid", str(NETUID), "--start-block", first,
            "--end-block", last, "--chunk-size", "4", "--warehouse", str(warehouse)]
    command = hooked(args, commit_point=commit_point) if commit_point else [BIN, *args]
    return subprocess.Popen(command, env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finished(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{out}\n{err}"
    return err


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    from tasks.simnet.chain import SimChain

    path = tmp_path_factory.mktemp("sim") / "sim.json"
    SimChain.open(f"sim:7@{path}").close()
    return path


def test_two_backfills_and_readers_at_once_equal_the_sequential_run(state, tmp_path, cli_env):
    reference = tmp_path / "sequential"
    for first, last in RANGES:
        finished(backfill(state, reference, first, last, cli_env))

    root = tmp_path / "concurrent"
    wh = Warehouse(root)
    stop, reads, problems = threading.Event(), {"read": 0, "connect": 0, "catalog": 0, "catalog_failed": 0,
                                           "versions": set()}, []

    def reader() -> None:
        while not stop.is_set():
            try:
                neurons = wh.read("neurons")
                per_snapshot = neurons.group_by("netuid", "block").agg(pl.len(), pl.col("uid").max())
                if neurons.select("netuid", "block", "uid").is_duplicated().any() or \
                        (per_snapshot["uid"].cast(pl.Int64) + 1 != per_snapshot["len"]).any():
                    problems.append(("read", neurons.height))
                reads["read"] += 1
                with wh.connect() as con:
                    reads["versions"].add(wh.manifest().version)
                    *torn, snapshots = con.execute(TORN).fetchall()[0]
                    if any(torn):
                        problems.append(("connect", torn, snapshots))
                    reads["connect"] += 1
                if (root / CATALOG_NAME).exists() and reads["connect"] % 3 == 0:
                    # An analyst's session: while it is open, writers commit and publish later.
                    try:
                        con = duckdb.connect(str(root / CATALOG_NAME), read_only=True)
                    except duckdb.Error as busy:  # the catalog is swapped in whole: an open never fails
                        reads["catalog_failed"] += 1
                        problems.append(("catalog open", repr(busy)))
                        continue
                    with con:
                        *torn, snapshots = con.execute(TORN).fetchall()[0]
                        if any(torn):
                            problems.append(("catalog", torn, snapshots))
                        reads["catalog"] += 1
            except Exception as exc:  # any failure of a reader is a finding
                problems.append(("error", repr(exc)))
            time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        writers = [backfill(state, root, first, last, cli_env) for first, last in RANGES]
        errs = [finished(w) for w in writers]
    finally:
        stop.set()
        thread.join()
    print(f"\nreads during the writes: {reads['read']} read(), {reads['connect']} connect(), "
          f"{reads['catalog']} catalog.duckdb opened and queried ({reads['catalog_failed']} failed opens); manifest "
          f"versions seen: {len(reads['versions'])}")
    assert problems == [] and reads["catalog_failed"] == 0
    # the reads really overlapped the writes
    assert reads["catalog"] > 3 and reads["connect"] > 10 and len(reads["versions"]) > 5
    assert not any("Traceback" in e for e in errs)

    Warehouse(root)  # republishes the catalog if an analyst's session held it at the last write
    assert wh.verify() == [] and duplicate_keys(wh) == {}
    expected, got = table_rows(Warehouse(reference)), table_rows(wh)
    for name in CHAIN_TABLES:
        assert got[name].equals(expected[name]), name
        assert block_coverage(wh, name, NETUID)[0] == [(1, 180)], name
    with duckdb.connect(str(root / CATALOG_NAME), read_only=True) as con:
        assert con.execute(TORN).fetchall()[0] == (0, 0, 0, 0, 180)
        assert con.execute("select count(*) from neurons").fetchall()[0][0] == expected["neurons"].height
    # The shared state file is intact and was not rewritten by the readers of the chain.
    from tasks.simnet.chain import SimChain

    assert SimChain.load(state).head_block() == SimChain.open("sim:7").head_block()


def test_a_second_writer_waits_for_the_lock_then_completes(state, tmp_path, cli_env):
    """A backfill finding the lock held waits (chunks wait up to flows.runners.CHUNK_LOCK_TIMEOUT_S);
    the holder here is a writer paused inside its commit, then killed: the kernel frees the lock."""
    root = tmp_path / "wh"
    marker = tmp_path / "holding"
    holder = backfill(state, root, "1", "4", cli_env, commit_point=f"files_written={marker}",
                      start_new_session=True)
    deadline = time.monotonic() + 120
    while not marker.exists() and holder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), holder.communicate()
    waiting = backfill(state, root, "1", "8", cli_env)
    time.sleep(8)  # it has started and is blocked on the lock (the holder sleeps 60 s at its pause)
    assert waiting.poll() is None
    assert Warehouse(root).manifest().version == 0  # nothing committed while the holder holds the lock
    os.killpg(holder.pid, signal.SIGKILL)
    holder.communicate()
    finished(waiting)
    assert Warehouse(root).completed_ranges("neurons", NETUID) == [(1, 8)]
