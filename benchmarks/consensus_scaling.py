"""Benchmark: how the exact consensus engine scales — one epoch per call, threads, n, and the first compile.

Prints, on the random epochs of `benchmarks/consensus.py` (classic and Yuma3 + liquid alpha):

1. one epoch per call (the validator's projection before a push): ms per `run_epochs` call at n = 256 and
   1,024, best of repeated calls, beside the NumPy float64 port on the same epoch;
2. both cores: epochs/s of a 2,000-epoch batch (half classic, half Yuma3 + liquid) with the engine's edge
   steps on 1 and on 2 threads (`epoch.EDGE_STEP_THREADS`), same process, back to back;
3. scaling with n = 64 … 4,096 uids (validators n/5), dense weights and sparse ones (each validator weights
   ~5 % of the miners, so the sparse path runs): ms per epoch and the peak memory, each size in its own
   process (its peak RSS is its own; the inputs' in-memory size is printed beside it);
4. the compiled kernels' first compile (numba, into an empty cache) and a second process loading them
   from the cache.

    .venv/bin/python benchmarks/consensus_scaling.py            # everything (~4 min on 2 cores)
    .venv/bin/python benchmarks/consensus_scaling.py --quick    # small sizes, a smoke run

Figures are wall-clock on a shared machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from benchmarks.consensus import (  # noqa: E402
    concat_inputs,
    generate_epochs,
    load,
    run_baseline,
    run_engine,
    table,
    timed,
)

SPARSE_FILL = 0.05


def mixed_epochs(count: int, validators: int, miners: int, seed: int) -> dict[str, pl.DataFrame]:
    """`count` epochs, the first half classic, the second Yuma3 + liquid alpha."""
    half = count // 2
    parts = [generate_epochs(half, validators, miners, "classic", seed=seed)] if half else []
    parts.append(generate_epochs(count - half, validators, miners, "yuma3_liquid", seed=seed + 1, first_epoch=half))
    return concat_inputs(parts)


def sparsify(inputs: dict[str, pl.DataFrame], fill: float, seed: int) -> dict[str, pl.DataFrame]:
    """The same epochs with each weight kept with probability `fill` (and each validator's largest one),
    and bonds only where a weight is kept: a subnet whose validators each weight a few miners."""
    rng = np.random.default_rng(seed)
    weights = inputs["weights"]
    keep = rng.random(weights.height) < fill
    keep |= (weights["weight"] == 65535).to_numpy()  # every row keeps its maximum (rows are max-upscaled)
    weights = weights.filter(pl.Series(keep))
    bonds = inputs["bonds"].join(weights.select("netuid", "mechid", "block", "validator_uid", "miner_uid"),
                                 on=["netuid", "mechid", "block", "validator_uid", "miner_uid"], how="semi")
    return {**inputs, "weights": weights, "bonds": bonds}


# ------------------------------------------------------------------------------------------------
# 1. One epoch per call
# ------------------------------------------------------------------------------------------------


def one_epoch_per_call(run_epochs, sizes: list[int], calls: int) -> list[list]:
    rows = []
    for n in sizes:
        v = n // 4
        for variant in ("classic", "yuma3_liquid"):
            epoch = generate_epochs(1, v, n - v, variant, seed=n)
            run_engine(run_epochs, epoch)  # the kernels load (compiled code from the cache) once
            t_engine = min(timed(run_engine, run_epochs, epoch)[0] for _ in range(calls))
            t_numpy = min(timed(run_baseline, epoch)[0] for _ in range(calls))
            rows.append([n, f"{v}x{n - v}", variant, 1e3 * t_engine, 1e3 * t_numpy])
    return rows


# ------------------------------------------------------------------------------------------------
# 2. Both cores
# ------------------------------------------------------------------------------------------------


def thread_scaling(run_epochs, count: int) -> list[list]:
    from tasks.consensus import epoch

    inputs = mixed_epochs(count, 64, 256, seed=5)
    run_engine(run_epochs, inputs)  # warm: kernels loaded, allocator and caches as in steady use
    rows, base = [], None
    for threads in (1, 2, 1, 2):
        epoch.EDGE_STEP_THREADS = threads
        seconds, _ = timed(run_engine, run_epochs, inputs)
        base = base or seconds
        rows.append([threads, count, count / seconds, base / seconds])
    epoch.EDGE_STEP_THREADS = 1
    return rows


# ------------------------------------------------------------------------------------------------
# 3. Scaling with n, each size in its own process
# ------------------------------------------------------------------------------------------------

# The child: generate the epochs, note the high-water RSS, run the engine twice (the first loads the
# compiled kernels), report the second run's time and the process's peak RSS. VmHWM, not ru_maxrss: a
# child's ru_maxrss starts from its parent's at the fork.
_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.consensus_scaling import mixed_epochs, sparsify, SPARSE_FILL
from benchmarks.consensus import run_engine
from tasks.consensus import run_epochs
n, count, layout = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
v = max(1, n // 5)
inputs = mixed_epochs(count, v, n - v, seed=n)
if layout == "sparse":
    inputs = sparsify(inputs, SPARSE_FILL, seed=n)
edges = inputs["weights"].height
input_mb = sum(f.estimated_size() for f in inputs.values()) / 2**20
def high_water_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
before = high_water_mb()
run_engine(run_epochs, inputs)
t0 = time.perf_counter()
run_engine(run_epochs, inputs)
seconds = time.perf_counter() - t0
peak = high_water_mb()
print(json.dumps({"seconds": seconds, "edges": edges, "input_mb": input_mb, "rss_before_mb": before,
                  "peak_rss_mb": peak}))
"""


def scaling(sizes: list[int], epochs_for: dict[int, int]) -> list[list]:
    rows = []
    for layout in ("dense", "sparse"):
        for n in sizes:
            count = epochs_for.get(n, 2)
            p = subprocess.run([sys.executable, "-c", _CHILD, str(REPO), str(n), str(count), layout],
                               capture_output=True, text=True, cwd=REPO,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
            if p.returncode != 0:
                rows.append([layout, n, count, "-", "-", "-", "-", "-", f"FAILED: {p.stderr.strip()[-200:]}"])
                continue
            m = json.loads(p.stdout.strip().splitlines()[-1])
            rows.append([layout, n, count, m["edges"] // count, 1e3 * m["seconds"] / count, count / m["seconds"],
                         round(m["input_mb"]), round(m["rss_before_mb"]), round(m["peak_rss_mb"]), ""])
            print(f"  … {layout} n={n} done ({load()})", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
# 4. The first compile
# ------------------------------------------------------------------------------------------------

_COMPILE_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.consensus import generate_epochs, run_engine
from tasks.consensus import run_epochs
inputs = {"classic": generate_epochs(1, 8, 24, "classic", seed=1),
          "yuma3_liquid": generate_epochs(1, 8, 24, "yuma3_liquid", seed=2)}
t0 = time.perf_counter()
for epoch in inputs.values():
    run_engine(run_epochs, epoch)
print(time.perf_counter() - t0)
"""


def first_compile() -> list[list]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="yumaflow-numba-cache-") as cache:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_CACHE_DIR": cache}
        for label in ("first process (empty cache: compiles)", "second process (loads from the cache)"):
            p = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, str(REPO)], capture_output=True, text=True,
                               cwd=REPO, env=env)
            rows.append([label, float(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else "FAILED"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Consensus engine scaling: one epoch, threads, n, compile")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--sizes", default=None, help="uid counts for the scaling table (default 64..4096)")
    args = parser.parse_args(argv)
    from tasks.consensus import run_epochs

    if args.quick:
        single, calls, batch = [64], 3, 20
        sizes = [int(s) for s in (args.sizes or "64,128").split(",")]
    else:
        single, calls, batch = [256, 1024], 20, 2000
        sizes = [int(s) for s in (args.sizes or "64,128,256,512,1024,2048,4096").split(",")]
    epochs_for = {64: 400, 128: 200, 256: 100, 512: 40, 1024: 12, 2048: 4, 4096: 2}

    print(f"consensus engine scaling: {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"{load()}")
    print(f"\n(1) one epoch per call (best of {calls}), validators n/4; {load()}")
    print(table(one_epoch_per_call(run_epochs, single, calls),
                ["n uids", "validators x miners", "variant", "engine ms/call", "numpy ms/call"]))
    print(f"\n(2) both cores: a {batch}-epoch batch (64x256, half classic, half Yuma3 + liquid), edge steps on "
          f"1 and 2 threads; {load()}")
    print(table(thread_scaling(run_epochs, batch), ["threads", "epochs", "epochs/s", "speed-up"]))
    print(f"\n(3) scaling with n (validators n/5; half classic, half Yuma3 + liquid), each size in its own "
          f"process; sparse: each validator weights ~{SPARSE_FILL:.0%} of miners; {load()}")
    print(table(scaling(sizes, epochs_for),
                ["weights", "n uids", "epochs", "weights/epoch", "ms/epoch", "epochs/s", "inputs MB",
                 "RSS before MB", "peak RSS MB", "note"]))
    print(f"\n(4) the compiled kernels' first compile (1 classic + 1 Yuma3 epoch, whole process); {load()}")
    print(table(first_compile(), ["process", "wall s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
