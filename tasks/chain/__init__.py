"""Chain access (DESIGN.md §6): the only module that talks to a node.

`open_chain(url)` gives a ChainClient for `ws://…`, `wss://…` (a Subtensor node) or `replay:PATH`
(recorded JSON-RPC traffic); `record=PATH` records the session for later replay.
"""

from tasks.chain.errors import ChainDecodeError, ChainError, ChainRpcError, RecordingMissError, UnknownSpecError
from tasks.chain.interface import PARTS, ChainClient, Snapshot


def open_chain(source: str, *, record: str | None = None, **options) -> ChainClient:
    """A chain client for `source`; connects on first use. `sim` arrives with the simulated subnet."""
    from tasks.chain.substrate import SubstrateChain

    return SubstrateChain(source, record=record, **options)


__all__ = ["PARTS", "ChainClient", "ChainDecodeError", "ChainError", "ChainRpcError", "RecordingMissError",
           "Snapshot", "UnknownSpecError", "open_chain"]
