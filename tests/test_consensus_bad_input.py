"""Bad consensus inputs through the real file contract (Parquet in tmp_path, DESIGN.md §5).

Each bad input must be rejected with an error naming the table, the key and the problem, and OUT
must be left exactly as it was: sentinel files unchanged, no new files, no temporary directories.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from consensus_cases import EpochCase, Neuron, frames_for, run_reference, split_outputs

from tasks.consensus import ConsensusInputError, run_consensus_files

NETUID, BLOCK = 17, 4242  # distinctive numbers, so a message naming the key is recognisable


def good_case() -> EpochCase:
    neurons = [Neuron(10**9, BLOCK - 1, 0, True), Neuron(2 * 10**9, BLOCK - 1, 0, True), Neuron(0, BLOCK - 1, 0)]
    return EpochCase(block=BLOCK, netuid=NETUID, neurons=neurons,
                     weights={0: [(1, 30000), (2, 65535)], 1: [(2, 65535)]}, bonds={0: [(2, 1000)]},
                     params={"tempo": 100})


def write_inputs(directory: Path, frames: dict[str, pl.DataFrame]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(directory / f"{name}.parquet")


def good_frames() -> dict[str, pl.DataFrame]:
    epochs, neurons, weights, bonds = frames_for([good_case()])
    return {"epochs": epochs, "neurons": neurons, "weights": weights, "bonds": bonds}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


@pytest.fixture
def workdir(tmp_path: Path):
    out = tmp_path / "OUT"
    out.mkdir()
    (out / "neurons.parquet").write_bytes(b"sentinel: previous neurons output")
    (out / "bonds.parquet").write_bytes(b"sentinel: previous bonds output")
    (out / "notes.txt").write_text("kept")
    return tmp_path


def append_row(frame: pl.DataFrame, **changes) -> pl.DataFrame:
    row = {**frame.row(0, named=True), **changes}
    return pl.concat([frame, pl.DataFrame([row], schema=frame.schema)])


def bad_uid(f):
    f["weights"] = append_row(f["weights"], validator_uid=0, miner_uid=7)
    return f


def duplicate_edge(f):
    f["weights"] = pl.concat([f["weights"], f["weights"].head(1)])
    return f


def weights_of_missing_neuron(f):
    f["weights"] = append_row(f["weights"], validator_uid=5, miner_uid=1)
    return f


def epoch_without_neurons(f):
    f["epochs"] = append_row(f["epochs"], block=5151)
    return f


def wrong_type(f):
    f["neurons"] = f["neurons"].with_columns(pl.col("alpha_stake").cast(pl.Float64))
    return f


def out_of_range(f):
    f["epochs"] = f["epochs"].with_columns(pl.lit(1_000_001, pl.UInt64).alias("bonds_moving_avg"))
    return f


def missing_epoch_row(f):
    f["neurons"] = pl.concat([f["neurons"], f["neurons"].with_columns(pl.lit(9999, pl.UInt64).alias("block"))])
    return f


# (mutation, table names accepted, key parts that must appear, problem pattern)
BAD_INPUTS = {
    "uid >= n": (bad_uid, ("epoch_weights", "weights.parquet"), [str(NETUID), str(BLOCK), "7"],
                 r"not a neuron|out of range|>= ?n|≥ ?n|too large|exceeds"),
    "duplicate edge": (duplicate_edge, ("epoch_weights", "weights.parquet"), [str(NETUID), str(BLOCK)],
                       r"duplicate"),
    "weights row for a missing neuron": (weights_of_missing_neuron, ("epoch_weights", "weights.parquet"),
                                         [str(NETUID), str(BLOCK), "5"], r"not a neuron|missing|no neuron|unknown"),
    "epoch without neurons": (epoch_without_neurons, ("epochs", "epochs.parquet"), [str(NETUID), "5151"],
                              r"no neurons|without neurons|missing neurons"),
    "wrong column type": (wrong_type, ("epoch_neurons", "neurons.parquet"), ["alpha_stake"],
                          r"type|Float64|UInt64"),
    "value out of range": (out_of_range, ("epochs", "epochs.parquet"), ["bonds_moving_avg", "1000001"],
                           r"range|> ?1000000|above|exceeds"),
    "missing epoch row": (missing_epoch_row, ("epoch_neurons", "neurons.parquet"), [str(NETUID), "9999"],
                          r"no row in epochs|missing epoch|no epoch|not in epochs"),
}


def assert_untouched(tmp_path: Path, before: dict[str, bytes]) -> None:
    assert snapshot(tmp_path / "OUT") == before, "OUT changed although the input was rejected"
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("IN", "OUT"))
    assert leftovers == [], f"temporary files or directories left behind: {leftovers}"


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_rejected_and_out_untouched(workdir: Path, name: str):
    mutate, tables, key_parts, problem = BAD_INPUTS[name]
    write_inputs(workdir / "IN", mutate(good_frames()))
    before = snapshot(workdir / "OUT")
    with pytest.raises(ConsensusInputError) as err:
        run_consensus_files(workdir / "IN", workdir / "OUT")
    message = str(err.value)
    assert any(t in message for t in tables), f"{name}: message does not name the table {tables}: {message}"
    for part in key_parts:
        assert part in message, f"{name}: message does not name {part!r}: {message}"
    assert re.search(problem, message, re.IGNORECASE), f"{name}: message does not say the problem: {message}"
    assert_untouched(workdir, before)


def test_missing_input_file(workdir: Path):
    frames = good_frames()
    write_inputs(workdir / "IN", frames)
    (workdir / "IN" / "bonds.parquet").unlink()
    before = snapshot(workdir / "OUT")
    with pytest.raises(ConsensusInputError) as err:
        run_consensus_files(workdir / "IN", workdir / "OUT")
    message = str(err.value)
    assert "bonds" in message
    assert re.search(r"does not exist|missing|not found|no such", message, re.IGNORECASE), message
    assert_untouched(workdir, before)


def test_rejected_input_does_not_create_out(tmp_path: Path):
    write_inputs(tmp_path / "IN", duplicate_edge(good_frames()))
    with pytest.raises(ConsensusInputError):
        run_consensus_files(tmp_path / "IN", tmp_path / "OUT")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IN"]


def test_good_input_replaces_the_outputs_with_the_reference_result(workdir: Path):
    """The positive control for the cases above: the same files, unmutated, give the reference's numbers."""
    write_inputs(workdir / "IN", good_frames())
    run_consensus_files(workdir / "IN", workdir / "OUT")
    assert (workdir / "OUT" / "notes.txt").read_text() == "kept"
    neurons = pl.read_parquet(workdir / "OUT" / "neurons.parquet")
    bonds = pl.read_parquet(workdir / "OUT" / "bonds.parquet")
    case = good_case()
    got = split_outputs([case], neurons, bonds)[0]
    want = run_reference([case])[0]
    assert got.outputs == want.outputs
    assert got.bonds == want.bonds
    assert sorted(p.name for p in workdir.iterdir()) == ["IN", "OUT"]
