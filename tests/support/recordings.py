"""The real mainnet spec-343 recording (../shared), and edited copies of it for fault tests."""

from __future__ import annotations

import json
from pathlib import Path

SPEC343_METAGRAPH = Path("chain") / "recordings" / "mainnet-spec343" / "metagraph.json"


def load_recording(shared_dir: Path) -> dict:
    """The recorded JSON-RPC answers, by method and params."""
    return json.loads((shared_dir / SPEC343_METAGRAPH).read_text())


def replay_edited(recording: dict, tmp_path: Path, edit) -> str:
    """A `replay:` source over a copy of `recording` changed in place by `edit(copy)`."""
    edited = json.loads(json.dumps(recording))
    edit(edited)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    return f"replay:{path}"
