"""Benchmark: scoring throughput, the batched torch computation vs a per-miner Python loop.

A "forecast" is one miner's answer to one challenge (`horizon` values). For each size it prints
forecasts scored per second by

1. `score_batch`: one tensor computation over miners × challenges × horizon (what the flow uses);
2. `score_per_miner_loop`: the same scores by a Python loop over miners and their answers;
3. the whole scoring phase from RESPONSES rows: `validate_forecasts` (verdicts, dense tensor, copy
   detection) + `score_miners`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scoring.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scoring.py --miners 64,256,1024 --challenges 32 --horizon 24

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

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from tasks.evaluation.challenges import make_challenges  # noqa: E402
from tasks.evaluation.scoring import challenge_tensors, score_batch, score_miners, score_per_miner_loop  # noqa: E402
from tasks.evaluation.series import generate_series  # noqa: E402
from tasks.evaluation.validate import validate_forecasts  # noqa: E402


def best_of(fn, repeats: int) -> float:
    """The fastest of `repeats` runs, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def responses_for(challenges: pl.DataFrame, forecasts: np.ndarray, valid: np.ndarray) -> pl.DataFrame:
    n_miners, n_challenges, _ = forecasts.shape
    miner = np.repeat(np.arange(n_miners), n_challenges)
    return pl.DataFrame({
        "epoch_id": challenges["epoch_id"][0], "miner_uid": miner.astype(np.uint16),
        "query_id": np.tile(challenges["query_id"].to_numpy(), n_miners),
        "hotkey": [f"hotkey-{m}" for m in miner], "status": np.where(valid.reshape(-1), "ok", "timeout"),
        "latency_ms": (100.0 + miner).astype(np.float64), "payload_bytes": np.full(miner.size, 1000, np.uint64),
        "forecast": list(forecasts.reshape(n_miners * n_challenges, -1)), "detail": None,
    }, schema_overrides={"detail": pl.String, "forecast": pl.List(pl.Float64)}).with_columns(
        pl.when(pl.col("status") == "ok").then(pl.col("forecast")).alias("forecast"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", default="64,256")
    parser.add_argument("--challenges", type=int, default=32)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--context", type=int, default=168)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    challenges = make_challenges(generate_series(64, 2000, seed=1), "bench", 1, 7200, args.challenges,
                                 args.context, args.horizon, seed=3)
    truth, scale = challenge_tensors(challenges)
    print(f"load average {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}; "
          f"{args.challenges} challenges × horizon {args.horizon}; best of {args.repeats}")
    print(f"{'miners':>7} {'forecasts':>9} {'batched torch':>22} {'per-miner loop':>22} {'speed-up':>9} "
          f"{'validate + score from rows':>30}")
    rng = np.random.default_rng(0)
    for n_miners in (int(m) for m in args.miners.split(",")):
        noise = rng.standard_normal((n_miners, args.challenges, args.horizon))
        forecasts_np = truth.numpy()[None] + noise * scale.numpy()[None, :, None]
        valid_np = rng.random((n_miners, args.challenges)) < 0.95
        forecasts = torch.from_numpy(np.where(valid_np[..., None], forecasts_np, 0.0))
        valid = torch.from_numpy(valid_np)
        n_forecasts = n_miners * args.challenges

        batched_s = best_of(lambda f=forecasts, v=valid: score_batch(f, v, truth, scale), args.repeats)
        loop_s = best_of(lambda f=forecasts, v=valid: score_per_miner_loop(f, v, truth, scale),
                         max(1, args.repeats // 2))
        agree = torch.allclose(score_batch(forecasts, valid, truth, scale)[2],
                               score_per_miner_loop(forecasts, valid, truth, scale), rtol=0, atol=1e-12)
        rows = responses_for(challenges, forecasts_np, valid_np)

        def whole_phase(rows=rows):
            score_miners(validate_forecasts(rows, challenges), challenges)

        phase_s = best_of(whole_phase, max(1, args.repeats // 2))
        print(f"{n_miners:>7} {n_forecasts:>9} {n_forecasts / batched_s:>12,.0f}/s {batched_s * 1e3:>6.2f} ms "
              f"{n_forecasts / loop_s:>12,.0f}/s {loop_s * 1e3:>6.1f} ms {loop_s / batched_s:>8.0f}× "
              f"{n_forecasts / phase_s:>16,.0f}/s {phase_s * 1e3:>7.1f} ms"
              + ("" if agree else "   (batched and loop DISAGREE)"))


if __name__ == "__main__":
    main()
