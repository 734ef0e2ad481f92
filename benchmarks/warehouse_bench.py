"""Warehouse figures: write throughput, bytes per row, compaction effect, read time.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.warehouse_bench [--snapshots 20] [--root /tmp/wh-bench]

A day of one subnet: `--snapshots` tempo snapshots (360 blocks apart, all in one 7200-block bucket) of
a 1024-uid metagraph (`neurons`) and of 64 validators x 256 miners of weights. Values are random
(seeded) in the chain's ranges, so compression is a pessimistic figure for real metagraphs, whose
stakes and u16 columns repeat far more.
"""

from __future__ import annotations

import argparse
import shutil
import string
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from schemas.chain import NEURONS, WEIGHTS
from warehouse import Warehouse

TEMPO_BLOCKS = 360


def ss58_like(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = np.array(list(string.ascii_letters + string.digits))
    return ["5" + "".join(row) for row in rng.choice(alphabet, size=(n, 47))]


def neurons_snapshot(rng: np.random.Generator, netuid: int, block: int, hotkeys: list[str],
                     coldkeys: list[str]) -> pl.DataFrame:
    n = len(hotkeys)
    alpha = rng.integers(0, 10**15, n, dtype=np.uint64)
    tao = rng.integers(0, 10**13, n, dtype=np.uint64)
    return pl.DataFrame({
        "netuid": np.full(n, netuid), "block": np.full(n, block), "uid": np.arange(n),
        "hotkey": hotkeys, "coldkey": coldkeys, "alpha_stake": alpha, "tao_stake": tao,
        "total_stake": alpha + tao, "emission": rng.integers(0, 10**10, n, dtype=np.uint64),
        "consensus": rng.integers(0, 65536, n), "incentive": rng.integers(0, 65536, n),
        "dividends": rng.integers(0, 65536, n), "validator_trust": rng.integers(0, 65536, n),
        "active": rng.random(n) < 0.9, "validator_permit": np.arange(n) < 64,
        "last_update": block - rng.integers(0, 5000, n), "block_at_registration": rng.integers(0, block, n),
        "axon_ip": [f"10.0.{i // 256}.{i % 256}" for i in range(n)], "axon_port": np.full(n, 8091),
        "axon_protocol": np.full(n, 4),
    }).cast(NEURONS.polars_schema())


def weights_snapshot(rng: np.random.Generator, netuid: int, block: int, validators: int,
                     miners: int) -> pl.DataFrame:
    return pl.DataFrame({
        "netuid": np.full(validators * miners, netuid), "mechid": np.zeros(validators * miners),
        "block": np.full(validators * miners, block),
        "validator_uid": np.repeat(np.arange(validators), miners),
        "miner_uid": np.tile(np.arange(miners), validators),
        "weight": rng.integers(0, 65536, validators * miners),
    }).cast(WEIGHTS.polars_schema())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="wh-bench-")) / "warehouse"
    shutil.rmtree(root, ignore_errors=True)
    wh = Warehouse(root)
    rng = np.random.default_rng(7)
    hotkeys, coldkeys = ss58_like(rng, 1024), ss58_like(rng, 1024)
    blocks = [7_200 * 1000 + TEMPO_BLOCKS * i for i in range(args.snapshots)]
    frames = {
        "neurons": [neurons_snapshot(rng, 1, b, hotkeys, coldkeys) for b in blocks],
        "weights": [weights_snapshot(rng, 1, b, 64, 256) for b in blocks],
    }
    print(f"warehouse at {root}; {args.snapshots} snapshots of netuid 1, one block bucket\n")
    print(f"{'table':8} {'rows/snapshot':>13} {'write rows/s':>13} {'ms/write':>9} {'B/row 1 file':>13} "
          f"{'files':>6} {'bytes':>11} {'compacted':>11} {'B/row':>6} {'read ms':>8}")
    for name, snapshots in frames.items():
        started = time.perf_counter()
        for frame in snapshots:
            wh.write(name, frame)
        elapsed = time.perf_counter() - started
        rows = sum(f.height for f in snapshots)
        live = wh.manifest().live(name)
        first_bytes = live.sort("path")["bytes"][0]
        bytes_before = live["bytes"].sum()
        report = wh.compact(name)
        bytes_after = report["bytes_after"].sum()
        started = time.perf_counter()
        assert wh.read(name).height == rows
        read_ms = (time.perf_counter() - started) * 1000
        print(f"{name:8} {snapshots[0].height:>13,} {rows / elapsed:>13,.0f} "
              f"{elapsed / len(snapshots) * 1000:>9.1f} {first_bytes / snapshots[0].height:>13.2f} "
              f"{live.height:>6} {bytes_before:>11,} {bytes_after:>11,} {bytes_after / rows:>6.2f} "
              f"{read_ms:>8.1f}")
    # A backfill chunk: the same day of another subnet in one write call.
    chunk = pl.concat([f.with_columns(pl.lit(2, pl.UInt16).alias("netuid")) for f in frames["neurons"]])
    started = time.perf_counter()
    wh.write("neurons", chunk)
    elapsed = time.perf_counter() - started
    print(f"\nneurons, {args.snapshots} snapshots in one write: {chunk.height / elapsed:,.0f} rows/s "
          f"({elapsed * 1000:.0f} ms)")
    # Idempotent re-write of one snapshot: the cost of a re-run chunk that replaces its own file.
    started = time.perf_counter()
    wh.write("neurons", frames["neurons"][3])
    print(f"re-write of one neurons snapshot inside a compacted day file: "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")
    print("\nstats():")
    print(wh.stats().filter(pl.col("files") > 0))


if __name__ == "__main__":
    main()
