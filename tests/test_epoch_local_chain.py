"""The epoch flow against a real Subtensor runtime (spec 218 under Chopsticks): miners serve on
127.0.0.1, `yumaflow epoch --push` sends a real signed set_weights, and a snapshot afterwards holds
exactly the u16 row it computed, as the chain stores it.

The chain refuses loopback axons (serve_axon fails with InvalidIpAddress, checked below), so the
miners' axon entries are written into storage with Chopsticks' dev_setStorage, the same way the rest
of the subnet's state is seeded.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from substrateinterface import Keypair

from neurons.forecasters import SeasonalNaive
from neurons.miner import MinerServer, create_app, stop_servers
from tasks.chain.substrate import SubstrateChain
from tasks.weights.convert import chain_stored_row
from tests.support.localchain import blocks_in_background, rpc_over_http
from tests.support.seed_subnet import dev_uri, seeded_local_chain  # noqa: F401
from warehouse import Warehouse

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")


@pytest.fixture(scope="module")
def served(seeded_local_chain):  # noqa: F811
    seed = seeded_local_chain.seed
    netuid = seed["netuid"]
    validators = {Keypair.create_from_uri(dev_uri("validator", i, "hotkey")).ss58_address
                  for i in range(len(seed["validator_uids"]))}
    chain = SubstrateChain(seeded_local_chain.chain.url)
    servers, axons = [], []
    try:
        with blocks_in_background(seeded_local_chain.chain.http_url):
            for i in range(len(seed["miner_uids"])):
                key = Keypair.create_from_uri(dev_uri("miner", i, "hotkey"))
                # different seasonal periods: no two miners answer alike (identical answers look copied)
                servers.append(MinerServer(create_app(key, SeasonalNaive(24 - 5 * i), lambda: validators)).start())
                if i == 0:
                    refused = chain.serve_axon(netuid, "127.0.0.1", servers[-1].port, key)
                    assert (refused.ok, refused.error) == (False, "SubtensorModule.InvalidIpAddress")
                axons.append([[netuid, key.ss58_address], {
                    "block": 1, "version": 1, "ip": str(int(ipaddress.IPv4Address("127.0.0.1"))),
                    "port": servers[-1].port, "ip_type": 4, "protocol": 4, "placeholder1": 0, "placeholder2": 0}])
        chain.substrate.rpc_request("dev_setStorage", [{"SubtensorModule": {"Axons": axons}}])
        rpc_over_http(seeded_local_chain.chain.http_url, "dev_newBlock", [{"count": 1}], timeout_s=60)
        yield seeded_local_chain, chain
    finally:
        stop_servers(servers)
        chain.close()


def test_epoch_pushes_a_real_set_weights_stored_exactly(served, cli_env, tmp_path):
    local, chain = served
    seed, netuid = local.seed, local.seed["netuid"]
    wh_dir = tmp_path / "wh"
    args = [BIN, "epoch", "--chain", local.chain.url, "--netuid", str(netuid), "--hotkey-uri",
            dev_uri("validator", 0, "hotkey"), "--warehouse", str(wh_dir), "--push", "--timeout", "5",
            "--challenges", "8"]
    with blocks_in_background(local.chain.http_url, interval_s=0.5):
        res = subprocess.run(args, capture_output=True, text=True, env=cli_env, timeout=600)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    wh = Warehouse(wh_dir)
    responses = wh.read("responses")
    assert set(responses["status"]) == {"ok"} and responses["miner_uid"].n_unique() == len(seed["miner_uids"])
    submission = wh.read("weight_submissions").row(0, named=True)
    assert submission["status"] == "included", submission["detail"]
    our_uid = seed["validator_uids"][0]
    after = chain.snapshot(netuid, chain.head_block(finalized=False), parts=("weights", "neurons"))
    row = after.weights.filter(pl.col("validator_uid") == our_uid).sort("miner_uid")
    assert row["miner_uid"].to_list() == submission["uids"]
    assert row["weight"].to_list() == chain_stored_row(submission["weights"])
    assert after.neurons.filter(pl.col("uid") == our_uid)["last_update"].item() == submission["included_block"]
