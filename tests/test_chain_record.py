"""The recorder: any client built with record=PATH writes what it asked and was answered, in the
format `replay:` reads. Round trip: record a replayed session, replay the new file, same frames."""

from __future__ import annotations

import json

import pytest
from polars.testing import assert_frame_equal

from tasks.chain import ChainRpcError, open_chain
from tests.support.recordings import spec_208_replay

BLOCK, NETUID = 6852690, 1
MG = "SubnetInfoRuntimeApi_get_selective_mechagraph"


@pytest.fixture(scope="module")
def recordings(shared_dir):
    return shared_dir / "chain" / "recordings" / "mainnet-spec343"


def test_record_then_replay_gives_identical_frames(recordings, tmp_path):
    recorded = tmp_path / "session.json"
    with open_chain(f"replay:{recordings / 'metagraph.json'}", record=str(recorded)) as chain:
        original = chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    data = json.loads(recorded.read_text())
    # one JSON object {method: {json.dumps(params): response}}; the V15 metadata under its real params
    assert {"chain_getBlockHash", "chain_getHeader", "state_getRuntimeVersion", "state_call"} <= data.keys()
    assert json.dumps([BLOCK]) in data["chain_getBlockHash"]
    assert [json.loads(k)[0] for k in data["state_call"]] == [
        "Metadata_metadata_at_version", MG, "NeuronInfoRuntimeApi_get_neurons_lite"]
    assert all("id" not in answer for answers in data.values() for answer in answers.values())

    with open_chain(f"replay:{recorded}") as replayed:
        again = replayed.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert (again.block_hash, again.spec_version) == (original.block_hash, original.spec_version)
    assert_frame_equal(again.neurons, original.neurons)


def test_record_storage_paging_round_trip(recordings, tmp_path):
    recorded = tmp_path / "weights.json"
    with open_chain(spec_208_replay(recordings, "weights.json", tmp_path / "source"), record=str(recorded)) as chain:
        original = chain.snapshot(23, chain.head_block(finalized=False), parts=("weights",))
    with open_chain(f"replay:{recorded}") as replayed:
        again = replayed.snapshot(23, replayed.head_block(finalized=False), parts=("weights",))
    assert_frame_equal(again.weights, original.weights)
    assert again.weights.height == 1


def test_recorded_rpc_errors_replay_as_the_same_error(recordings, tmp_path):
    source = json.loads((recordings / "metagraph.json").read_text())
    error = {"code": -32000, "message": "Client error: Execution failed"}
    for key, answer in source["state_call"].items():
        if json.loads(key)[0] == MG:
            answer.pop("result")
            answer["error"] = error
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps(source))
    (tmp_path / "metadata_v15.hex").write_text((recordings / "metadata_v15.hex").read_text())
    recorded = tmp_path / "recorded.json"
    with open_chain(f"replay:{failing}", record=str(recorded)) as chain, pytest.raises(ChainRpcError):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert [a for k, a in json.loads(recorded.read_text())["state_call"].items() if MG in k] == [{"error": error}]
    with open_chain(f"replay:{recorded}") as replayed, pytest.raises(ChainRpcError) as err:
        replayed.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert err.value.error == error
