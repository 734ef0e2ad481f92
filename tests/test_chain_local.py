"""The client against a real Subtensor runtime (spec 218) under Chopsticks, on 127.0.0.1 only.

State is seeded with `dev_setStorage` (local_chain.md §3.4), then read back by a full snapshot; the
session is recorded and replayed offline to the same frames.
"""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

from tasks.chain import open_chain
from tests.support.localchain import local_chain_node  # noqa: F401  (the module's chain fixture)

pytestmark = pytest.mark.slow

U64_MAX = 2**64 - 1
ALPHA_RAO, ROOT_TAO_RAO = 5_000_000_000, 1_000_000_000_000


@pytest.fixture(scope="module")
def seeded(local_chain_node, tmp_path_factory):  # noqa: F811
    """A snapshot of netuid 1 after seeding weights, bonds and stakes; recorded to a file."""
    recording = tmp_path_factory.mktemp("chain") / "local218.json"
    chain = open_chain(local_chain_node.url, record=str(recording))
    si = chain.substrate
    hotkey = si.query("SubtensorModule", "Keys", [1, 0]).value
    si.rpc_request("dev_setStorage", [{"SubtensorModule": {
        "Weights": [[[1, 3], [[0, 100], [2, 65535]]], [[1, 0], [[0, 65535]]]],
        "Bonds": [[[1, 0], [[0, 123]]]],
        "TotalHotkeyAlpha": [[[hotkey, 1], ALPHA_RAO], [[hotkey, 0], ROOT_TAO_RAO]],
    }}])
    head = chain.head_block(finalized=False)
    snap = chain.snapshot(1, head)
    expected = {
        "hotkey": hotkey,
        "now": si.query("Timestamp", "Now", [], block_hash=snap.block_hash).value,
        "tao_weight": si.query("SubtensorModule", "TaoWeight", [1], block_hash=snap.block_hash).value,
        "tempo": si.query("SubtensorModule", "Tempo", [1], block_hash=snap.block_hash).value,
        "n": si.query("SubtensorModule", "SubnetworkN", [1], block_hash=snap.block_hash).value,
    }
    chain.close()
    return snap, head, recording, expected


def test_snapshot_of_spec_218(seeded, local_chain_node):  # noqa: F811
    snap, head, _, expected = seeded
    assert snap.spec_version == 218
    block = snap.blocks.row(0, named=True)
    assert (block["block"], block["spec_version"], block["timestamp_ms"]) == (head, 218, expected["now"])
    assert block["source"] == local_chain_node.url

    neurons = snap.neurons
    assert neurons.height == expected["n"] == 1
    uid0 = neurons.row(0, named=True)
    assert uid0["hotkey"] == expected["hotkey"]
    assert (uid0["alpha_stake"], uid0["tao_stake"]) == (ALPHA_RAO, ROOT_TAO_RAO)
    assert uid0["total_stake"] == ALPHA_RAO + ROOT_TAO_RAO * expected["tao_weight"] // U64_MAX

    subnet = snap.subnets.row(0, named=True)
    assert subnet["tempo"] == expected["tempo"] and subnet["subnetwork_n"] == 1
    assert subnet["tao_weight"] == expected["tao_weight"]
    assert subnet["owner_uid"] == 0 and subnet["owner_hotkey"] == expected["hotkey"]
    assert subnet["bonds_penalty"] is None and subnet["mechanism_count"] is None  # not in spec 218


def test_weights_and_bonds_of_spec_218(seeded):
    snap = seeded[0]
    assert snap.weights.select("validator_uid", "miner_uid", "weight").rows() == [
        (0, 0, 65535), (3, 0, 100), (3, 2, 65535)]
    assert snap.bonds.select("validator_uid", "miner_uid", "bond").rows() == [(0, 0, 123)]


def test_recorded_local_session_replays_offline(seeded):
    snap, head, recording, _ = seeded
    replayed = open_chain(f"replay:{recording}")
    assert replayed.head_block(finalized=False) == head
    again = replayed.snapshot(1, head)
    for part, frame in snap.frames().items():
        if part == "blocks":  # the source column names where it was read from
            frame = frame.drop("source")
            assert again.blocks["source"].item() == f"replay:{recording}"
        assert_frame_equal(again.frames()[part].select(frame.columns), frame)
    replayed.close()
