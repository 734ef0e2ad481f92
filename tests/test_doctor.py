"""`yumaflow doctor` against a recording of mainnet (spec 343), the simulated subnet, a runtime that
dropped a field yumaflow needs (an edited copy of the real metadata), and the real spec-218 runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.chain import open_chain
from tasks.chain.doctor import diagnose
from tests.support import metadata_edit
from tests.support.recordings import load_recording, replay_edited
from tests.support.seed_subnet import seeded_local_chain  # noqa: F401

BIN = str(Path(sys.executable).parent / "yumaflow")


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, "doctor", *args], capture_output=True, text=True, timeout=300)


def test_doctor_on_the_mainnet_recording_passes_every_item(shared_dir):
    out = _doctor("--chain", f"replay:{shared_dir / 'chain/recordings/mainnet-spec343/metagraph.json'}")
    assert out.returncode == 0, out.stderr
    assert "spec 343 at block 6852690 (metadata V15" in out.stdout
    def status(item: str) -> str:
        (line,) = [line for line in out.stdout.splitlines() if f" {item} " in line]
        return line.split(item)[1].split()[0]

    assert status("SubnetInfoRuntimeApi_get_selective_mechagraph") == "ok"
    assert status("SubtensorModule.SubnetEpochIndex") == "absent"  # a later runtime's item: null, not guessed
    assert status("DrandPriority") == status("CheckMetadataHash") == "ok"
    assert status("SubtensorModule.commit_timelocked_mechanism_weights") == "ok"
    assert out.stdout.rstrip().endswith("0 problem(s): none")


def test_doctor_names_a_removed_field_and_exits_1(shared_dir, tmp_path):
    from tasks.chain.runtime import strip_option_opaque_metadata

    raw = (shared_dir / "chain/recordings/mainnet-spec343/metadata_v15.hex").read_text().strip()
    metadata = strip_option_opaque_metadata(bytes.fromhex(raw[2:]))
    fields = [f for f in metadata_edit.composite_fields(metadata, 671) if f.name != "validator_permit"]
    edited = metadata_edit.with_composite_fields(metadata, 671, fields)
    source = replay_edited(load_recording(shared_dir), tmp_path, lambda rec: None)
    (tmp_path / "metadata_v15.hex").write_text("0x01" + metadata_edit.encode_compact(len(edited)).hex() + edited.hex())
    out = _doctor("--chain", source)
    assert out.returncode == 1
    row = next(line for line in out.stdout.splitlines() if "get_selective_mechagraph" in line)
    assert " missing " in row and "validator_permit: missing" in row
    assert "1 problem(s): SubnetInfoRuntimeApi_get_selective_mechagraph" in out.stdout


def test_doctor_on_the_simulated_subnet_shows_settings_and_push_method():
    out = _doctor("--chain", "sim:3", "--netuid", "1")
    assert out.returncode == 0, out.stderr
    assert "a weight push would: set_weights" in out.stdout
    assert "commit_reveal_enabled        False" in out.stdout and "reveal_period_epochs         1" in out.stdout
    assert "epoch_consensus              Yuma" in out.stdout and "liquid_alpha_consensus_mode  Auto" in out.stdout
    assert "its epochs recompute: yes, exactly" in out.stdout


def test_doctor_says_which_consensus_vector_liquid_alpha_reads_and_refuses_null():
    from tasks.chain.doctor import recomputable

    subnet = {"yuma3_enabled": True, "liquid_alpha_enabled": True, "bonds_penalty": 65535,
              "liquid_alpha_consensus_mode": "Auto", "epoch_consensus": "Yuma"}
    assert recomputable(subnet) == "yes, exactly (liquid alpha reads the previous epoch's consensus)"
    assert recomputable({**subnet, "bonds_penalty": 0}) == "yes, exactly (liquid alpha reads the current consensus)"
    assert recomputable({**subnet, "liquid_alpha_consensus_mode": None}).endswith("reads the current consensus)")
    assert recomputable({**subnet, "epoch_consensus": "Null"}).startswith("no: the Null epoch consensus")
    assert "'Median' is a variant this engine does not know" in recomputable(
        {**subnet, "liquid_alpha_consensus_mode": "Median"})


@pytest.mark.slow
def test_doctor_on_the_local_spec_218_runtime(seeded_local_chain):  # noqa: F811
    with open_chain(seeded_local_chain.chain.url) as chain:
        report = diagnose(chain, seeded_local_chain.seed["netuid"])
    status = {c.name: c.status for c in report.checks}
    assert report.spec_version == 218 and report.metadata == "V15"
    assert status["NeuronInfoRuntimeApi_get_neurons_lite"] == "legacy layout"  # opaque Vec<u8> before spec 233
    assert status["SubnetInfoRuntimeApi_get_selective_mechagraph"] == "absent"
    assert status["SubtensorModule.commit_weights"] == "ok"
    assert status["SubtensorModule.commit_timelocked_weights"] == "absent"
    assert status["SubtensorSignedExtension"] == status["CommitmentsSignedExtension"] == "ok"
    assert report.failed == [] and report.push == "set_weights"
    # settings of this runtime: RevealPeriodEpochs exists at 218, the stateful epoch schedule does not
    assert report.subnet["reveal_period_epochs"] is not None and report.subnet["subnet_epoch_index"] is None
    assert report.subnet["commit_reveal_enabled"] is False and report.subnet["mechanism_count"] is None
