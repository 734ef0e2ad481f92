"""The local Subtensor runtime (spec 218 under Chopsticks) starts, takes a seeded subnet, stores
exactly what was written, and stops without leaving a process behind (tests/support/).

Every read is pinned to the block hash the seeding ended at.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from substrateinterface import Keypair, SubstrateInterface

from tests.support.localchain import REPO, LocalChainError, local_chain, process_group_alive
from tests.support.seed_subnet import (
    VALIDATOR_STAKES_TAO_RAO,
    SeedError,
    Signer,
    chain_max_upscale,
    dev_uri,
    seeded_local_chain,
    submit_in_one_block,
)

__all__ = ["seeded_local_chain"]  # the module-scoped fixture, imported so pytest finds it

pytestmark = pytest.mark.slow

# Hand-worked rows for the WEIGHTS_SENT of seed_subnet.py, as spec 218's `vec_u16_max_upscale_to_u16`
# stores them (I32F32, truncating division, round half away from zero):
#   (65535, 30000, 10000, 0): max is 65535, factor 65535/65535 = 1 exactly: unchanged.
#   (40000, 12345, 1, 20000): factor trunc(65535/40000 * 2^32) / 2^32, just under 1.638375;
#     12345 -> 20225.74 -> 20226, 1 -> 1.64 -> 2, and 20000 -> just under 32767.5 -> 32767
#     (exact arithmetic would round 32767.5 up to 32768; the truncated factor does not).
#   (100, 2000, 300, 7): max 2000 <= 32768, so w * 65535 / 2000: 3276.75 -> 3277,
#     65535, 9830.25 -> 9830, 229.37 -> 229.
STORED_WEIGHT_ROWS = (
    [65_535, 30_000, 10_000, 0],
    [65_535, 20_226, 2, 32_767],
    [3_277, 65_535, 9_830, 229],
)


@pytest.fixture(scope="module")
def chain(seeded_local_chain) -> Iterator[SubstrateInterface]:
    substrate = SubstrateInterface(url=seeded_local_chain.chain.url)
    yield substrate
    substrate.close()


def query(substrate: SubstrateInterface, seed: dict, name: str, params: list) -> object:
    return substrate.query("SubtensorModule", name, params, block_hash=seed["block_hash"]).value


def test_chain_runs_the_spec_218_runtime_from_the_shared_spec(seeded_local_chain, chain):
    version = chain.rpc_request("state_getRuntimeVersion", [])["result"]
    assert (version["specName"], version["specVersion"]) == ("node-subtensor", 218)
    assert chain.rpc_request("system_chain", [])["result"] == "bittensor"
    assert seeded_local_chain.seed["spec_version"] == 218


def test_hotkeys_sit_at_the_uids_they_registered_to(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    netuid = seed["netuid"]
    # A new subnet gives the owner hotkey uid 0; registrations then take 1, 2, ... in block order.
    assert sorted(seed["neurons"]) == list(range(8))
    assert seed["validator_uids"] == [1, 2, 3]
    assert seed["miner_uids"] == [4, 5, 6, 7]
    assert query(chain, seed, "SubnetworkN", [netuid]) == 8
    expected_hotkeys = [Keypair.create_from_uri(dev_uri("validator", i, "hotkey")).ss58_address for i in range(3)]
    expected_hotkeys += [Keypair.create_from_uri(dev_uri("miner", i, "hotkey")).ss58_address for i in range(4)]
    assert [seed["neurons"][uid]["hotkey"] for uid in range(1, 8)] == expected_hotkeys
    for uid, neuron in seed["neurons"].items():
        assert query(chain, seed, "Keys", [netuid, uid]) == neuron["hotkey"]
        assert query(chain, seed, "Uids", [netuid, neuron["hotkey"]]) == uid
        assert query(chain, seed, "Owner", [neuron["hotkey"]]) == neuron["coldkey"]


def test_hyperparameters_set_through_sudo_are_stored(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    assert seed["hyperparameters"] == {
        "Tempo": 10,
        "MaxRegistrationsPerBlock": 16,
        "TargetRegistrationsPerInterval": 16,
        "WeightsSetRateLimit": 0,
    }
    for storage, value in seed["hyperparameters"].items():
        assert query(chain, seed, storage, [seed["netuid"]]) == value


def test_stakes_equal_what_was_staked_and_do_not_drift(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    netuid = seed["netuid"]
    stakes = seed["stakes"]
    assert [stakes[seed["neurons"][uid]["hotkey"]]["tao_staked_rao"] for uid in seed["validator_uids"]] == list(
        VALIDATOR_STAKES_TAO_RAO
    )
    for hotkey, stake in stakes.items():
        assert stake["alpha_rao"] > 0
        assert query(chain, seed, "TotalHotkeyAlpha", [hotkey, netuid]) == stake["alpha_rao"]
        assert query(chain, seed, "Alpha", [hotkey, stake["coldkey"], netuid]) == stake["alpha_rao"]
    # Emission on the seeded subnet is frozen: three more blocks leave every stake unchanged.
    later = chain.rpc_request("dev_newBlock", [{"count": 3}])["result"]
    assert chain.get_block_number(later) == seed["block_number"] + 3
    for hotkey, stake in stakes.items():
        assert (
            chain.query("SubtensorModule", "TotalHotkeyAlpha", [hotkey, netuid], block_hash=later).value
            == (stake["alpha_rao"])
        )


def test_weight_rows_are_stored_max_upscaled(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    miners = seed["miner_uids"]
    expected = {
        uid: [[m, w] for m, w in zip(miners, row, strict=True)]
        for uid, row in zip(seed["validator_uids"], STORED_WEIGHT_ROWS, strict=True)
    }
    assert seed["weights"] == expected
    for uid, row in expected.items():
        assert [list(edge) for edge in query(chain, seed, "Weights", [seed["netuid"], uid])] == row
    for uid in [0, *miners]:
        assert query(chain, seed, "Weights", [seed["netuid"], uid]) == []


def test_set_weights_stamps_last_update_with_its_block(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    last_update = query(chain, seed, "LastUpdate", [seed["netuid"]])
    assert len(last_update) == 8
    assert [last_update[uid] for uid in seed["validator_uids"]] == [seed["block_number"]] * 3


def test_chain_max_upscale_follows_the_fixed_point_rounding():
    assert chain_max_upscale([0, 0]) == [0, 0]
    assert chain_max_upscale([]) == []
    assert chain_max_upscale([32_768, 16_384]) == [65_535, 32_768]  # 16384 * 65535 / 32768 = 32767.5
    assert chain_max_upscale([1]) == [65_535]


def test_neurons_lite_runtime_api_answers_wrapped_in_vec_u8(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    netuid_le = seed["netuid"].to_bytes(2, "little").hex()
    answer = chain.rpc_request(
        "state_call", ["NeuronInfoRuntimeApi_get_neurons_lite", f"0x{netuid_le}", seed["block_hash"]]
    )
    payload = bytes.fromhex(answer["result"][2:])
    inner = bytes.fromhex(chain.decode_scale("Vec<u8>", f"0x{payload.hex()}")[2:])
    assert inner[0] >> 2 == 8  # single-byte compact: the Vec<NeuronInfoLite> holds the 8 neurons


def test_a_rejected_extrinsic_names_the_chain_error(seeded_local_chain, chain):
    seed = seeded_local_chain.seed
    validator_hotkey = Signer(Keypair.create_from_uri(dev_uri("validator", 0, "hotkey")))
    call = chain.compose_call(
        "SubtensorModule",
        "set_weights",
        {"netuid": seed["netuid"], "dests": [4, 4], "weights": [1, 2], "version_key": 0},
    )
    with pytest.raises(SeedError, match=r"duplicate set_weights: failed with SubtensorModule\.DuplicateUids"):
        submit_in_one_block(chain, [("duplicate set_weights", call, validator_hotkey)])


def test_chain_stops_with_its_whole_process_group(tmp_path):
    with local_chain(log_dir=tmp_path) as running:
        pgid = running.pgid
        assert process_group_alive(pgid)
        assert running.url == f"ws://127.0.0.1:{running.port}"
        run_dir = running.log_path.parent
    assert not process_group_alive(pgid)
    listed = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True)
    assert listed.stdout.strip() == ""
    assert not run_dir.exists()  # a clean stop removes the run directory and its log


def test_a_killed_test_process_takes_its_chain_with_it(tmp_path):
    # A test run killed outright (CI timeout, SIGKILL) runs no cleanup; the kernel's parent-death
    # signal (prctl PDEATHSIG, set before exec) must still end the chain.
    holder = "import sys, time\nfrom pathlib import Path\nfrom tests.support.localchain import local_chain\n"
    holder += "with local_chain(log_dir=Path(sys.argv[1])) as chain:\n"
    holder += "    print(chain.pgid, flush=True)\n    time.sleep(600)\n"
    runner = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        pgid = int(runner.stdout.readline())
        assert process_group_alive(pgid)
        runner.kill()
        runner.wait()
        deadline = time.monotonic() + 30
        while process_group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_group_alive(pgid)
    finally:
        runner.kill()
        runner.wait()
        runner.stdout.close()


def test_a_chain_that_cannot_start_fails_with_its_log(tmp_path):
    not_a_spec = tmp_path / "not-a-spec.json"
    not_a_spec.write_text('{"name": "not a chain spec"}')
    with (
        pytest.raises(LocalChainError, match=r"exited with code \d+ before serving") as failure,
        local_chain(not_a_spec, log_dir=tmp_path),
    ):
        pass
    log_lines = failure.value.log_path.read_text().splitlines()  # the log is kept after a failure
    assert log_lines and log_lines[-1] in str(failure.value)  # and its tail is in the message


def test_a_missing_spec_is_named(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere.json"
    monkeypatch.setenv("YUMAFLOW_LOCAL_CHAIN_SPEC", str(missing))
    with pytest.raises(LocalChainError, match=rf"raw chain spec not found at {missing}"), local_chain():
        pass
