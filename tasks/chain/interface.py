"""The chain client contract: what `ws://` nodes, `replay:` recordings and the simulated subnet share.

A snapshot reads everything at ONE pinned block hash (chain_interface.md §2.2 point 5) and returns
frames that match schemas.chain exactly (DESIGN.md §4): rao as UInt64, u16 values as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import polars as pl

from schemas import chain as chain_tables
from schemas import validate_frame

#: The parts a snapshot can read, named after the warehouse tables they fill.
PARTS: tuple[str, ...] = ("blocks", "subnets", "neurons", "weights", "bonds")
_TABLES = {"blocks": chain_tables.BLOCKS, "subnets": chain_tables.SUBNETS,
           "neurons": chain_tables.NEURONS, "weights": chain_tables.WEIGHTS, "bonds": chain_tables.BONDS}


@dataclass(frozen=True)
class Snapshot:
    """One subnet read at one block hash. A part is None only when the caller did not ask for it.

    blocks: one row (the block); subnets: one row (netuid, block); neurons: a row per uid;
    weights / bonds: a row per stored edge, for every mechanism of the subnet.
    """

    netuid: int
    block: int
    block_hash: str
    spec_version: int
    blocks: pl.DataFrame | None = None
    subnets: pl.DataFrame | None = None
    neurons: pl.DataFrame | None = None
    weights: pl.DataFrame | None = None
    bonds: pl.DataFrame | None = None

    def frames(self) -> dict[str, pl.DataFrame]:
        """The parts that were read, by table name."""
        return {p: getattr(self, p) for p in PARTS if getattr(self, p) is not None}

    def validate(self) -> Snapshot:
        """Check every frame against its schemas.chain table (raises SchemaError naming the problem)."""
        for part, frame in self.frames().items():
            validate_frame(frame, _TABLES[part], where=f"snapshot netuid {self.netuid} block {self.block}")
        return self


@runtime_checkable
class ChainClient(Protocol):
    """Read access to a Subtensor chain (signed writes: ChainWriter)."""

    source: str  # the URL it reads from, recorded in blocks.source

    def head_block(self, finalized: bool = True) -> int:
        """Number of the finalized head (or the best head with finalized=False)."""

    def block_hash(self, block: int) -> str:
        """The hash of block number `block` ('0x…')."""

    def snapshot(self, netuid: int, block: int, parts: tuple[str, ...] = PARTS) -> Snapshot:
        """Read `parts` of subnet `netuid` at block `block`, all at that block's hash."""

    def close(self) -> None:
        """Release the connection; write the recording when recording."""


def check_parts(parts) -> tuple[str, ...]:
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"unknown snapshot part(s) {unknown or parts!r}; known: {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in parts)


@dataclass(frozen=True)
class Submission:
    """The outcome of one signed extrinsic (or its simulated equivalent)."""

    ok: bool
    block: int | None  # the block it was included in; None if it never was
    extrinsic_hash: str | None
    events: tuple[str, ...] = ()  # "Pallet.Event" names it triggered, e.g. "SubtensorModule.WeightsSet"
    error: str | None = None  # the chain's error, e.g. "SubtensorModule.SettingWeightsTooFast"


@dataclass(frozen=True)
class Commit:
    """A weight commit on a commit-reveal subnet: the signed commit and how it will be revealed.

    method: "commit_timelocked" (the chain decrypts and sets the row itself at drand round
    `reveal_round`) or "commit_hash" (the committer sends `reveal_weights` with `salt` from block
    `reveal_block`). `call` is the committed call's bytes (for audit; carries no secret).
    """

    submission: Submission
    method: str
    reveal_round: int | None
    reveal_block: int | None
    salt: list[int] | None
    call: bytes | None = None


@runtime_checkable
class ChainWriter(Protocol):
    """Signed writes: what a validator and a miner send. `hotkey` is a substrate-interface Keypair."""

    def set_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                    mechid: int = 0) -> Submission:
        """Set this hotkey's u16 weight row (the chain max-upscales it and checks it, chain_interface.md §6.2)."""

    def serve_axon(self, netuid: int, ip: str, port: int, hotkey) -> Submission:
        """Publish the hotkey's axon address on the subnet."""

    def push_method(self, netuid: int) -> str:
        """How the subnet takes weights now: "set_weights", "commit_timelocked" or "commit_hash"."""

    def commit_weights(self, netuid: int, uids: list[int], weights: list[int], version_key: int, hotkey,
                       mechid: int = 0) -> Commit:
        """Commit the row on a commit-reveal subnet (see Commit)."""

    def reveal_weights(self, netuid: int, uids: list[int], weights: list[int], salt: list[int], version_key: int,
                       hotkey) -> Submission:
        """Open a hash commit."""

    def stored_weights(self, netuid: int, uid: int, block: int | None = None, mechid: int = 0) -> list:
        """The (miner uid, u16) row the chain holds for validator `uid` at `block` (head when None)."""
