"""Flow `consensus`: recompute epochs from warehouse snapshots and compare them with the chain.

For every snapshot block P of the subnet in the range, the engine recomputes "the epoch at P + 1" on
that state (tasks/consensus/inputs.py explains why); results go to `epoch_results` under the variant
`chain` (exact replay). Where the chain ran that epoch and its snapshot at P + 1 is in the warehouse,
a parity table says, per output column, on how many uids the recomputation equals the chain.

Each epoch is recomputed from its own snapshot alone (the snapshot holds the chain's bonds, so no
epoch depends on another's output), so the range is cut into chunks of `chunk_epochs` snapshots. A
chunk is one task on the flow's task runner (flows/runners.py): it reads only its own snapshots from
the warehouse, recomputes, writes its epochs (replacing exactly those, so a rerun leaves one copy)
and returns a small parity summary. Memory is bounded by the chunks in flight, never the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.runners import CHUNK_LOCK_TIMEOUT_S, concurrency_limit, configured_task_runner, submit_windowed
from tasks.consensus import run_epochs
from tasks.consensus.inputs import chain_parity, epoch_inputs_from_snapshots
from warehouse import Warehouse

CHAIN_VARIANT = "chain"
DEFAULT_CHUNK_EPOCHS = 100  # snapshots per chunk: a tempo-spaced day of 20 subnets, or 100 blocks of one
PARITY_SCHEMA = {"column": pl.String, "uids": pl.UInt32, "equal": pl.UInt32, "max_abs_diff": pl.UInt64}


@dataclass(frozen=True)
class EpochChunk:
    """The epochs at blocks first_block..last_block of `netuid`: one per stored snapshot P in
    first_block − 1..last_block − 1, recomputed from it (the epoch at P + 1)."""

    netuid: int
    first_block: int
    last_block: int
    epochs: int


def plan_epoch_chunks(wh: Warehouse, netuid: int, start_block: int, end_block: int,
                      chunk_epochs: int) -> list[EpochChunk]:
    """The snapshots whose epochs fall in start_block..end_block, cut into chunks of `chunk_epochs`.

    Reads only the `block` column of `subnets` (one row per snapshot), lazily.
    """
    if end_block < start_block:
        raise ValueError(f"end block {end_block} is before start block {start_block}")
    if chunk_epochs < 1:
        raise ValueError(f"chunk_epochs must be at least 1, got {chunk_epochs}")
    first_input = max(start_block, 1) - 1
    if end_block < 1:
        inputs = pl.DataFrame(schema={"block": pl.UInt64})
    else:
        inputs = (wh.scan("subnets", netuid=netuid, block_start=first_input, block_end=end_block - 1)
                  .select("block").unique().sort("block").collect())
    if inputs.height == 0:
        raise ValueError(f"the warehouse {wh.root} holds no snapshot of netuid {netuid} in blocks "
                         f"{first_input}..{end_block - 1}; run `yumaflow snapshot` or `backfill` first")
    chunks = (inputs.with_row_index("i").group_by(pl.col("i") // chunk_epochs)
              .agg(pl.col("block").min().alias("first"), pl.col("block").max().alias("last"), pl.len())
              .sort("first"))
    return [EpochChunk(netuid, first + 1, last + 1, n) for first, last, n in
            chunks.select("first", "last", "len").iter_rows()]  # one iteration per chunk


def read_snapshots(warehouse: Warehouse, netuid: int, first_block: int, last_block: int) -> dict[str, pl.DataFrame]:
    return {name: warehouse.read(name, netuid=netuid, block_start=first_block, block_end=last_block)
            for name in ("subnets", "neurons", "weights", "bonds")}


def recompute(snapshots: dict[str, pl.DataFrame], last_input_block: int):
    inputs_at = {name: frame.filter(pl.col("block") <= last_input_block) for name, frame in snapshots.items()}
    inputs = epoch_inputs_from_snapshots(inputs_at["subnets"], inputs_at["neurons"], inputs_at["weights"],
                                         inputs_at["bonds"])
    return inputs, run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])


def store(warehouse: Warehouse, inputs: dict[str, pl.DataFrame], outputs, variant: str) -> None:
    tag = pl.lit(variant, pl.String).alias("variant")
    # Edge tables may hold no row for an epoch (no weights, no new bonds): its earlier rows must go all
    # the same, so every epoch's scope is replaced explicitly.
    epochs = inputs["epochs"].select("netuid", "mechid", "block")
    results = outputs.neurons.select(tag, pl.all())
    warehouse.write_many({
        "epochs": inputs["epochs"], "epoch_neurons": inputs["neurons"],
        "epoch_weights": inputs["weights"], "epoch_bonds": inputs["bonds"],
        "epoch_results": results,
        "epoch_result_bonds": outputs.bonds.select(tag, pl.all()),
    }, replace={"epoch_weights": epochs, "epoch_bonds": epochs,
                "epoch_result_bonds": results.select("variant", "netuid", "mechid", "block").unique()})


def parity_summary(parity: pl.DataFrame) -> pl.DataFrame:
    """One row per output column: uids compared, uids equal, largest difference (parity rows summed)."""
    return (parity.group_by("column").agg(pl.col("uids").sum(), pl.col("equal").sum(), pl.col("max_abs_diff").max())
            .cast(PARITY_SCHEMA).sort("column"))


@task(name="recompute-epoch-chunk", cache_policy=NO_CACHE)
def recompute_chunk(warehouse: str, chunk: EpochChunk) -> dict:
    """Recompute and store one chunk's epochs; its counts and parity summary (small, whatever the chunk)."""
    wh = Warehouse(Path(warehouse), lock_timeout_s=CHUNK_LOCK_TIMEOUT_S)
    # The chain's own outputs of the chunk's last epoch are in the snapshot at last_block.
    snapshots = read_snapshots(wh, chunk.netuid, chunk.first_block - 1, chunk.last_block)
    inputs, outputs = recompute(snapshots, chunk.last_block - 1)
    store(wh, inputs, outputs, CHAIN_VARIANT)
    parity = chain_parity(outputs.neurons, snapshots["neurons"], snapshots["subnets"])
    return {"epochs": outputs.neurons.select("netuid", "mechid", "block").unique().height,
            "compared_epochs": parity.select("block").n_unique() if parity.height else 0,
            "parity": parity_summary(parity)}


@flow(name="consensus", log_prints=True, task_runner=configured_task_runner())
def consensus_flow(netuid: int, start_block: int, end_block: int, warehouse: str,
                   chunk_epochs: int = DEFAULT_CHUNK_EPOCHS, concurrency: int | None = None) -> dict:
    """Recompute the epochs at blocks start_block..end_block of `netuid` from the warehouse.

    In chunks of `chunk_epochs` snapshots, `concurrency` at once (default: 2 on the thread pool, the
    worker threads of a Dask cluster); the results do not depend on either.
    """
    chunks = plan_epoch_chunks(Warehouse(Path(warehouse)), netuid, start_block, end_block, chunk_epochs)
    done = [result for _chunk, result in submit_windowed(
        chunks, lambda c: recompute_chunk.submit(warehouse, c), concurrency_limit(concurrency))]
    epochs = sum(r["epochs"] for r in done)
    summary = parity_summary(pl.concat([r["parity"] for r in done]))
    if summary.height:
        create_table_artifact(key=f"consensus-parity-{netuid}", table=summary.to_dicts(),
                              description=f"netuid {netuid}, blocks {start_block}..{end_block}: uids equal to "
                                          f"the chain per output column ({epochs} epochs recomputed)")
    return {"epochs": epochs, "compared_epochs": sum(r["compared_epochs"] for r in done), "parity": summary,
            "chunks": len(chunks)}
