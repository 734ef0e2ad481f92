"""Benchmark: what today's epoch rules cost the engine (README "Epoch variants").

The same random epochs as benchmarks/consensus.py (64 validators × 256 miners, dense; half classic,
half Yuma3 + liquid alpha), run in one process twice per round, alternating:
- as spec 425 had them (the new columns absent: no commit-reveal mask, liquid alpha on the current
  consensus);
- with every new rule on: commit-reveal with each validator's commit block (some uids registered after
  it, so the mask removes entries), liquid alpha reading the previous consensus (a stored u16 vector per
  epoch), both on every epoch.

    .venv/bin/python benchmarks/epoch_rules.py                 # 2000 epochs, 3 rounds
    .venv/bin/python benchmarks/epoch_rules.py --epochs 200 --rounds 1
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

from benchmarks.consensus import generate_epochs, with_todays_rules  # noqa: E402
from tasks.consensus import run_epochs  # noqa: E402


def timed(inputs: dict[str, pl.DataFrame]) -> float:
    start = time.perf_counter()
    run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description="Engine throughput with and without today's epoch rules")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    half = args.epochs // 2
    parts = [generate_epochs(half, 64, 256, variant, seed=args.seed + i)
             for i, variant in enumerate(("classic", "yuma3_liquid"))]
    for k, part in enumerate(parts):  # distinct epoch keys across the two halves
        part["epochs"] = part["epochs"].with_columns(pl.col("netuid") + 100 * k)
        for name in ("neurons", "weights", "bonds"):
            part[name] = part[name].with_columns(pl.col("netuid") + 100 * k)
    spec425 = {name: pl.concat([p[name] for p in parts]) for name in parts[0]}
    today = with_todays_rules(spec425, args.seed)
    runs = {"spec 425 rules": spec425, "today's rules on": today}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):  # alternating, so load changes hit both alike
        for name, inputs in runs.items():
            best[name] = min(best[name], timed(inputs))
    print(f"engine, in memory, one batch of {2 * half} epochs (64 × 256, half classic, half Yuma3 + liquid alpha), "
          f"best of {args.rounds}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, seconds in best.items():
        print(f"  {name:>17}: {seconds:7.2f} s  {2 * half / seconds:7.0f} epochs/s")
    old, new = best.values()
    print(f"  cost of the new rules: {100 * (new / old - 1):+.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
