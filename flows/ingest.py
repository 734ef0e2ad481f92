"""Flows `snapshot` and `backfill`: chain snapshots into the warehouse (DESIGN.md §8).

A snapshot of subnet N at block B is read at one pinned block hash by `tasks.chain` and written by
`warehouse` as one unit; `ingest_log` then records the block range as complete. A backfill cuts a
block range into chunks, skips the chunks `ingest_log` already holds, reads the rest with bounded
concurrency and retries with backoff on transport errors. A chunk's write replaces exactly that
chunk's snapshots, so a killed backfill run again finishes without duplicates or gaps.

The chunks run on the flow's task runner (flows/runners.py): threads in this process, or the worker
processes of a Dask cluster. A chunk task gets only plain values (the source string, the chunk, the
warehouse path) and opens its own client and `Warehouse`, so a chunk lost with its Dask worker is
simply run again elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runners import (
    CHUNK_LOCK_TIMEOUT_S,
    concurrency_limit,
    configured_task_runner,
    runs_in_flow_process,
    submit_windowed,
)
from tasks.chain import PARTS, ChainClient, Snapshot, open_chain
from tasks.chain.errors import ChainRpcError
from warehouse import Completion, Warehouse

log = logging.getLogger("yumaflow.ingest")

RETRIES = 4
RETRY_DELAYS_S = [1.0, 2.0, 4.0, 8.0]  # exponential backoff between attempts of one chunk


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: the transport or the node failed, not the data.

    A decoding error, an unknown runtime, a missing recording entry or a schema violation would fail
    the same way again, so they fail the chunk at once with their own message.
    """
    if isinstance(exc, ChainRpcError):
        return True
    return isinstance(exc, ConnectionError | TimeoutError | OSError) or type(exc).__name__ in {
        "WebSocketConnectionClosedException", "WebSocketTimeoutException", "WebSocketBadStatusException"}


def _retry_condition(task_, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised by result()
        return is_transient(exc)
    return False


@dataclass(frozen=True)
class Chunk:
    netuid: int
    blocks: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.blocks[0]

    @property
    def last(self) -> int:
        return self.blocks[-1]


def plan_chunks(netuids: list[int], start_block: int, end_block: int, step: int, chunk_size: int,
                warehouse: Warehouse) -> tuple[list[Chunk], int]:
    """The chunks still to read, and how many blocks were already complete in `ingest_log`."""
    if end_block < start_block:
        raise ValueError(f"--end-block {end_block} is before --start-block {start_block}")
    if step < 1 or chunk_size < 1:
        raise ValueError(f"--step ({step}) and --chunk-size ({chunk_size}) must be at least 1")
    wanted = list(range(start_block, end_block + 1, step))
    chunks, done = [], 0
    for netuid in netuids:
        missing = warehouse.missing_blocks(SNAPSHOT_MARKER, netuid, wanted)
        done += len(wanted) - len(missing)
        for i in range(0, len(missing), chunk_size):
            chunks.append(Chunk(netuid, tuple(missing[i:i + chunk_size])))
    return chunks, done


# ingest_log rows are kept per table; a full snapshot is marked complete under every table it fills,
# and this one is the table a backfill consults to decide what is done.
SNAPSHOT_MARKER = "neurons"


def contiguous_runs(blocks: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 9, 10] -> [(1, 3), (7, 7), (9, 10)] for sorted, distinct blocks."""
    runs: list[tuple[int, int]] = []
    for block in blocks:  # one per block of a chunk (tens), not per row
        if runs and block == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], block)
        else:
            runs.append((block, block))
    return runs


def store_snapshots(warehouse: Warehouse, snapshots: list[Snapshot], source: str) -> int:
    """Write snapshots of one subnet, and their ingest_log range, as one commit; rows written.

    Every (netuid, block) read is replaced whole, even in tables where the new read has no rows (a
    validator that cleared its weights must not keep the old edges).
    """
    import polars as pl

    netuid = snapshots[0].netuid
    blocks = sorted(s.block for s in snapshots)
    frames: dict[str, pl.DataFrame] = {}
    for part in PARTS:
        read = [getattr(s, part) for s in snapshots if getattr(s, part) is not None]
        if read:
            frames[part] = pl.concat(read, how="vertical")
    scope = pl.DataFrame({"netuid": [netuid] * len(blocks), "block": blocks},
                         schema={"netuid": pl.UInt16, "block": pl.UInt64})
    replace = {part: (scope.select("block") if part == "blocks" else scope) for part in frames}
    # Only the blocks read are complete: with --step > 1 each is its own range, so a later backfill
    # with a finer step still reads the blocks in between.
    complete = [Completion(part, netuid, first, last, frames[part].height, source)
                for part in frames for first, last in contiguous_runs(blocks)]
    warehouse.write_many(frames, replace=replace, complete=complete)
    return sum(f.height for f in frames.values())


@task(name="read-and-store-chunk", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS_S,
      retry_condition_fn=_retry_condition, cache_policy=NO_CACHE)
def ingest_chunk(source: str, chunk: Chunk, warehouse_root: str, client: ChainClient | None = None) -> int:
    """Read every block of `chunk` and store them; rows written. Opens its own client unless given one."""
    own = client is None
    chain = open_chain(source) if own else client
    try:
        snapshots = [chain.snapshot(chunk.netuid, block) for block in chunk.blocks]
    finally:
        if own:
            chain.close()
    return store_snapshots(Warehouse(Path(warehouse_root), lock_timeout_s=CHUNK_LOCK_TIMEOUT_S), snapshots, source)


@flow(name="snapshot", log_prints=True)
def snapshot_flow(chain: str, netuids: list[int], warehouse: str, block: int | None = None,
                  record: str | None = None) -> dict:
    """Snapshot `netuids` at `block` (default: the finalized head) into the warehouse."""
    client = open_chain(chain, record=record)
    try:
        block = client.head_block(finalized=True) if block is None else block
        rows = {netuid: ingest_chunk(chain, Chunk(netuid, (block,)), warehouse, client=client)
                for netuid in netuids}
    finally:
        client.close()
    return {"block": block, "rows": rows}


@flow(name="backfill", log_prints=True, task_runner=configured_task_runner())
def backfill_flow(chain: str, netuids: list[int], start_block: int, end_block: int, warehouse: str,
                  step: int = 1, chunk_size: int = 10, concurrency: int | None = None, record: str | None = None,
                  progress: bool = True) -> dict:
    """Snapshots of `netuids` every `step` blocks in [start_block, end_block], resumable.

    `concurrency` chunks are read at once (default: 2 on the thread pool, the worker threads of a Dask
    cluster).
    """
    from tqdm import tqdm

    wh = Warehouse(Path(warehouse))
    chunks, already = plan_chunks(netuids, start_block, end_block, step, chunk_size, wh)
    total_blocks = sum(len(c.blocks) for c in chunks)
    # A recording is one file written by one client, so a recorded backfill reads on one connection
    # (the chunks then run one after another on it), in this process.
    if record and not runs_in_flow_process():
        raise ValueError("--record needs the default task runner (threads): a recording is one file "
                         "written by one client in the flow's process, and Dask runs chunks elsewhere")
    shared = open_chain(chain, record=record) if record else None
    limit = 1 if shared is not None else concurrency_limit(concurrency)
    rows = 0
    try:
        with tqdm(total=total_blocks, unit="block", desc="backfill", disable=not progress) as bar:
            for chunk, chunk_rows in submit_windowed(
                    chunks, lambda c: ingest_chunk.submit(chain, c, warehouse, client=shared), limit):
                rows += chunk_rows
                bar.update(len(chunk.blocks))
    finally:
        if shared is not None:
            shared.close()
    return {"chunks": len(chunks), "blocks_read": total_blocks, "blocks_already_complete": already,
            "rows": rows}
