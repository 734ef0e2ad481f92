"""Real signed writes to a real Subtensor runtime (spec 218 under Chopsticks, 127.0.0.1 only).

The subnet is seeded by tests/support/seed_subnet.py (validators are dev keys //Alice//validatorN//hotkey
with stake and permits, rate limit 0). The chain builds blocks only on `dev_newBlock`, so while a
write waits for inclusion a background thread builds blocks, as a live chain would.
"""

from __future__ import annotations

import ipaddress
import logging

import pytest
from substrateinterface import Keypair

from tasks.chain.substrate import SubstrateChain
from tasks.chain.wallet import hotkey_from_uri
from tasks.weights.convert import chain_stored_row, scores_to_weights
from tasks.weights.projection import project_epoch
from tasks.weights.push import push_weights
from tests.support.localchain import blocks_in_background, rpc_over_http
from tests.support.seed_subnet import chain_max_upscale, dev_uri, seeded_local_chain  # noqa: F401

pytestmark = pytest.mark.slow

SCORES = [0.9, 0.25, 0.00001, 0.5]  # per seeded miner, in miner order
RATE_LIMIT_BLOCKS = 50


@pytest.fixture(scope="module")
def pushed(seeded_local_chain):  # noqa: F811
    """Validator 0 computes weights from SCORES and pushes them for real; then a dry run is taken."""
    seed = seeded_local_chain.seed
    netuid = seed["netuid"]
    chain = SubstrateChain(seeded_local_chain.chain.url)
    hotkey = hotkey_from_uri(dev_uri("validator", 0, "hotkey"))
    head = chain.head_block(finalized=False)
    snapshot = chain.snapshot(netuid, head)
    subnet = snapshot.subnets.row(0, named=True)
    row = scores_to_weights(seed["miner_uids"], SCORES, num_neurons=subnet["subnetwork_n"],
                            min_allowed_weights=subnet["min_allowed_weights"],
                            max_weight_limit_u16=subnet["max_weight_limit"])
    projection = project_epoch(snapshot.subnets, snapshot.neurons, snapshot.weights, snapshot.bonds,
                               seed["validator_uids"][0], row.uids, row.weights)
    with blocks_in_background(seeded_local_chain.chain.http_url):
        result = push_weights(chain, netuid, row.uids, row.weights, 0, hotkey, snapshot=snapshot, dry_run=False,
                              epoch_id="e1", projection=projection)
    yield dict(chain=chain, seed=seed, hotkey=hotkey, row=row, result=result.row(0, named=True),
               snapshot=snapshot, netuid=netuid, projection=projection)
    chain.close()


def test_pushed_row_is_stored_as_the_chain_reupscales_it(pushed):
    chain, seed, row, result = pushed["chain"], pushed["seed"], pushed["row"], pushed["result"]
    assert result["status"] == "included", result["detail"]
    assert "SubtensorModule.WeightsSet" in result["detail"] and "System.ExtrinsicSuccess" in result["detail"]
    assert result["extrinsic_hash"].startswith("0x") and len(result["extrinsic_hash"]) == 66
    assert result["included_block"] > pushed["snapshot"].block
    assert (result["uids"], result["weights"]) == (row.uids, row.weights)
    projection = pushed["projection"]
    assert (result["projected_validator_trust"], result["projected_dividends"]) == (
        projection["validator_trust"], projection["dividends"])
    uid = seed["validator_uids"][0]
    stored = chain.substrate.query("SubtensorModule", "Weights", [pushed["netuid"], uid]).value
    assert stored == [(u, w) for u, w in zip(row.uids, chain_stored_row(row.weights), strict=True)]
    assert [w for _, w in stored] == chain_max_upscale(row.weights)  # the test port of the chain's math
    last_update = chain.substrate.query("SubtensorModule", "LastUpdate", [pushed["netuid"]]).value
    assert last_update[uid] == result["included_block"]
    # and a snapshot afterwards shows exactly the stored row
    after = chain.snapshot(pushed["netuid"], result["included_block"], parts=("weights",)).weights
    assert after.filter(after["validator_uid"] == uid).select("miner_uid", "weight").rows() == stored


def test_a_hotkey_without_validator_permit_is_refused(pushed):
    chain, seed, netuid = pushed["chain"], pushed["seed"], pushed["netuid"]
    miner = hotkey_from_uri(dev_uri("miner", 0, "hotkey"))
    # Spec 218 gives every uid of this small subnet a permit; take the miner's away at the head
    # (the next block's epoch would restore it, and no block is built before the check reads it).
    permits = [uid != seed["miner_uids"][0] for uid in range(len(seed["neurons"]))]
    chain.substrate.rpc_request("dev_setStorage", [{"SubtensorModule": {"ValidatorPermit": [[[netuid], permits]]}}])
    snapshot = chain.snapshot(netuid, chain.head_block(finalized=False))
    assert not snapshot.neurons["validator_permit"][seed["miner_uids"][0]]
    result = push_weights(chain, netuid, seed["miner_uids"][1:3], [65535, 100], 0, miner, snapshot=snapshot,
                          dry_run=False).row(0, named=True)
    assert result["status"] == "refused" and "has no validator permit" in result["detail"]


def test_dry_run_sends_nothing(pushed):
    chain, seed = pushed["chain"], pushed["seed"]
    uid = seed["validator_uids"][1]
    before = chain.substrate.query("SubtensorModule", "Weights", [pushed["netuid"], uid]).value
    hotkey = hotkey_from_uri(dev_uri("validator", 1, "hotkey"))
    snapshot = chain.snapshot(pushed["netuid"], chain.head_block(finalized=False))
    result = push_weights(chain, pushed["netuid"], [seed["miner_uids"][0]], [65535], 0, hotkey,
                          snapshot=snapshot).row(0, named=True)
    assert (result["status"], result["dry_run"], result["extrinsic_hash"]) == ("dry_run", True, None)
    assert chain.substrate.query("SubtensorModule", "Weights", [pushed["netuid"], uid]).value == before


def test_too_fast_second_push_is_refused_and_the_chain_agrees(pushed, seeded_local_chain, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)  # substrate-interface logs whole RPC payloads at DEBUG
    chain, netuid, hotkey, row = pushed["chain"], pushed["netuid"], pushed["hotkey"], pushed["row"]
    sudo = chain.compose_call("Sudo", "sudo", {"call": chain.compose_call(
        "AdminUtils", "sudo_set_weights_set_rate_limit",
        {"netuid": netuid, "weights_set_rate_limit": RATE_LIMIT_BLOCKS})})
    with blocks_in_background(seeded_local_chain.chain.http_url):
        assert chain.submit(sudo, Keypair.create_from_uri("//Alice")).ok
    head = chain.head_block(finalized=False)
    snapshot = chain.snapshot(netuid, head)
    result = push_weights(chain, netuid, row.uids, row.weights, 0, hotkey, snapshot=snapshot,
                          dry_run=False).row(0, named=True)
    last = pushed["result"]["included_block"]
    wait = last + RATE_LIMIT_BLOCKS - (head + 1)
    assert result["status"] == "refused" and result["extrinsic_hash"] is None
    assert f"wait {wait} more block(s)" in result["detail"]
    # Sent anyway (bypassing our check), the chain fails it with the error our check predicted.
    with blocks_in_background(seeded_local_chain.chain.http_url):
        sent = chain.set_weights(netuid, row.uids, row.weights, 0, hotkey)
    assert not sent.ok and sent.error == "SubtensorModule.SettingWeightsTooFast"
    assert sent.block is not None and "System.ExtrinsicFailed" in sent.events
    # the same dev key derived by substrate-interface, which exposes its secret (bittensor-core's does not)
    secret = Keypair.create_from_uri(dev_uri("validator", 0, "hotkey")).private_key.hex()
    assert caplog.records and secret not in caplog.text and secret[:16] not in caplog.text


def test_rows_the_chain_would_reject_are_refused_before_sending(pushed):
    chain, netuid, hotkey, seed = pushed["chain"], pushed["netuid"], pushed["hotkey"], pushed["seed"]
    si, miners = chain.substrate, seed["miner_uids"]
    saved = {name: si.query("SubtensorModule", name, [netuid]).value
             for name in ("MaxWeightsLimit", "MinAllowedWeights", "WeightsSetRateLimit")}
    try:  # rate limit off for this test; a JSON number 0 would delete the entry (default 100), so "0"
        si.rpc_request("dev_setStorage", [{"SubtensorModule": {"MaxWeightsLimit": [[[netuid], 32767]],
                                                               "MinAllowedWeights": [[[netuid], 3]],
                                                               "WeightsSetRateLimit": [[[netuid], "0"]]}}])
        snapshot = chain.snapshot(netuid, chain.head_block(finalized=False))
        few = push_weights(chain, netuid, miners[:2], [65535, 65535], 0, hotkey, snapshot=snapshot).row(0, named=True)
        assert few["status"] == "refused" and "requires at least 3 (min_allowed_weights)" in few["detail"]
        heavy = push_weights(chain, netuid, miners[:3], [65535, 100, 100], 0, hotkey,
                             snapshot=snapshot).row(0, named=True)
        assert heavy["status"] == "refused" and "above max_weight_limit 32767/65535" in heavy["detail"]
    finally:
        si.rpc_request("dev_setStorage", [{"SubtensorModule": {name: [[[netuid], str(value)]]
                                                               for name, value in saved.items()}}])


def test_stale_snapshot_is_refused(pushed, seeded_local_chain):  # noqa: F811
    chain, netuid = pushed["chain"], pushed["netuid"]
    old = chain.snapshot(netuid, chain.head_block(finalized=False))
    tempo = old.subnets["tempo"][0]
    rpc_over_http(seeded_local_chain.chain.http_url, "dev_newBlock", [{"count": tempo + 1}], timeout_s=120)
    result = push_weights(chain, netuid, pushed["row"].uids, pushed["row"].weights, 0, pushed["hotkey"],
                          snapshot=old, dry_run=False).row(0, named=True)
    assert result["status"] == "refused" and "stale snapshot" in result["detail"]


def test_serve_axon_is_stored(pushed, seeded_local_chain):  # noqa: F811
    chain, netuid = pushed["chain"], pushed["netuid"]
    hotkey = hotkey_from_uri(dev_uri("validator", 2, "hotkey"))
    with blocks_in_background(seeded_local_chain.chain.http_url):
        sent = chain.serve_axon(netuid, "10.1.2.3", 8091, hotkey)
    assert sent.ok, sent.error
    assert "SubtensorModule.AxonServed" in sent.events
    axon = chain.substrate.query("SubtensorModule", "Axons", [netuid, hotkey.ss58_address]).value
    assert (axon["ip"], axon["port"], axon["ip_type"], axon["protocol"]) == (
        int(ipaddress.IPv4Address("10.1.2.3")), 8091, 4, 4)
    assert axon["block"] == sent.block


def test_spec_218_extrinsics_carry_every_declared_extension(pushed):
    """The push was built from the runtime's declared signed extensions (SubtensorSignedExtension and
    CommitmentsSignedExtension included) and the runtime accepted it: it decodes back from the block."""
    chain, result = pushed["chain"], pushed["result"]
    block_hash = chain.block_hash(result["included_block"])
    codec = chain.codec_at(block_hash)
    assert {"SubtensorSignedExtension", "CommitmentsSignedExtension", "CheckMetadataHash"} <= set(
        codec.signed_extensions())
    body = chain.rpc("chain_getBlock", [block_hash])["block"]["extrinsics"]
    ours = [codec.core.decode_extrinsic(bytes.fromhex(x[2:]), True) for x in body]
    ours = [x for x in ours if x.get("extrinsic_hash") == result["extrinsic_hash"]]
    assert len(ours) == 1 and ours[0]["address"] == pushed["hotkey"].ss58_address
    assert ours[0]["call"]["call_function"] == "set_weights"  # spec 218 has no set_mechanism_weights


def test_hash_commit_reveal_end_to_end(pushed, seeded_local_chain):  # noqa: F811
    """Spec 218 has only hash commit-reveal: the push commits (never plain weights), the reveal opens it in
    the window the chain stored, and the chain then holds exactly the committed row."""
    chain, netuid, hotkey, row = pushed["chain"], pushed["netuid"], pushed["hotkey"], pushed["row"]
    uid = pushed["seed"]["validator_uids"][0]
    enable = chain.compose_call("Sudo", "sudo", {"call": chain.compose_call(
        "AdminUtils", "sudo_set_commit_reveal_weights_enabled", {"netuid": netuid, "enabled": True})})
    with blocks_in_background(seeded_local_chain.chain.http_url):
        assert chain.submit(enable, Keypair.create_from_uri("//Alice")).ok
    assert chain.commit_reveal_enabled(netuid) and chain.push_method(netuid) == "commit_hash"
    # commits are rate-limited like set_weights; an earlier test set a 50-block limit
    chain.rpc("dev_setStorage", [{"SubtensorModule": {"WeightsSetRateLimit": [[[netuid], "0"]]}}])
    snapshot = chain.snapshot(netuid, chain.head_block(finalized=False))
    dry = push_weights(chain, netuid, row.uids, row.weights, 0, hotkey, snapshot=snapshot).row(0, named=True)
    assert dry["status"] == "dry_run" and "commit_hash" in dry["detail"]
    before = chain.stored_weights(netuid, uid)
    weights = list(reversed(row.weights))  # a row different from the one stored
    with blocks_in_background(seeded_local_chain.chain.http_url):
        committed = push_weights(chain, netuid, row.uids, weights, 0, hotkey, snapshot=snapshot,
                                 dry_run=False).row(0, named=True)
    assert committed["status"] == "committed", committed["detail"]
    assert committed["method"] == "commit_hash" and committed["reveal_block"] > committed["included_block"]
    assert chain.stored_weights(netuid, uid) == before  # nothing set until revealed
    head = chain.head_block(finalized=False)
    rpc_over_http(seeded_local_chain.chain.http_url, "dev_newBlock",
                  [{"count": committed["reveal_block"] - head - 1}], timeout_s=300)
    with blocks_in_background(seeded_local_chain.chain.http_url):
        revealed = chain.reveal_weights(netuid, row.uids, weights, committed["salt"], 0, hotkey)
    assert revealed.ok, revealed.error
    assert "SubtensorModule.WeightsRevealed" in revealed.events
    assert chain.stored_weights(netuid, uid) == list(zip(row.uids, chain_stored_row(weights), strict=True))
