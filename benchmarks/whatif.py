"""Benchmark: what-if throughput in scenario-epochs per second (one variant of one subnet for one epoch).

Random subnets in the file contract (benchmarks/consensus.py `generate_epochs`: V validators × M miners,
dense random weights and bonds, Yuma3 with liquid alpha), each with E consecutive epochs, recomputed
under K variants with bonds and permits carried forward (tasks/consensus/whatif.py):

1. batched: one `run_variants` call, every (variant, subnet) lane in each step's engine batch;
2. one at a time: one `run_variants` call per (variant, subnet).

    .venv/bin/python benchmarks/whatif.py                 # 8 variants × 4 subnets × 50 epochs
    .venv/bin/python benchmarks/whatif.py --quick

Figures are wall-clock on a shared machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from benchmarks.consensus import generate_epochs  # noqa: E402
from tasks.consensus.whatif import Variant, run_variants  # noqa: E402

VARIANTS = [
    Variant("baseline"),
    Variant("classic", {"yuma3_enabled": False, "bonds_penalty": 65535}),
    Variant("classic_raw", {"yuma3_enabled": False, "bonds_penalty": 0}),
    Variant("no_liquid", {"liquid_alpha_enabled": False}),
    Variant("liquid_slow", {"alpha_low": 6553, "alpha_high": 19660}),
    Variant("kappa_low", {"kappa": 16384}),
    Variant("kappa_high", {"kappa": 49151}),
    Variant("bma_975", {"bonds_moving_avg": 975_000}),
]


def subnets(n_subnets: int, n_epochs: int, validators: int, miners: int) -> dict[str, pl.DataFrame]:
    """`n_subnets` subnets (netuid 1..), each `n_epochs` consecutive epochs."""
    parts = []
    for s in range(n_subnets):
        frames = generate_epochs(n_epochs, validators, miners, "yuma3_liquid", seed=s)
        parts.append({k: f.with_columns(pl.lit(s + 1, pl.UInt16).alias("netuid")) for k, f in frames.items()})
    return {k: pl.concat([p[k] for p in parts]) for k in parts[0]}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--subnets", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--validators", type=int, default=64)
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="2 variants × 2 subnets × 5 epochs, 8 × 24 uids")
    args = parser.parse_args()
    if args.quick:
        args.variants, args.subnets, args.epochs, args.validators, args.miners = 2, 2, 5, 8, 24
    variants = VARIANTS[:args.variants]
    inputs = subnets(args.subnets, args.epochs, args.validators, args.miners)
    lanes_epochs = len(variants) * args.subnets * args.epochs
    print(f"{len(variants)} variants × {args.subnets} subnets × {args.epochs} epochs = {lanes_epochs} "
          f"scenario-epochs; {args.validators} validators + {args.miners} miners per subnet; "
          f"load average {os.getloadavg()[0]:.2f}")

    first = (pl.col("netuid") == 1) & (pl.col("block") == inputs["epochs"]["block"].min())
    run_variants({k: f.filter(first) for k, f in inputs.items()}, variants[:1])  # warm-up (imports, caches)
    batched = timed(lambda: run_variants(inputs, variants))
    print(f"batched (one engine call per epoch step): {batched:8.2f} s  "
          f"{lanes_epochs / batched:9.1f} scenario-epochs/s")

    def one_at_a_time() -> None:
        for netuid in range(1, args.subnets + 1):
            subnet = {k: f.filter(pl.col("netuid") == netuid) for k, f in inputs.items()}
            for variant in variants:
                run_variants(subnet, [variant])

    alone = timed(one_at_a_time)
    print(f"one variant of one subnet at a time:      {alone:8.2f} s  {lanes_epochs / alone:9.1f} scenario-epochs/s")
    print(f"speed-up of batching: {alone / batched:.1f}×")


if __name__ == "__main__":
    main()
