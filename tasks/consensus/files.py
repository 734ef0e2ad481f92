"""The engine's file contract: IN/*.parquet → OUT/*.parquet (DESIGN.md §5), written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

from schemas.consensus import INPUT_FILES, OUTPUT_FILES
from tasks.consensus.epoch import EpochOutputs, run_epochs
from tasks.consensus.validate import ConsensusInputError


def read_inputs(inputs: Path) -> dict[str, pl.DataFrame]:
    """Read IN/epochs.parquet, neurons.parquet, weights.parquet and bonds.parquet (all must exist;
    bonds may have no rows)."""
    frames = {}
    for name, table in INPUT_FILES.items():
        path = Path(inputs) / name
        if not path.is_file():
            raise ConsensusInputError(f"{table.name}: input file {path} does not exist")
        try:
            frames[name] = pl.read_parquet(path)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # an unreadable file is bad input, named as such (Polars may panic on one)
            raise ConsensusInputError(f"{table.name}: cannot read {path}: {type(err).__name__}: {str(err)[:200]}") \
                from None
    return frames


def run_consensus_files(inputs: Path, output: Path, *, threads: int | None = None) -> EpochOutputs:
    """Validate and compute every epoch in IN, then write OUT/neurons.parquet and OUT/bonds.parquet.

    Nothing is written to OUT unless the whole batch succeeded: both files are written to a temporary
    directory beside OUT and renamed into place at the end. On any error OUT is left as it was
    (including files it already held). `threads`: the engine's edge-step threads (`run_epochs`).
    """
    frames = read_inputs(Path(inputs))
    result = run_epochs(frames["epochs.parquet"], frames["neurons.parquet"],
                        frames["weights.parquet"], frames["bonds.parquet"], threads=threads)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        written = {"neurons.parquet": result.neurons, "bonds.parquet": result.bonds}
        assert set(written) == set(OUTPUT_FILES)
        for name, frame in written.items():
            frame.write_parquet(staging / name)
        if not output.exists():
            os.replace(staging, output)
        else:
            for name in written:
                os.replace(staging / name, output / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result
