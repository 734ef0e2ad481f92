"""Benchmark: the exact consensus engine against a plain NumPy float64 epoch.

Generates random epochs in the file contract of DESIGN.md §5 (64 validators × 256 miners by default,
dense random u16 weights and bonds, stakes spread 1e9..1e15 rao; classic Yuma and Yuma3 with liquid
alpha), then prints:

1. in memory: engine epochs/s at several batch sizes, and the NumPy baseline on the same epochs;
2. file to file: `yumaflow consensus --inputs IN --output OUT` as a whole process, the baseline doing
   the same, and the Parquet read+write floor alone;
3. peak memory (RSS high-water mark) of each of those processes;
4. how time grows with the number of uids;
5. exactness: the largest |engine − baseline| per output, in u16 and rao.

    .venv/bin/python benchmarks/consensus.py --quick
    .venv/bin/python benchmarks/consensus.py --epochs 2000 --sizes 64,256,1024

Figures are wall-clock on a shared machine; the load average is printed with them.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from benchmarks import numpy_baseline  # noqa: E402
from schemas.consensus import EPOCH_KEY, INPUT_FILES  # noqa: E402

VARIANTS = ("classic", "yuma3_liquid")
U16_OUTPUTS = ("stake_weight", "consensus", "incentive", "dividends", "validator_trust")
RAO_OUTPUTS = ("server_emission", "validator_emission", "emission")
FLAG_OUTPUTS = ("active", "validator_permit")
TEMPO = 360
MAINNET_TAO_WEIGHT = 971_718_665_099_567_868  # ≈ 0.0527 (spec §7)


# ------------------------------------------------------------------------------------------------
# Random epochs in the file contract
# ------------------------------------------------------------------------------------------------


def generate_epochs(
    n_epochs: int,
    n_validators: int = 64,
    n_miners: int = 256,
    variant: str = "classic",
    seed: int = 0,
    first_epoch: int = 0,
    quirk_free: bool = False,
) -> dict[str, pl.DataFrame]:
    """`n_epochs` independent random epochs; returns the four input frames keyed by file stem.

    Each epoch: uids 0..V−1 are validators (alpha stake log-uniform 1e9..1e15 rao, half with root
    stake too), the rest miners (small stake); every validator weights every miner with a random u16
    (row max upscaled to 65535, ~5 % explicit zeros, so a dominant validator's zero can put
    a column's consensus at 0), and holds random u16 bonds in ~90 % of miners.
    About 5 % of validators are inactive, 5 % lack the stored permit, and ~3 % of miners registered
    within the last two tempos (so the outdated-weight and bond masks of §2.5 and §2.8 act).

    `quirk_free` drops the inputs on which the dense float port is known to differ from the sparse
    chain path (§4): every validator holds the stored permit, every miner registered before any
    validator's last update and no weight is 0 (so no column has zero consensus), so no bond sits
    on an absent weight entry.
    """
    rng = np.random.default_rng(seed)
    V, M = n_validators, n_miners
    n = V + M
    e_idx = np.arange(first_epoch, first_epoch + n_epochs)
    block = (5_000_000 + TEMPO * e_idx).astype(np.uint64)
    yuma3 = variant == "yuma3_liquid"
    epochs = pl.DataFrame(
        {
            "netuid": (1 + e_idx % 64).astype(np.uint16),
            "mechid": np.zeros(n_epochs, np.uint8),
            "block": block,
            "tempo": np.full(n_epochs, TEMPO, np.uint16),
            "last_mechanism_step_block": block - TEMPO,
            "owner_uid": pl.Series([0 if e % 2 == 0 else None for e in e_idx], dtype=pl.UInt16),
            "kappa": np.full(n_epochs, 32767, np.uint16),
            "bonds_penalty": np.full(n_epochs, 65535, np.uint16),
            "bonds_moving_avg": np.full(n_epochs, 900_000, np.uint64),
            "yuma3_enabled": np.full(n_epochs, yuma3),
            "liquid_alpha_enabled": np.full(n_epochs, yuma3),
            "alpha_low": np.full(n_epochs, 45875, np.uint16),
            "alpha_high": np.full(n_epochs, 58982, np.uint16),
            "alpha_sigmoid_steepness": np.full(n_epochs, 1000, np.int16),
            "activity_cutoff_factor_milli": np.full(n_epochs, 13889, np.uint64),
            "max_allowed_validators": np.full(n_epochs, 64, np.uint16),
            "stake_threshold": np.zeros(n_epochs, np.uint64),
            "tao_weight": np.full(n_epochs, MAINNET_TAO_WEIGHT, np.uint64),
            "emission": rng.integers(100_000_000_000, 400_000_000_000, n_epochs).astype(np.uint64),
        }
    )

    is_validator = np.arange(n) < V
    shape = (n_epochs, n)
    alpha = np.where(is_validator, 10 ** rng.uniform(9, 15, shape), 10 ** rng.uniform(5, 9, shape))
    tao = np.where(is_validator & (rng.random(shape) < 0.5), 10 ** rng.uniform(9, 14, shape), 0.0)
    b = block[:, None].astype(np.int64)
    last_update = np.where(is_validator, b - rng.integers(0, 2 * TEMPO, shape), b - rng.integers(0, 5000, shape))
    inactive = is_validator & (rng.random(shape) < 0.05)
    last_update = np.where(inactive, b - rng.integers(5_001, 20_000, shape), last_update)
    # Quirk-free miners registered before any validator's last update (no outdated-weight mask).
    miner_age = (20_001 if quirk_free else 10_000, 1_000_000)
    registered = np.where(
        is_validator, b - rng.integers(100_000, 1_000_000, shape), b - rng.integers(*miner_age, shape)
    )
    if not quirk_free:
        recent = ~is_validator & (rng.random(shape) < 0.03)
        registered = np.where(recent, b - rng.integers(0, 2 * TEMPO, shape), registered)
    permit = is_validator & ((rng.random(shape) >= 0.05) | quirk_free)
    key_cols = {"netuid": epochs["netuid"].to_numpy(), "mechid": epochs["mechid"].to_numpy(), "block": block}
    neurons = pl.DataFrame(
        {
            **{k: np.repeat(v, n) for k, v in key_cols.items()},
            "uid": np.tile(np.arange(n, dtype=np.uint16), n_epochs),
            "alpha_stake": alpha.astype(np.uint64).ravel(),
            "tao_stake": tao.astype(np.uint64).ravel(),
            "last_update": last_update.astype(np.uint64).ravel(),
            "block_at_registration": registered.astype(np.uint64).ravel(),
            "validator_permit": permit.ravel(),
        }
    )

    weight = rng.integers(0, 65536, (n_epochs, V, M), dtype=np.int64)
    if not quirk_free:
        weight[rng.random(weight.shape) < 0.05] = 0
    np.put_along_axis(weight, weight.argmax(axis=2)[..., None], 65535, axis=2)
    edge_keys = {k: np.repeat(v, V * M) for k, v in key_cols.items()}
    validator_uid = np.tile(np.repeat(np.arange(V, dtype=np.uint16), M), n_epochs)
    miner_uid = np.tile(np.tile(np.arange(V, n, dtype=np.uint16), V), n_epochs)
    weights = pl.DataFrame(
        {
            **edge_keys,
            "validator_uid": validator_uid,
            "miner_uid": miner_uid,
            "weight": weight.astype(np.uint16).ravel(),
        }
    )

    bond = rng.integers(1, 65536, (n_epochs, V, M), dtype=np.int64)
    bond[rng.random(bond.shape) < 0.1] = 0
    bond[~permit[:, :V]] = 0  # the chain clears bond rows of uids without a permit (§2.12)
    bonds = pl.DataFrame(
        {
            **edge_keys,
            "validator_uid": validator_uid,
            "miner_uid": miner_uid,
            "bond": bond.astype(np.uint16).ravel(),
        }
    ).filter(pl.col("bond") > 0)
    frames = {"epochs": epochs, "neurons": neurons, "weights": weights, "bonds": bonds}
    # Columns the contract gained later are left out: the engine reads them as their spec-425 defaults.
    return {name: frame.cast({c: t for c, t in INPUT_FILES[f"{name}.parquet"].polars_schema().items()
                              if c in frame.columns}) for name, frame in frames.items()}


def concat_inputs(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    return {name: pl.concat([p[name] for p in parts]) for name in parts[0]}


def first_epochs(inputs: dict[str, pl.DataFrame], count: int) -> dict[str, pl.DataFrame]:
    keys = inputs["epochs"].head(count).select(EPOCH_KEY)
    return {name: frame.join(keys, on=list(EPOCH_KEY), how="semi") for name, frame in inputs.items()}


def write_inputs(inputs: dict[str, pl.DataFrame], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in inputs.items():
        frame.write_parquet(directory / f"{name}.parquet")


# ------------------------------------------------------------------------------------------------
# The two implementations, in memory
# ------------------------------------------------------------------------------------------------


def load_engine():
    """`tasks.consensus.run_epochs`, or None with the reason when the engine is not there yet."""
    try:
        from tasks.consensus import run_epochs

        return run_epochs, None
    except Exception as exc:  # an unfinished engine may fail in any way on import
        return None, f"{type(exc).__name__}: {exc}"


def run_engine(run_epochs, inputs):
    out = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    return out.neurons, out.bonds


def run_baseline(inputs):
    return numpy_baseline.run_batch(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])


def timed(fn, *args, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def deviations(engine: tuple[pl.DataFrame, pl.DataFrame], baseline: tuple[pl.DataFrame, pl.DataFrame]) -> dict:
    """Largest |engine − baseline| per output (u16 or rao), flag mismatches, and bond deviation."""
    key = [*EPOCH_KEY, "uid"]
    joined = engine[0].join(baseline[0], on=key, how="inner", suffix="_np")
    result = {"uids compared": joined.height}
    for col in U16_OUTPUTS + RAO_OUTPUTS:
        diff = (pl.col(col).cast(pl.Int64) - pl.col(f"{col}_np").cast(pl.Int64)).abs()
        result[col] = joined.select(diff.max()).item()
    for col in FLAG_OUTPUTS:
        result[f"{col} mismatches"] = joined.filter(pl.col(col) != pl.col(f"{col}_np")).height
    edge = [*EPOCH_KEY, "validator_uid", "miner_uid"]
    bonds = engine[1].join(baseline[1], on=edge, how="full", coalesce=True, suffix="_np").fill_null(0)
    result["bond"] = (
        bonds.select((pl.col("bond").cast(pl.Int64) - pl.col("bond_np").cast(pl.Int64)).abs().max()).item() or 0
    )
    return result


# ------------------------------------------------------------------------------------------------
# File to file, as whole processes
# ------------------------------------------------------------------------------------------------

# Runs a command as its only child and reports that child's peak RSS (RUSAGE_CHILDREN of a fresh
# process is exactly the child's high-water mark).
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.perf_counter() - t0\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "print(json.dumps({'wall_s': wall, 'peak_rss_mb': rss, 'rc': p.returncode,\n"
    "                  'stderr': p.stderr[-2000:]}))\n"
)

_PARQUET_FLOOR = (
    "import sys, pathlib, polars as pl\n"
    "src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
    "dst.mkdir(parents=True, exist_ok=True)\n"
    "frames = {n: pl.read_parquet(src / f'{n}.parquet') for n in ('epochs', 'neurons', 'weights', 'bonds')}\n"
    "frames['neurons'].write_parquet(dst / 'neurons.parquet')\n"
    "frames['bonds'].write_parquet(dst / 'bonds.parquet')\n"
)


def engine_command(inputs: Path, output: Path) -> tuple[list[str], str]:
    """The engine's CLI if the console script has the subcommand, else the library call."""
    yumaflow = REPO / ".venv" / "bin" / "yumaflow"
    if yumaflow.exists():
        probe = subprocess.run([str(yumaflow), "consensus", "--help"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [
                str(yumaflow),
                "consensus",
                "--inputs",
                str(inputs),
                "--output",
                str(output),
            ], "yumaflow consensus"
    code = (
        "import sys; from pathlib import Path; from tasks.consensus import run_consensus_files; "
        "run_consensus_files(Path(sys.argv[1]), Path(sys.argv[2]))"
    )
    return [
        sys.executable,
        "-c",
        code,
        str(inputs),
        str(output),
    ], "python -c run_consensus_files (CLI not wired)"


def measure_process(cmd: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, cwd=REPO, env=env)
    if p.returncode != 0:
        return {"wall_s": float("nan"), "peak_rss_mb": float("nan"), "rc": p.returncode, "stderr": p.stderr}
    return json.loads(p.stdout.strip().splitlines()[-1])


def with_todays_rules(inputs: dict[str, pl.DataFrame], seed: int) -> dict[str, pl.DataFrame]:
    """The same epochs with every rule after spec 425 on (README "Epoch variants"): commit-reveal with a
    commit block per validator ~500,000 blocks before the epoch (miners register 10^4..10^6 blocks before
    it, so about half the columns are masked), and liquid alpha reading a stored previous consensus."""
    rng = np.random.default_rng(seed)
    neurons = inputs["neurons"]
    block = neurons["block"].to_numpy().astype(np.int64)
    commit = np.where(neurons["validator_permit"].to_numpy(), block - 500_000 + rng.integers(0, 50, len(block)), -1)
    return {
        **inputs,
        "epochs": inputs["epochs"].with_columns(commit_reveal_enabled=pl.lit(True),
                                                liquid_alpha_consensus_mode=pl.lit(1, pl.UInt8)),
        "neurons": neurons.with_columns(
            previous_consensus=pl.Series(rng.integers(0, 65536, neurons.height), dtype=pl.UInt16),
            commit_block=pl.Series(np.where(commit >= 0, commit, 0), dtype=pl.UInt64)
            .set(pl.Series(commit < 0), None)),
    }


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bench_in_memory(run_epochs, V, M, batches, seed) -> tuple[list[list], dict]:
    """Epochs/s of both implementations per variant and batch size; deviations on the largest batch.

    One variant's epochs are held at a time (2000 epochs of 64 × 256 are ~33M weight edges). The
    deviations are reported twice: on the realistic inputs, and on `quirk_free` inputs of the same
    shape, where what remains is float rounding alone (spec §0) rather than the sparse-path rules
    the dense port does not copy (spec §4).
    """
    rows, exactness = [], {}
    for i, variant in enumerate(VARIANTS):
        t0 = time.perf_counter()
        inputs = generate_epochs(max(batches), V, M, variant, seed=seed + i)
        print(
            f"  … generated {max(batches)} {variant} epochs in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        for batch in batches:
            part = first_epochs(inputs, batch)
            repeat = 3 if batch <= 10 else 1
            t_np, base = timed(run_baseline, part, repeat=repeat)
            if run_epochs is not None:
                t_eng, eng = timed(run_engine, run_epochs, part, repeat=repeat)
                rules = "-"
                if batch == max(batches):
                    exactness[variant] = deviations(eng, base)
                    t_rules, _ = timed(run_engine, run_epochs, with_todays_rules(part, seed), repeat=repeat)
                    rules = batch / t_rules
                rows.append([variant, batch, batch / t_eng, rules, batch / t_np, t_np / t_eng])
            else:
                rows.append([variant, batch, "-", "-", batch / t_np, "-"])
            print(f"  … {variant} batch {batch} done ({load()})", file=sys.stderr, flush=True)
        del inputs
        if run_epochs is not None:
            clean = generate_epochs(min(200, max(batches)), V, M, variant, seed=seed + 20 + i, quirk_free=True)
            exactness[f"{variant} quirk-free"] = deviations(run_engine(run_epochs, clean), run_baseline(clean))
    return rows, exactness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exact consensus engine vs NumPy float64 baseline")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run in well under a minute")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for the file-to-file run (default 2000)")
    parser.add_argument("--sizes", default=None, help="uid counts for the scaling run (default 64,256,1024)")
    parser.add_argument("--batches", default=None, help="in-memory batch sizes (default 1,100,2000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated Parquet files here")
    args = parser.parse_args(argv)

    if args.quick:
        V, M = 16, 64
        batches = [int(b) for b in (args.batches or "1,10,50").split(",")]
        file_epochs = args.epochs or 50
        sizes = [int(s) for s in (args.sizes or "64,128").split(",")]
        scale_epochs = {64: 10, 128: 10}
    else:
        V, M = 64, 256
        batches = [int(b) for b in (args.batches or "1,100,2000").split(",")]
        file_epochs = args.epochs or 2000
        sizes = [int(s) for s in (args.sizes or "64,256,1024").split(",")]
        scale_epochs = {64: 200, 256: 100, 1024: 20}

    print(
        f"consensus benchmark: {V} validators x {M} miners (n = {V + M}), OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} cores, {load()}"
    )
    run_epochs, why = load_engine()
    if run_epochs is None:
        print(f"engine not available ({why}): baseline only")

    # 1 and 5: in memory, both variants, and the deviation on the largest batch.
    rows, exactness = bench_in_memory(run_epochs, V, M, batches, args.seed)
    print("\n(1) in memory, epochs/s (best of 3 for batches ≤ 10); the largest batch also with every rule after spec"
          " 425 on (commit-reveal mask, liquid alpha on the previous consensus; README \"Epoch variants\")")
    print(table(rows, ["variant", "batch", "engine ep/s", "today's rules ep/s", "numpy ep/s",
                       "engine speed / numpy"]))

    if exactness:
        print(
            f"\n(5) exactness: max |engine − numpy| on the {max(batches)}-epoch batch, and on "
            f"{min(200, max(batches))} quirk-free epochs (u16 for scores and bonds, rao for emissions)"
        )
        cols = list(next(iter(exactness.values())))
        print(table([[c] + [exactness[v][c] for v in exactness] for c in cols], ["output"] + list(exactness)))

    # 2 and 3: file to file as whole processes.
    work = Path(tempfile.mkdtemp(prefix="yumaflow-bench-"))
    try:
        half = file_epochs // 2
        files_in = work / "in"
        write_inputs(
            concat_inputs(
                [
                    generate_epochs(half, V, M, "classic", seed=args.seed + 10),
                    generate_epochs(file_epochs - half, V, M, "yuma3_liquid", seed=args.seed + 11, first_epoch=half),
                ]
            ),
            files_in,
        )
        size_mb = sum(f.stat().st_size for f in files_in.iterdir()) / 1e6
        print(
            f"\n(2, 3) file to file: {file_epochs} epochs (half classic, half Yuma3 + liquid alpha), "
            f"{size_mb:.0f} MB of input Parquet; whole processes; {load()}"
        )
        runs = [
            (
                "Parquet read+write floor",
                [sys.executable, "-c", _PARQUET_FLOOR, str(files_in), str(work / "out_floor")],
            )
        ]
        if run_epochs is not None:
            cmd, label = engine_command(files_in, work / "out_engine")
            runs.append((f"engine: {label}", cmd))
        runs.append(
            (
                "numpy baseline (python -m benchmarks.numpy_baseline)",
                [
                    sys.executable,
                    "-m",
                    "benchmarks.numpy_baseline",
                    "--inputs",
                    str(files_in),
                    "--output",
                    str(work / "out_numpy"),
                ],
            )
        )
        file_rows = []
        for label, cmd in runs:
            m = measure_process(cmd)
            note = "" if m["rc"] == 0 else f"FAILED rc={m['rc']}: {m['stderr'].strip().splitlines()[-1:]}"
            file_rows.append(
                [
                    label,
                    m["wall_s"],
                    file_epochs / m["wall_s"] if m["rc"] == 0 else "-",
                    m["peak_rss_mb"],
                    note,
                ]
            )
        print(table(file_rows, ["process", "wall s", "epochs/s", "peak RSS MB", "note"]))
        if args.keep:
            shutil.copytree(files_in, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # 4: scaling with n (validators n/5, miners 4n/5), in memory, classic and Yuma3 mixed half/half.
    print(f"\n(4) scaling with n (validators = n/5, miners = 4n/5), in memory; {load()}")
    scale_rows = []
    for n in sizes:
        v = max(1, n // 5)
        count = scale_epochs.get(n, 20)
        inputs = concat_inputs(
            [
                generate_epochs(count // 2, v, n - v, "classic", seed=args.seed + n),
                generate_epochs(
                    count - count // 2,
                    v,
                    n - v,
                    "yuma3_liquid",
                    seed=args.seed + n + 1,
                    first_epoch=count // 2,
                ),
            ]
        )
        t_np, _ = timed(run_baseline, inputs)
        if run_epochs is not None:
            t_eng, _ = timed(run_engine, run_epochs, inputs)
            scale_rows.append([n, count, 1e3 * t_eng / count, 1e3 * t_np / count, count / t_eng, count / t_np])
        else:
            scale_rows.append([n, count, "-", 1e3 * t_np / count, "-", count / t_np])
    print(table(scale_rows, ["n uids", "epochs", "engine ms/epoch", "numpy ms/epoch", "engine ep/s", "numpy ep/s"]))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nthis process's peak RSS: {own:.0f} MB; {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
