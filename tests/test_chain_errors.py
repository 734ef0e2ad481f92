"""Bad answers give clear errors: truncated or padded SCALE, RPC error objects, requests a recording does
not hold, a runtime that removed or retyped a field yumaflow needs; a runtime never seen before (a new
spec, a new field) is read all the same. Each case edits one answer of the real spec-343 recording, or
a copy of its real V15 metadata."""

from __future__ import annotations

import json

import pytest

from tasks.chain import ChainDecodeError, ChainRpcError, RecordingMissError, open_chain, scale
from tasks.chain.errors import RuntimeMismatch
from tasks.chain.runtime import strip_option_opaque_metadata
from tests.support import metadata_edit
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
    assert MG in message and str(BLOCK) in message and "runtime spec 343 declares" in message


def test_trailing_bytes_are_an_error(recording, tmp_path):
    def pad(answer):
        answer["result"] += "00"
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, pad)))
    with pytest.raises(ChainDecodeError, match=rf"{MG} at block {BLOCK}: .*do not decode"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))


def test_not_hex(recording, tmp_path):
    def garble(answer):
        answer["result"] = "0xzz" + answer["result"][4:]
    chain = open_chain(replay_edited(recording, tmp_path, _edit_state_call(MG, garble)))
    with pytest.raises(ChainDecodeError, match=rf"{MG} at block {BLOCK}: not hex"):
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))


def test_a_spec_never_seen_is_read_from_its_own_metadata(recording, tmp_path):
    """No table of spec versions: a runtime that calls itself 999 is decoded with the metadata it serves."""
    def spec_999(rec):
        for method in ("state_getRuntimeVersion", "chain_getRuntimeVersion"):
            rec[method][json.dumps([PARENT_HASH])]["result"]["specVersion"] = 999
    chain = open_chain(replay_edited(recording, tmp_path, spec_999))
    snap = chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert (snap.spec_version, snap.neurons.height) == (999, 1024)


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
    assert chain.snapshot(NETUID, BLOCK, parts=("neurons",)).spec_version == 999


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


# -- fields by name: a runtime that adds, removes or retypes a field ---------------------------------------

SELECTIVE_METAGRAPH_TYPE = 671  # SelectiveMetagraph<AccountId32> in the spec-343 registry


def _metadata(shared_dir) -> bytes:
    raw = (shared_dir / "chain/recordings/mainnet-spec343/metadata_v15.hex").read_text().strip()
    return strip_option_opaque_metadata(bytes.fromhex(raw[2:]))


def _replay_with_metadata(recording, tmp_path, metadata: bytes, edit=None) -> str:
    """The recording served with `metadata` (an edited copy of the real one) as the runtime's V15."""
    answer = "0x01" + metadata_edit.encode_compact(len(metadata)).hex() + metadata.hex()
    source = replay_edited(recording, tmp_path, edit or (lambda rec: None))
    (tmp_path / "metadata_v15.hex").write_text(answer)
    return source


def test_a_new_field_is_ignored_and_the_snapshot_is_unchanged(recording, shared_dir, tmp_path):
    """As spec 461 added collateral_* to SelectiveMetagraph: a 75th field, Option<Compact<u64>> like
    subnet_emission, answered by the node after the 74 known ones."""
    metadata = _metadata(shared_dir)
    fields = metadata_edit.composite_fields(metadata, SELECTIVE_METAGRAPH_TYPE)
    like = next(f for f in fields if f.name == "subnet_emission")
    grown = fields + [metadata_edit.Field("collateral_locked", like.type_id, like.type_name, [])]
    edited = metadata_edit.with_composite_fields(metadata, SELECTIVE_METAGRAPH_TYPE, grown)

    def answer_75_indexes(rec):
        (key,) = [k for k in rec["state_call"] if json.loads(k)[0] == MG]
        name, params, at = json.loads(key)
        answer = rec["state_call"].pop(key)
        answer["result"] += "01" + metadata_edit.encode_compact(123_456_789).hex()  # Some(123456789)
        # the request now asks for 75 indexes: compact length 74 -> 75, one more u16 index
        indexes = params[2 + 6:]  # netuid u16, mechanism u8, then Vec<u16>
        grown_params = params[:2 + 6] + metadata_edit.encode_compact(75).hex() + indexes[4:] + (74).to_bytes(
            2, "little").hex()
        rec["state_call"][json.dumps([name, grown_params, at])] = answer
    plain = open_chain(replay_edited(recording, tmp_path / "plain", lambda rec: None)).snapshot(
        NETUID, BLOCK, parts=("neurons",))
    chain = open_chain(_replay_with_metadata(recording, tmp_path, edited, answer_75_indexes))
    grown_snap = chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    assert grown_snap.neurons.equals(plain.neurons) and grown_snap.neurons.height == 1024
    raw = chain.runtime_api(chain.pin(BLOCK), "SubnetInfoRuntimeApi", "get_selective_mechagraph", netuid=NETUID,
                            subid=0, metagraph_indexes=list(range(75)))
    assert raw["collateral_locked"] == 123_456_789  # decoded by name, kept where useful


@pytest.mark.parametrize(("change", "verdict"), [("remove", "missing"), ("retype", "retyped")])
def test_a_removed_or_retyped_field_is_a_clear_error(recording, shared_dir, tmp_path, change, verdict):
    metadata = _metadata(shared_dir)
    fields = metadata_edit.composite_fields(metadata, SELECTIVE_METAGRAPH_TYPE)
    if change == "remove":
        fields = [f for f in fields if f.name != "hotkeys"]
    else:  # hotkeys: Option<Vec<AccountId>> -> the type of `active`, Option<Vec<bool>>
        active = next(f for f in fields if f.name == "active")
        fields = [metadata_edit.Field(f.name, active.type_id, active.type_name, f.docs) if f.name == "hotkeys" else f
                  for f in fields]
    edited = metadata_edit.with_composite_fields(metadata, SELECTIVE_METAGRAPH_TYPE, fields)
    chain = open_chain(_replay_with_metadata(recording, tmp_path, edited))
    with pytest.raises(RuntimeMismatch) as err:
        chain.snapshot(NETUID, BLOCK, parts=("neurons",))
    message = str(err.value)
    assert MG in message and "runtime spec 343" in message and f"field 'hotkeys' {verdict}" in message
