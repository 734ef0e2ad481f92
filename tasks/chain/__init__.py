"""Chain access (DESIGN.md §6): the only module that talks to a node.

`open_chain(url)` gives a ChainClient for `ws://…`, `wss://…` (a Subtensor node), `replay:PATH`
(recorded JSON-RPC traffic) or `sim`, `sim:SEED`, `sim:SEED@STATE_FILE` (the simulated subnet,
tasks/simnet/chain.py); `record=PATH` records a node session for later replay.
"""

from tasks.chain.errors import ChainDecodeError, ChainError, ChainRpcError, RecordingMissError, RuntimeMismatch
from tasks.chain.interface import PARTS, ChainClient, Snapshot


def check_source(source: str) -> str:
    """`source` if it names a chain yumaflow can open; else ValueError (FileNotFoundError for a missing
    recording) naming it and the accepted forms. Cheap: nothing is opened."""
    from pathlib import Path

    if source == "sim" or source.startswith("sim:"):
        from tasks.simnet.chain import parse_sim_source

        parse_sim_source(source)
    elif source.startswith("replay:"):
        if not Path(source[len("replay:"):]).exists():
            raise FileNotFoundError(f"chain source {source!r}: no recording at {source[len('replay:'):]}")
    elif not source.startswith(("ws://", "wss://")) or len(source.split("://", 1)[1]) == 0:
        raise ValueError(f"chain source {source!r}: expected sim[:SEED][@STATE_FILE], ws://…, wss://… or "
                         f"replay:PATH")
    return source


def open_chain(source: str, *, record: str | None = None, **options) -> ChainClient:
    """A chain client for `source`; connects on first use. `sim…` sources give a SimChain (which is
    also a ChainWriter); `record` does not apply to them."""
    if source == "sim" or source.startswith("sim:"):
        if record:
            raise ValueError(f"chain source {source!r}: record= applies to node sessions, not the simulation")
        from tasks.simnet.chain import SimChain

        return SimChain.open(source, **options)
    from tasks.chain.substrate import SubstrateChain

    return SubstrateChain(source, record=record, **options)


__all__ = ["PARTS", "ChainClient", "ChainDecodeError", "ChainError", "ChainRpcError", "RecordingMissError",
           "RuntimeMismatch", "Snapshot", "check_source", "open_chain"]
