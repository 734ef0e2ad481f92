"""Commit-reveal: the timelocked commit as the mainnet runtime decodes it, its reveal round against the
epoch schedule worked by hand, and the simulated subnet revealing it when its reveal epoch begins.

(Hash commit-reveal runs end to end on the real spec-218 runtime: tests/test_weights_push_local.py.)
"""

from __future__ import annotations

import time

import bittensor_core
import pytest

from tasks.chain.runtime import RuntimeCodec, strip_option_opaque_metadata
from tasks.chain.wallet import hotkey_from_uri
from tasks.simnet.chain import SimChain, sim_drand_round
from tasks.weights.convert import chain_stored_row
from tasks.weights.push import push_weights

DRAND_GENESIS_S, DRAND_PERIOD_S = 1_692_803_367, 3  # drand quicknet


@pytest.fixture(scope="module")
def mainnet_codec(shared_dir):
    raw = (shared_dir / "chain" / "recordings" / "mainnet-spec343" / "metadata_v15.hex").read_text().strip()
    return RuntimeCodec(strip_option_opaque_metadata(bytes.fromhex(raw[2:])), 343, 1, "node-subtensor")


def _commit(**schedule):
    alice = bittensor_core.Keypair.create_from_uri("//Alice")
    return bittensor_core.get_encrypted_commit_v2(
        [1, 5], [65535, 3], 7, schedule["last_epoch_block"], schedule.get("pending_epoch_at", 0),
        schedule.get("subnet_epoch_index", 10), schedule["tempo"], schedule["current_block"] -
        schedule["last_epoch_block"], schedule["current_block"], schedule.get("reveal_period", 1), 12.0,
        bytes(alice.public_key))


def test_timelocked_commit_call_decodes_back_with_the_runtimes_codec(mainnet_codec):
    commit, reveal_round = _commit(last_epoch_block=1000, tempo=360, current_block=1100)
    call = mainnet_codec.compose_call("SubtensorModule", "commit_timelocked_mechanism_weights", {
        "netuid": 1, "mecid": 0, "commit": bytes(commit), "reveal_round": int(reveal_round),
        "commit_reveal_version": 4})
    decoded = mainnet_codec.core.decode_call(call)
    args = {a["name"]: a["value"] for a in decoded["call_args"]}
    assert decoded["call_function"] == "commit_timelocked_mechanism_weights"
    assert (args["netuid"], args["mecid"], args["reveal_round"], args["commit_reveal_version"]) == (
        1, 0, reveal_round, 4)
    committed = args["commit"]
    committed = bytes.fromhex(committed[2:]) if isinstance(committed, str) else bytes(committed)
    assert committed == bytes(commit) and len(committed) > 200  # a TLE ciphertext, not the plain row


def _round_at(seconds: float) -> int:
    return int((seconds - DRAND_GENESIS_S) // DRAND_PERIOD_S) + 1


# Hand-worked schedules (12 s blocks). The chain reveals a commit of epoch e when epoch e + reveal_period
# begins, given drand's pulse for the commit's round; so the round must come due within that epoch.
#   A: last epoch 1000, tempo 360, head 1100: epoch e ends at block 1361; reveal epoch = [1361, 1722).
#   B: same, reveal period 2: reveal epoch = [1722, 2083).
#   C: owner-triggered epoch pending at 1150: e ends at 1151; reveal epoch = [1151, 1512).
@pytest.mark.parametrize(("schedule", "reveal_epoch_start", "reveal_epoch_end"), [
    (dict(last_epoch_block=1000, tempo=360, current_block=1100), 1361, 1722),
    (dict(last_epoch_block=1000, tempo=360, current_block=1100, reveal_period=2), 1722, 2083),
    (dict(last_epoch_block=1000, tempo=360, current_block=1100, pending_epoch_at=1150), 1151, 1512),
])
def test_reveal_round_comes_due_in_the_reveal_epoch(schedule, reveal_epoch_start, reveal_epoch_end):
    before = time.time()
    _, reveal_round = _commit(**schedule)
    after = time.time()
    head = schedule["current_block"]
    earliest = _round_at(before + (reveal_epoch_start - head) * 12)
    latest = _round_at(after + (reveal_epoch_end - head) * 12)
    assert earliest <= reveal_round < latest


def test_the_simulated_subnet_reveals_a_commit_when_its_reveal_epoch_begins():
    sim = SimChain.open("sim:5")
    netuid = 1
    sim.set_hyperparameter(netuid, "commit_reveal_enabled", True)
    hotkey = hotkey_from_uri("//Alice")  # the default scenario's validator, uid 0
    snap = sim.snapshot(netuid, sim.head_block())
    uid = int(snap.neurons.filter(snap.neurons["hotkey"] == hotkey.ss58_address)["uid"][0])
    miners = [u for u in range(snap.neurons.height) if u != uid][:3]
    weights = [65535, 30000, 5]
    before = sim.stored_weights(netuid, uid)
    plain = sim.set_weights(netuid, miners, weights, 0, hotkey)
    assert not plain.ok and plain.error == "SubtensorModule.CommitRevealEnabled"
    sim.advance(int(snap.subnets["weights_rate_limit"][0]) + 1)
    snap = sim.snapshot(netuid, sim.head_block())
    row = push_weights(sim, netuid, miners, weights, 0, hotkey, snapshot=snap, dry_run=False).row(0, named=True)
    assert (row["status"], row["method"], row["reveal_status"]) == ("committed", "commit_timelocked", "pending")
    committed_at = row["included_block"]
    tempo = int(snap.subnets["tempo"][0])
    last_epoch = sim.last_epoch_block(netuid)
    assert row["reveal_round"] == sim_drand_round(last_epoch + tempo)
    # the reveal epoch begins with the next epoch: the row is set in that epoch's block, not before
    reveal_at = last_epoch + tempo
    sim.advance(reveal_at - 1 - sim.head_block())
    assert sim.stored_weights(netuid, uid) == before and sim.head_block() >= committed_at
    sim.advance(1)
    assert sim.last_epoch_block(netuid) == reveal_at
    assert sim.stored_weights(netuid, uid) == list(zip(miners, chain_stored_row(weights), strict=True))
    after = sim.snapshot(netuid, reveal_at, parts=("subnets",)).subnets.row(0, named=True)
    assert after["commit_reveal_enabled"] and after["reveal_period_epochs"] == 1
    assert after["subnet_epoch_index"] == snap.subnets["subnet_epoch_index"][0] + 1
