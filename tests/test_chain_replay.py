"""Chain access on recorded mainnet JSON-RPC traffic (spec 343 and 208), fully offline.

The recordings are real: netuid 1 (1024 uids) at block 6,852,690 (spec 343) in metagraph.json, and
netuid 23 Weights/Bonds query_map traffic at blocks 3,264,158 / 3,264,154 (spec 208).
"""

from __future__ import annotations

import json

import bt_decode
import polars as pl
import pytest
from scalecodec.utils.ss58 import ss58_encode

from schemas import chain as tables
from tasks.chain import ChainClient, RecordingMissError, Snapshot, open_chain, scale
from tests.support.recordings import spec_208_replay

BLOCK, NETUID = 6852690, 1
BLOCK_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"
NIL = "NeuronInfoRuntimeApi_get_neurons_lite"
MG = "SubnetInfoRuntimeApi_get_selective_mechagraph"
STATE = "SubnetInfoRuntimeApi_get_subnet_state"


@pytest.fixture(scope="module")
def recordings(shared_dir):
    return shared_dir / "chain" / "recordings" / "mainnet-spec343"


@pytest.fixture(scope="module")
def payloads(recordings) -> dict[str, bytes]:
    """The raw SCALE answers of the three runtime calls recorded at block 6852690."""
    recording = json.loads((recordings / "metagraph.json").read_text())
    return {json.loads(k)[0]: bytes.fromhex(v["result"][2:]) for k, v in recording["state_call"].items()}


@pytest.fixture(scope="module")
def client(recordings):
    chain = open_chain(f"replay:{recordings / 'metagraph.json'}")
    yield chain
    chain.close()


@pytest.fixture(scope="module")
def snap(client) -> Snapshot:
    return client.snapshot(NETUID, BLOCK, parts=("neurons",))


@pytest.fixture(scope="module")
def v15(recordings):
    """The spec-343 runtime's own metadata V15: an independent description of the API return types."""
    raw = (recordings / "metadata_v15.hex").read_text().strip()
    metadata = bt_decode.MetadataV15.decode_from_metadata_option(bytes.fromhex(raw[2:]))
    registry = bt_decode.PortableRegistry.from_metadata_v15(metadata)
    apis = {a["name"]: {m["name"]: m["output"] for m in a["methods"]} for a in json.loads(metadata.to_json())["apis"]}
    return registry, apis


def _v15_decode(v15, method: str, data: bytes):
    registry, apis = v15
    return bt_decode.decode(f"scale_info::{apis['SubnetInfoRuntimeApi'][method]}", registry, data)


def _ss58(raw) -> str:
    """bt-decode gives an AccountId32 as ((32 ints),)."""
    return ss58_encode(bytes(raw[0] if len(raw) == 1 else raw), 42)


# -- the snapshot ------------------------------------------------------------------------------------


def test_client_implements_the_protocol(client):
    assert isinstance(client, ChainClient)


def test_snapshot_reads_1024_uids_at_the_pinned_block(snap):
    assert (snap.block, snap.block_hash, snap.spec_version) == (BLOCK, BLOCK_HASH, 343)
    neurons = snap.neurons
    assert neurons.height == 1024
    assert neurons["uid"].to_list() == list(range(1024))
    assert neurons["netuid"].unique().to_list() == [NETUID]
    assert neurons["block"].unique().to_list() == [BLOCK]
    assert neurons.schema == tables.NEURONS.polars_schema()
    assert snap.blocks is None and snap.weights is None  # not asked for


def test_uid0_hotkey_read_straight_from_the_bytes(snap, payloads):
    # Vec<NeuronInfoLite> starts with its compact length (1024 -> 2 bytes), then uid 0's hotkey.
    raw = payloads[NIL]
    assert raw[:2] == bytes([(1024 << 2 | 1) & 0xFF, (1024 << 2 | 1) >> 8])
    hotkey = ss58_encode(raw[2:34], 42)
    assert hotkey == "5DkMmXtWf16RNdusZGCrJ7ca7ADPgRnZLVWCWbgA7s7sy1AQ"
    assert snap.neurons.filter(pl.col("hotkey") == hotkey)["uid"].to_list() == [0]


def test_validator_permits_match_the_chains_validator_list(client, snap, payloads):
    metagraph = client.pin(BLOCK).codec.decode_api("SubnetInfoRuntimeApi", "get_selective_mechagraph",
                                                    payloads[MG], BLOCK)
    permitted = snap.neurons.filter(pl.col("validator_permit"))["uid"].to_list()
    assert sorted(metagraph["validators"]) == permitted  # MG[72], computed on chain separately
    assert len(permitted) == 12 <= metagraph["max_validators"] == 128


def test_snapshot_agrees_with_subnet_state_decoded_from_the_runtime_metadata(snap, payloads, v15):
    """get_subnet_state is a separate runtime call; decode it with bt-decode and the V15 types."""
    state = _v15_decode(v15, "get_subnet_state", payloads[STATE])
    neurons = snap.neurons
    assert neurons["hotkey"].to_list() == [_ss58(k) for k in state["hotkeys"]]
    assert neurons["coldkey"].to_list() == [_ss58(k) for k in state["coldkeys"]]
    for column, field in (("alpha_stake", "alpha_stake"), ("tao_stake", "tao_stake"),
                          ("total_stake", "total_stake"), ("emission", "emission"), ("consensus", "consensus"),
                          ("incentive", "incentives"), ("dividends", "dividends"), ("active", "active"),
                          ("validator_permit", "validator_permit"), ("last_update", "last_update"),
                          ("block_at_registration", "block_at_registration")):
        assert neurons[column].to_list() == list(state[field]), column
    assert neurons["alpha_stake"].sum() == 752363410573525
    assert neurons["tao_stake"].sum() == 5397055331935463
    assert neurons["total_stake"].sum() == 1723833369970050


def test_total_stake_is_alpha_plus_tao_times_one_tao_weight(snap):
    """total = alpha + tao × TaoWeight (chain_interface.md §3), with one TaoWeight for every uid."""
    neurons = snap.neurons
    assert neurons.filter(pl.col("tao_stake") > 0).height == 21
    biggest = neurons.sort("tao_stake").row(-1, named=True)
    tao_weight = (biggest["total_stake"] - biggest["alpha_stake"]) / biggest["tao_stake"]
    assert abs(tao_weight - 0.18) < 1e-9
    # every uid, to the rao (the chain floors a fixed-point product)
    residual = (pl.col("total_stake").cast(pl.Float64) - pl.col("alpha_stake").cast(pl.Float64)
                - pl.col("tao_stake").cast(pl.Float64) * tao_weight)
    assert neurons.select(residual.abs().max()).item() <= 1.0


def test_axon_columns(snap):
    first = snap.neurons.row(0, named=True)
    # uid 0 serves at ip 3235789677 = 192.222.59.109, port 6028, protocol 4
    assert (first["axon_ip"], first["axon_port"], first["axon_protocol"]) == ("192.222.59.109", 6028, 4)


# -- three decoders of the same bytes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def codec(client, snap):
    """The runtime codec the snapshot decoded with: built from the recording's own V15 metadata."""
    return client.pin(BLOCK).codec


def test_the_snapshot_decodes_with_the_runtimes_own_v15_metadata(codec, recordings):
    raw = bytes.fromhex((recordings / "metadata_v15.hex").read_text().strip()[2:])
    assert codec.is_v15 and codec.spec_version == 343
    assert raw.find(codec.metadata) > 0 and len(codec.metadata) > 290_000  # the blob inside Option<OpaqueMetadata>
    assert codec.api("NeuronInfoRuntimeApi", "get_neurons_lite")["output"] == "scale_info::633"


def test_three_decoders_agree(codec, payloads, v15):
    """bittensor-core with the runtime's V15 types (our path), bt-decode with the same V15 registry, and
    bt-decode's own compiled NeuronInfoLite struct: the same values from the same bytes."""
    lite = codec.decode_api("NeuronInfoRuntimeApi", "get_neurons_lite", payloads[NIL], BLOCK)
    graph = codec.decode_api("SubnetInfoRuntimeApi", "get_selective_mechagraph", payloads[MG], BLOCK)
    lite_bt = bt_decode.NeuronInfoLite.decode_vec(payloads[NIL])
    graph_v15 = _v15_decode(v15, "get_selective_mechagraph", payloads[MG])

    assert len(lite) == len(lite_bt) == graph["num_uids"] == 1024
    hotkeys = [n["hotkey"] for n in lite]
    assert hotkeys == graph["hotkeys"] == [ss58_encode(bytes(n.hotkey), 42) for n in lite_bt]
    assert hotkeys == [_ss58(k) for k in graph_v15["hotkeys"]]
    assert [[tuple(s) for s in n["stake"]] for n in lite] == [
        [(ss58_encode(bytes(k), 42), v) for k, v in n.stake] for n in lite_bt]
    for lite_field, graph_field in (("consensus", "consensus"), ("incentive", "incentives"),
                                    ("dividends", "dividends"), ("emission", "emission"),
                                    ("last_update", "last_update"), ("validator_permit", "validator_permit")):
        values = [n[lite_field] for n in lite]
        assert values == graph[graph_field] == list(graph_v15[graph_field]), lite_field
        assert values == [getattr(n, lite_field) for n in lite_bt], lite_field
    assert [n["validator_trust"] for n in lite] == [n.validator_trust for n in lite_bt]
    for name in ("alpha_stake", "tao_stake", "total_stake", "block_at_registration"):
        assert graph[name] == list(graph_v15[name]), name
    assert all(0 <= v <= 65535 for n in lite for v in (n["consensus"], n["dividends"], n["validator_trust"]))
    assert len(graph) == 74  # the spec-343 SelectiveMetagraph: every field, by name


# -- weights and bonds (storage query_map, spec 208, netuid 23) -----------------------------------------


def test_weights_query_map_netuid_23(recordings, tmp_path):
    chain = open_chain(spec_208_replay(recordings, "weights.json", tmp_path))
    head = chain.head_block(finalized=False)
    snap = chain.snapshot(23, head, parts=("weights",))
    assert (head, snap.spec_version) == (3264158, 208)
    weights = snap.weights
    assert weights.schema == tables.WEIGHTS.polars_schema()
    assert weights.rows() == [(23, 0, 3264158, 10, 10, 65535)]  # uid 10's self-weight, max-upscaled

    # substrate-interface's own query_map (V14 metadata, scalecodec) over the same replay gives the same rows
    stored = [(k.value, v.value) for k, v in _substrate_interface(recordings / "weights.json").query_map(
        "SubtensorModule", "Weights", [23], block_hash=snap.block_hash, ignore_decoding_errors=False)]
    assert stored == [(10, [(10, 65535)])]
    chain.close()


def test_bonds_query_map_netuid_23(recordings, tmp_path):
    chain = open_chain(spec_208_replay(recordings, "bonds.json", tmp_path))
    head = chain.head_block(finalized=False)
    snap = chain.snapshot(23, head, parts=("bonds",))
    stored = [(k.value, v.value) for k, v in _substrate_interface(recordings / "bonds.json").query_map(
        "SubtensorModule", "Bonds", [23], block_hash=snap.block_hash, ignore_decoding_errors=False)]
    # 19 validators hold a Bonds row, all empty at this block: no edges
    assert [uid for uid, _ in stored] == list(range(19))
    assert all(row == [] for _, row in stored)
    assert snap.bonds.height == 0 and snap.bonds.schema == tables.BONDS.polars_schema()
    chain.close()


def _substrate_interface(path):
    """substrate-interface with its own V14 decoding over a replay: an independent storage decoder."""
    from substrateinterface import SubstrateInterface

    from tasks.chain.transport import ReplayTransport

    replay = ReplayTransport(path)
    si = SubstrateInterface(websocket=replay, ss58_format=42, use_remote_preset=False, auto_discover=False)
    si.transport = replay
    return si


# -- merged directory -----------------------------------------------------------------------------


def test_directory_replay_merges_files_and_refuses_ambiguous_answers(recordings):
    chain = open_chain(f"replay:{recordings}")
    assert chain.snapshot(NETUID, BLOCK, parts=("neurons",)).neurons.height == 1024
    with pytest.raises(RecordingMissError, match=r"answered differently by files .*chain_getBlockHash"):
        chain.head_block(finalized=False)  # every file recorded a different head
    chain.close()


# -- spec 208 (pre-dTAO) runtime-API payloads: Vec<u8>-wrapped -------------------------------------------


def _head_state_call(recordings, name: str) -> bytes:
    recording = json.loads((recordings / name).read_text())
    (answer,) = recording["state_call"].values()
    return bytes.fromhex(answer["result"][2:])


def test_spec_208_neurons_lite_wrapped_in_vec_u8(recordings):
    data = _head_state_call(recordings, "neurons_lite.json")
    ours = scale.decode("Vec<SubtensorNeuronInfoLite>", data, wrapped=True)
    theirs = bt_decode.NeuronInfoLite.decode_vec(scale.decode("Vec<u8>", data))
    assert len(ours) == len(theirs) == 19
    assert [n["uid"] for n in ours] == list(range(19))
    assert [n["hotkey"] for n in ours] == [ss58_encode(bytes(n.hotkey), 42) for n in theirs]
    assert [n["stake"] for n in ours] == [[(ss58_encode(bytes(k), 42), v) for k, v in n.stake] for n in theirs]
    for field in ("validator_trust", "dividends", "consensus", "incentive", "emission", "last_update"):
        assert [n[field] for n in ours] == [getattr(n, field) for n in theirs], field


def test_spec_208_hyperparams_wrapped_in_vec_u8(recordings):
    data = _head_state_call(recordings, "get_subnet_hyperparameters.json")
    ours = scale.decode("SubtensorSubnetHyperparams", data, wrapped=True)
    theirs = bt_decode.SubnetHyperparameters.decode(scale.decode("Vec<u8>", data))
    assert ours == {name: getattr(theirs, name if name != "commit_reveal_period"
                                  else "commit_reveal_weights_interval") for name in ours}
    assert (ours["tempo"], ours["kappa"], ours["immunity_period"]) == (1000, 32767, 5000)
