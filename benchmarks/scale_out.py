"""Scale-out figures: the default runner (Prefect's thread pool) vs a local Dask cluster of 2 workers,
and the peak memory of a consensus range 10× one chunk.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale_out.py            # about 3 minutes here

1. Backfill of `sim:7` (the simulated subnet, netuid 1, blocks 0..200, chunks of 10) into a fresh
   warehouse: blocks/s with threads (concurrency 2), with `--task-runner dask` (a new local cluster,
   start-up included: what one CLI run costs) and on an already running 2-worker cluster (warm).
2. Consensus over 10 copies of those 200 snapshots (2000 epochs, shifted by 201 blocks each, so each
   copy recomputes exactly like the original): epochs/s, chunks of 100, the same three runners.
3. Peak RSS of a consensus process (its own ru_maxrss): one chunk of C snapshots (default 1000); the
   range 10·C in chunks of C (the flow's way); and 10·C as one batch (chunk_epochs = 10·C, what the
   flow did before it was chunked). The copies of step 2 are extended to cover 10·C snapshots.
Every run starts from a copy of the same warehouse; load averages are printed, as the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHAIN, NETUID = "sim:7", 1
FIRST, LAST = 0, 200  # the simulated subnet's history (its head is block 200)
COPIES = 10


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def replicated_snapshots(source: Path, target: Path, copies: int) -> int:
    """`copies` copies of the snapshots 0..199 of `source`, the k-th shifted by 201·k blocks (every block
    column with it: last_update, registration, last epoch), written to a new warehouse; snapshots."""
    import polars as pl

    from warehouse import Warehouse

    src, dst = Warehouse(source), Warehouse(target)
    shift_columns = {"subnets": ["block", "last_mechanism_step_block"],
                     "neurons": ["block", "last_update", "block_at_registration"],
                     "weights": ["block"], "bonds": ["block"]}
    frames = {name: src.read(name, netuid=NETUID, block_end=LAST - 1) for name in shift_columns}
    span = LAST + 1
    for k in range(copies):  # one commit per copy: the replica is built, not measured
        shifted = {name: frame.with_columns(pl.col(c) + k * span for c in shift_columns[name])
                   for name, frame in frames.items()}
        dst.write_many(shifted)
    return frames["subnets"].height * copies


def copy_of(warehouse: Path, scratch: Path, name: str) -> Path:
    target = scratch / name
    shutil.copytree(warehouse, target)
    return target


def timed(label: str, unit: str, amount: int, run) -> float:
    t0 = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - t0
    print(f"  {label:<44} {amount} {unit} in {elapsed:6.1f} s = {amount / elapsed:7.1f} {unit}/s   ({load()})")
    return result


def consensus_child(args: argparse.Namespace) -> None:
    """One consensus run in this process; prints its own peak RSS (the parent's figure)."""
    from flows.consensus import consensus_flow
    from flows.runners import run_flow

    result = run_flow(consensus_flow, task_runner="threads", netuid=NETUID, start_block=args.start,
                      end_block=args.end, warehouse=args.warehouse, chunk_epochs=args.chunk_epochs)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"epochs": result["epochs"], "chunks": result["chunks"], "peak_rss_mib": peak_kib / 1024}))


def peak_rss(warehouse: Path, start: int, end: int, chunk_epochs: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--consensus-child", "--warehouse", str(warehouse),
                          "--start", str(start), "--end", str(end), "--chunk-epochs", str(chunk_epochs)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consensus-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-epochs", type=int, default=100, help="consensus chunk (default 100)")
    parser.add_argument("--memory-chunk", type=int, default=1000, help="C of the memory runs (default 1000)")
    args = parser.parse_args()
    for name, value in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                        ("DO_NOT_TRACK", "true"), ("OMP_NUM_THREADS", "1")):
        os.environ.setdefault(name, value)
    if args.consensus_child:
        consensus_child(args)
        return

    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from flows.consensus import consensus_flow
    from flows.ingest import backfill_flow
    from flows.runners import local_cluster_kwargs, run_flow
    from tasks.chain import open_chain

    print(f"{os.cpu_count()} cores; {load()}")
    scratch = Path(tempfile.mkdtemp(prefix="yumaflow-scale-out-"))
    try:
        with prefect_test_harness(server_startup_timeout=180):
            api = PREFECT_API_URL.value()
            open_chain(CHAIN).close()  # the simulation's history is played once per process: not timed
            blocks = LAST - FIRST + 1

            def backfill(runner: str, root: Path):
                return run_flow(backfill_flow, task_runner=runner, dask_workers=2, chain=CHAIN, netuids=[NETUID],
                                start_block=FIRST, end_block=LAST, warehouse=str(root), chunk_size=10,
                                progress=False)

            print(f"\n1. backfill {CHAIN} netuid {NETUID}, blocks {FIRST}..{LAST}, chunks of 10")
            reference = scratch / "backfill-threads"
            timed("threads (Prefect thread pool, 2 in flight)", "blocks", blocks,
                  lambda: backfill("threads", reference))
            timed("dask, new local cluster of 2 (start-up incl.)", "blocks", blocks,
                  lambda: backfill("dask", scratch / "backfill-dask-cold"))
            with LocalCluster(**local_cluster_kwargs(2)) as cluster, Client(cluster):
                address = cluster.scheduler_address
                backfill(address, scratch / "warm-up")  # workers import Prefect, Polars, play the sim
                timed("dask, running cluster of 2 (warm)", "blocks", blocks,
                      lambda: backfill(address, scratch / "backfill-dask-warm"))

                replica = scratch / "replica"
                copies = max(COPIES, -(-10 * args.memory_chunk // LAST) + 1)
                replicated_snapshots(reference, replica, copies)
                snapshots, end = COPIES * LAST, COPIES * (LAST + 1) - 1  # the first COPIES copies
                print(f"\n2. consensus of {snapshots} snapshots (sim:7 blocks 0..199 ×{COPIES}), chunks of "
                      f"{args.chunk_epochs} epochs")

                def consensus(runner: str, name: str):
                    root = copy_of(replica, scratch, name)
                    return lambda: run_flow(consensus_flow, task_runner=runner, dask_workers=2, netuid=NETUID,
                                            start_block=1, end_block=end, warehouse=str(root),
                                            chunk_epochs=args.chunk_epochs)

                timed("threads (Prefect thread pool, 2 in flight)", "epochs", snapshots,
                      consensus("threads", "consensus-threads"))
                timed("dask, running cluster of 2 (warm)", "epochs", snapshots,
                      consensus(address, "consensus-dask-warm"))
            timed("dask, new local cluster of 2 (start-up incl.)", "epochs", snapshots,
                  consensus("dask", "consensus-dask-cold"))

            c = args.memory_chunk
            print(f"\n3. peak RSS of one consensus process (threads, 2 chunks in flight), C = {c} snapshots")
            env = {**os.environ, "PREFECT_API_URL": api}
            for label, last, chunk in ((f"one chunk: {c} epochs", c, c),
                                       (f"10x: {10 * c} epochs in chunks of {c}", 10 * c, c),
                                       (f"10x as one batch (chunk_epochs {10 * c})", 10 * c, 10 * c)):
                root = copy_of(replica, scratch, f"memory-{last}-{chunk}")
                got = peak_rss(root, 1, last, chunk, env)
                print(f"  {label:<44} {got['epochs']} epochs, {got['chunks']} chunk(s): peak RSS "
                      f"{got['peak_rss_mib']:.0f} MiB   ({load()})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":  # Dask starts its workers with spawn: they import this file without running it
    main()
