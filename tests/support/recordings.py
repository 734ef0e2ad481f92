"""The real mainnet spec-343 recording (../shared), and edited copies of it for fault tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

SPEC343_METAGRAPH = Path("chain") / "recordings" / "mainnet-spec343" / "metagraph.json"


def load_recording(shared_dir: Path) -> dict:
    """The recorded JSON-RPC answers, by method and params."""
    return json.loads((shared_dir / SPEC343_METAGRAPH).read_text())


def replay_edited(recording: dict, tmp_path: Path, edit, shared_dir: Path | None = None) -> str:
    """A `replay:` source over a copy of `recording` changed in place by `edit(copy)`, with the recording's
    V15 metadata beside it (as in ../shared)."""
    edited = json.loads(json.dumps(recording))
    edit(edited)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    v15 = tmp_path / "metadata_v15.hex"
    if not v15.exists():
        shared = shared_dir or Path(os.environ.get("YUMAFLOW_SHARED", Path(__file__).resolve().parents[3] / "shared"))
        v15.write_text((shared / SPEC343_METAGRAPH.parent / "metadata_v15.hex").read_text())
    return f"replay:{path}"


def spec_208_replay(recordings: Path, name: str, tmp_path: Path) -> str:
    """The spec-208 recording, plus the one answer its spec-208 node would give to a read it was never
    asked: MechanismCountCurrent, a key absent from a runtime before mechanisms (a null change).

    The recordings carry spec 343's metadata (the only one recorded), which declares that item, so the
    metadata-driven reader asks for it; a real spec-208 node answers an unknown key with null.
    """
    import shutil

    from tasks.chain.runtime import RuntimeCodec, strip_option_opaque_metadata

    recording = json.loads((recordings / name).read_text())
    (head_hash,) = {answer["result"] for answer in recording["chain_getBlockHash"].values()} - {None} or {None}
    raw = bytes.fromhex((recordings / "metadata_v15.hex").read_text().strip()[2:])
    codec = RuntimeCodec(strip_option_opaque_metadata(raw), 343, 1)
    key = codec.storage_key("SubtensorModule", "MechanismCountCurrent", [23])
    recording.setdefault("state_queryStorageAt", {})[json.dumps([[key], head_hash])] = {
        "jsonrpc": "2.0", "result": [{"block": head_hash, "changes": [[key, None]]}]}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(json.dumps(recording))
    shutil.copy(recordings / "metadata_v15.hex", tmp_path / "metadata_v15.hex")
    return f"replay:{tmp_path / name}"


def add_storage_map(recording: dict, codec, item: str, first_key, entries: list[tuple], block_hash: str,
                    page_size: int = 100) -> None:
    """Record the answers a node gives to a paged read of SubtensorModule `item`[first_key]: one page of
    `entries` ((second key, value) encoded as the runtime declares the value), then an empty page."""
    entry = codec.storage("SubtensorModule", item)
    prefix = codec.storage_key("SubtensorModule", item, [first_key])
    keys = [codec.storage_key("SubtensorModule", item, [first_key, second]) for second, _ in entries]
    values = ["0x" + bytes(codec.core.encode(entry.value_type, value)).hex() for _, value in entries]
    paged = recording.setdefault("state_getKeysPaged", {})
    paged[json.dumps([prefix, page_size, prefix, block_hash])] = {"jsonrpc": "2.0", "result": keys}
    if keys:
        paged[json.dumps([prefix, page_size, keys[-1], block_hash])] = {"jsonrpc": "2.0", "result": []}
        recording.setdefault("state_queryStorageAt", {})[json.dumps([keys, block_hash])] = {
            "jsonrpc": "2.0",
            "result": [{"block": block_hash, "changes": [list(p) for p in zip(keys, values, strict=True)]}]}
