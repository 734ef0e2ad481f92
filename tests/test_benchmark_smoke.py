"""The benchmark's two implementations agree within yuma_spec.md §0's float64 tolerances.

Runs the same path as `benchmarks/consensus.py --quick` in process, on a tiny size: random epochs in
the file contract, the exact engine (`tasks.consensus.run_epochs`) and the NumPy float64 baseline.
The inputs avoid the sparse-path quirks of spec §4 that a dense port does not copy (no bond on an
absent weight entry), so what remains is float rounding, which §0 bounds:
Consensus, Incentive, Dividends, ValidatorTrust, StakeWeight ±1 u16; Yuma3 bonds ±1; classic bonds
±64; emissions ±(n + 1e-6·E) rao; permits and active flags exact.
"""

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.consensus import U16_OUTPUTS, deviations, generate_epochs, run_baseline
from schemas.consensus import EPOCH_KEY

run_epochs = pytest.importorskip("tasks.consensus").run_epochs

VALIDATORS, MINERS = 8, 24


@pytest.mark.parametrize("variant, bond_tolerance", [("classic", 64), ("yuma3_liquid", 1)])
@pytest.mark.parametrize("seed", [1, 2])
def test_engine_and_numpy_baseline_agree_within_float_tolerance(variant, bond_tolerance, seed):
    inputs = generate_epochs(6, VALIDATORS, MINERS, variant, seed=seed, quirk_free=True)
    engine_out = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    engine = (engine_out.neurons, engine_out.bonds)
    baseline = run_baseline(inputs)

    dev = deviations(engine, baseline)
    assert dev["uids compared"] == 6 * (VALIDATORS + MINERS)
    for col in U16_OUTPUTS:
        assert dev[col] <= 1, (col, dev)
    assert dev["active mismatches"] == 0 and dev["validator_permit mismatches"] == 0, dev
    assert dev["bond"] <= bond_tolerance, dev

    # Emission rao: ±(n + 1e-6·E) per uid (spec §0 table).
    n = VALIDATORS + MINERS
    key = [*EPOCH_KEY, "uid"]
    joined = (
        engine[0]
        .join(baseline[0], on=key, suffix="_np")
        .join(
            inputs["epochs"].select(*EPOCH_KEY, pl.col("emission").alias("epoch_emission")),
            on=list(EPOCH_KEY),
        )
    )
    for col in ("server_emission", "validator_emission", "emission"):
        gap = (pl.col(col).cast(pl.Int64) - pl.col(f"{col}_np").cast(pl.Int64)).abs()
        over = joined.filter(gap > n + 1e-6 * pl.col("epoch_emission").cast(pl.Float64))
        assert over.height == 0, (col, over.head(3))


def test_generated_inputs_are_the_file_contract():
    from schemas import validate_frame
    from schemas.consensus import INPUT_FILES

    inputs = generate_epochs(3, 4, 12, "classic", seed=3)
    for name, frame in inputs.items():
        validate_frame(frame, INPUT_FILES[f"{name}.parquet"])
    # Every validator weights every miner; weights rows ascend by miner uid (DESIGN.md §5).
    assert inputs["weights"].height == 3 * 4 * 12
    assert (
        inputs["weights"]
        .group_by(*EPOCH_KEY, "validator_uid", maintain_order=True)
        .agg(pl.col("miner_uid").diff().min() > 0)["miner_uid"]
        .all()
    )
