"""Bad answers give clear errors: truncated or padded SCALE, unknown runtimes, RPC error objects,
requests a recording does not hold. Each case edits one answer of the real spec-343 recording."""

from __future__ import annotations

import json

import pytest

from tasks.chain import ChainDecodeError, ChainRpcError, RecordingMissError, UnknownSpecError, open_chain, scale
from tasks.chain.registry import layout_for
from tests.support.recordings import load_recording, replay_edited

BLOCK, NETUID = 6852690, 1
BLOCK_HASH = "0xdb13c066e2c63969f140164fb3bfe7a0aaa7b71407fc0fe525d68e57329ef9d0"
PARENT_HASH = "0x7348409fe36728fa2ac7f0886346fd35b79804d294046d152ba1baccd9d0be3a"
MG = "SubnetInfoRuntimeApi_get_selective_mechagraph"


@pytest.fixture(scope="module")
def recording(shared_dir) -> dict:
    return load_recording(shared_dir)


def _edit_state_call(method, change):
    def edit(rec):
        for key, answer in rec["state_call"].items():
            if json.loads(key)[0] == method:
                change(answer)
    return edit


def test_truncated_scale_bytes(recording, tmp_path):
    def cut(answer):
        answer["result"] = answer["result"][:-20]  # drop the last 10 bytes
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, cut)))
    with pytest.raises(ChainDecodeError) as err:
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    message = str(err.value)
    assert MG in message and str(BLOCK) in message
    assert "Option<SubtensorSelectiveMetagraph>" in message and "spec 343" in message
    assert "left" in message  # "... needs N byte(s) at offset X, only Y left"


def test_trailing_bytes_are_an_error(recording, tmp_path):
    def pad(answer):
        answer["result"] += "00"
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, pad)))
    with pytest.raises(ChainDecodeError, match=r"1 byte\(s\) left over after Option<SubtensorSelectiveMetagraph>"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))


def test_not_hex(recording, tmp_path):
    def garble(answer):
        answer["result"] = "0xzz" + answer["result"][4:]
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, garble)))
    with pytest.raises(ChainDecodeError, match=rf"{MG} at block {BLOCK}: not hex"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))


def test_unknown_spec_version(recording, tmp_path):
    def spec_999(rec):
        for method in ("state_getRuntimeVersion", "chain_getRuntimeVersion"):
            rec[method][json.dumps([PARENT_HASH])]["result"]["specVersion"] = 999
    chain = open_chain(replay_edited(recording, tmp_path, spec_999))
    with pytest.raises(UnknownSpecError) as err:
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    message = str(err.value)
    assert "spec_version 999" in message and f"block {BLOCK}" in message
    assert "208" in message and "218" in message and "320–412" in message and "413–441" in message


def test_layout_by_spec():
    assert layout_for(218).name == "raonet-218"
    assert layout_for(343).name == "mechanisms-343"
    assert layout_for(425).name == "current-425"
    with pytest.raises(UnknownSpecError, match="unknown runtime spec_version 250"):
        layout_for(250)


def test_runtime_upgrade_block_asks_the_blocks_own_version(recording, tmp_path):
    """A header with a RuntimeEnvironmentUpdated digest (0x08) ran new code: its own version counts."""
    def upgrade(rec):
        for answer in rec["chain_getHeader"].values():
            answer["result"]["digest"]["logs"].append("0x08")
    chain = open_chain(replay_edited(recording, tmp_path, upgrade))
    with pytest.raises(RecordingMissError, match=rf"'state_getRuntimeVersion' with params \['{BLOCK_HASH}'\]"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))

    def upgrade_to_999(rec):
        upgrade(rec)
        answer = json.loads(json.dumps(rec["state_getRuntimeVersion"][json.dumps([PARENT_HASH])]))
        answer["result"]["specVersion"] = 999
        rec["state_getRuntimeVersion"][json.dumps([BLOCK_HASH])] = answer
    chain = open_chain(replay_edited(recording, tmp_path, upgrade_to_999))
    with pytest.raises(UnknownSpecError, match="spec_version 999"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))


def test_rpc_error_object(recording, tmp_path):
    error = {"code": -32000, "message": "Client error: Execution failed: Runtime panicked"}

    def fail(answer):
        answer.pop("result")
        answer["error"] = error
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, fail)))
    with pytest.raises(ChainRpcError) as err:
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert err.value.error == error
    assert "state_call" in str(err.value) and MG in str(err.value) and "Runtime panicked" in str(err.value)


def test_unrecorded_request_names_method_and_params(shared_dir):
    chain = open_chain(f"replay:{shared_dir / 'chain/recordings/mainnet-spec343/metagraph.json'}")
    with pytest.raises(RecordingMissError, match=r"method 'chain_getBlockHash' with params \[6852691\]"):
        chain.snapshot(NETUID, BLOCK + 1)
    # Timestamp.Now was never recorded at this block: asking for the blocks row must fail, not guess
    with pytest.raises(RecordingMissError, match=r"'state_queryStorageAt' with params \[\['0x"):
        chain.snapshot(NETUID, BLOCK, parts=("blocks",))


def test_bad_snapshot_parts_and_sources():
    with pytest.raises(ValueError, match="unknown snapshot part"):
        open_chain("replay:/nonexistent").snapshot(1, 1, parts=("axons",))
    with pytest.raises(ValueError, match=r"expected ws://…, wss://… or replay:PATH"):
        open_chain("http://127.0.0.1:9944")
    with pytest.raises(FileNotFoundError, match="no recording"):
        open_chain("replay:/nonexistent").head_block()


@pytest.mark.parametrize(("type_string", "hex_data", "message"), [
    ("bool", "02", "bool byte 2 at offset 0 is neither 0 nor 1"),
    ("Option<u16>", "020000", "Option tag 2 at offset 0"),
    ("Vec<Compact<u64>>", "0c0408", "Compact needs a byte at offset 3, none left"),
    ("Vec<(u16, u16)>", "0801000200", "needs 8 byte(s) at offset 1, only 4 left"),
    ("Compact<u64>", "13ffff", "needs 8 byte(s) at offset 1, only 2 left"),
    ("SubtensorHyperparamValue", "09", "variant index 9"),
])
def test_scale_decoder_errors(type_string, hex_data, message):
    with pytest.raises(scale.Truncated, match=message.replace("(", r"\(").replace(")", r"\)")):
        scale.decode(type_string, bytes.fromhex(hex_data))


def test_scale_decoder_values():
    assert scale.decode("Compact<u64>", bytes.fromhex("13ffffffffffffffff")) == 2**64 - 1
    assert scale.decode("Compact<u16>", bytes.fromhex("0110")) == 1024
    assert scale.decode("Vec<bool>", bytes.fromhex("080100")) == [True, False]
    assert scale.decode("Vec<u8>", bytes.fromhex("0c010203"), wrapped=False) == b"\x01\x02\x03"
    assert scale.decode("Vec<u16>", bytes.fromhex("14" + "0801000200"), wrapped=True) == [1, 2]
    with pytest.raises(scale.Truncated, match="wrapper says 3 bytes, 4 follow"):
        scale.decode("u16", bytes.fromhex("0c01020304"), wrapped=True)


def test_current_layout_reads_hyperparams_v3_by_name(recording, tmp_path):
    """Spec 413+ answers hyperparameters as a name -> value list. The payload is encoded by scalecodec
    (a different SCALE implementation) from the documented layout (chain_interface.md §4)."""
    from scalecodec.base import RuntimeConfigurationObject
    from scalecodec.type_registry import load_type_registry_preset

    from tasks.chain.registry import TYPE_REGISTRY

    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    config.update_type_registry(TYPE_REGISTRY)
    entries = [{"name": "kappa", "value": {"U16": 32767}}, {"name": "yuma_version", "value": {"U16": 3}},
               {"name": "alpha_sigmoid_steepness", "value": {"I32F32": -(10 << 32)}},
               {"name": "liquid_alpha_enabled", "value": {"Bool": True}},
               {"name": "a_future_parameter", "value": {"U64F64": 3 << 64}}]
    payload = config.create_scale_object("Option<Vec<SubtensorHyperparamEntry>>").encode(entries).to_hex()

    def as_spec_425(rec):
        for method in ("state_getRuntimeVersion", "chain_getRuntimeVersion"):
            rec[method][json.dumps([PARENT_HASH])]["result"]["specVersion"] = 425
        rec["state_call"][json.dumps(["SubnetInfoRuntimeApi_get_subnet_hyperparams_v3", "0x0100", BLOCK_HASH])] = {
            "result": payload}
    chain = open_chain(replay_edited(recording, tmp_path, as_spec_425))
    pinned = chain.pin(BLOCK)
    assert (pinned.spec_version, pinned.layout.name) == (425, "current-425")
    assert chain.hyperparams(pinned, NETUID) == {"kappa": 32767, "yuma_version": 3,
                                                 "alpha_sigmoid_steepness": -(10 << 32),
                                                 "liquid_alpha_enabled": True, "a_future_parameter": 3 << 64}
    assert chain.snapshot(NETUID, BLOCK, parts=("neurons",)).neurons.height == 1024
