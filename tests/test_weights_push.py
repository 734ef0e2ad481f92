"""Offline checks of the push path: the row guards, and signing compatibility with mainnet's runtime.

The signed push itself runs against a real runtime in tests/test_weights_push_local.py.
"""

from __future__ import annotations

import pytest

from tasks.chain import open_chain
from tasks.chain.interface import ChainWriter
from tasks.chain.substrate import sign_extrinsic
from tasks.weights.convert import WeightsRefused
from tasks.weights.push import check_row


@pytest.mark.parametrize("uids, weights, reason", [
    ([], [], "empty row"),
    ([1, 2], [5], "2 uids but 1 weights"),
    ([2, 1], [5, 5], "strictly ascending"),
    ([1, 1], [5, 5], "strictly ascending"),
    ([1, 2], [0, 0], "all weights are zero"),
    ([1, 2], [5, 70000], "must be u16"),
])
def test_rows_that_must_not_be_sent(uids, weights, reason):
    with pytest.raises(WeightsRefused, match=reason):
        check_row(uids, weights)


def test_a_valid_row_passes():
    check_row([0, 3, 7], [65535, 1, 0])  # a zero inside a row is allowed; the chain stores it


@pytest.fixture(scope="module")
def mainnet_codec(shared_dir):
    from tasks.chain.runtime import RuntimeCodec, strip_option_opaque_metadata

    raw = (shared_dir / "chain" / "recordings" / "mainnet-spec343" / "metadata_v15.hex").read_text().strip()
    return RuntimeCodec(strip_option_opaque_metadata(bytes.fromhex(raw[2:])), 343, 1, "node-subtensor")


@pytest.mark.parametrize("metadata_hash", [False, True])
def test_a_push_signed_for_mainnet_spec_343_decodes_back_and_verifies(mainnet_codec, metadata_hash):
    """Built from the runtime's declared extensions (SubtensorTransactionExtension, DrandPriority and
    CheckMetadataHash among them) by the chain's codec; decoded back by the same runtime's codec; the
    signature verifies over the payload the runtime would check."""
    import bittensor_core

    extensions = mainnet_codec.signed_extensions()
    assert {"SubtensorTransactionExtension", "DrandPriority", "CheckMetadataHash"} <= set(extensions)
    alice = bittensor_core.Keypair.create_from_uri("//Alice")
    call = mainnet_codec.compose_call("SubtensorModule", "set_mechanism_weights", {
        "netuid": 1, "mecid": 0, "dests": [1, 2], "weights": [65535, 100], "version_key": 7})
    genesis, era_block = "0x" + "11" * 32, "0x" + "22" * 32
    data, extrinsic_hash = sign_extrinsic(mainnet_codec, call, alice, nonce=5, head=6852690, genesis_hash=genesis,
                                          era_block_hash=era_block, metadata_hash=metadata_hash)
    decoded = mainnet_codec.core.decode_extrinsic(data, True)
    assert decoded["address"] == alice.ss58_address and decoded["nonce"] == 5
    assert decoded["extrinsic_hash"] == extrinsic_hash
    assert decoded["mode"] == {"mode": "Enabled" if metadata_hash else "Disabled"}
    assert decoded["era"][0] == 128
    args = {a["name"]: a["value"] for a in decoded["call"]["call_args"]}
    assert decoded["call"]["call_function"] == "set_mechanism_weights"
    assert args == {"netuid": 1, "mecid": 0, "dests": [1, 2], "weights": [65535, 100], "version_key": 7}
    digest = bytes(bittensor_core.metadata_digest(mainnet_codec.metadata, 343, "node-subtensor")) \
        if metadata_hash else None
    payload = bytes(mainnet_codec.core.signature_payload(
        call, era={"period": 128, "current": 6852690}, nonce=5, tip=0, tip_asset_id=None,
        genesis_hash=bytes.fromhex(genesis[2:]), era_block_hash=bytes.fromhex(era_block[2:]), metadata_hash=digest))
    signature = bytes.fromhex(decoded["signature"]["Sr25519"][2:])
    assert bittensor_core.verify(payload, signature, alice.ss58_address)


def test_the_mainnet_runtime_takes_every_call_yumaflow_sends(mainnet_codec):
    from tasks.chain.needs import CALLS

    missing = [call for call in CALLS if not mainnet_codec.has_call(*call)]
    assert missing == []


def test_replayed_chain_is_a_writer(shared_dir):
    chain = open_chain(f"replay:{shared_dir / 'chain' / 'recordings' / 'mainnet-spec343' / 'metagraph.json'}")
    assert isinstance(chain, ChainWriter)
