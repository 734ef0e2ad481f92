"""Flow `consensus`: recompute epochs from warehouse snapshots and compare them with the chain.

For every snapshot block P of the subnet in the range, the engine recomputes "the epoch at P + 1" on
that state (tasks/consensus/inputs.py explains why); results go to `epoch_results` under the variant
`chain` (exact replay). Where the chain ran that epoch and its snapshot at P + 1 is in the warehouse,
a parity table says, per output column, on how many uids the recomputation equals the chain.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.consensus import run_epochs
from tasks.consensus.inputs import chain_parity, epoch_inputs_from_snapshots
from warehouse import Warehouse

CHAIN_VARIANT = "chain"


@task(name="read-snapshots", cache_policy=NO_CACHE)
def read_snapshots(warehouse: Warehouse, netuid: int, first_block: int, last_block: int) -> dict[str, pl.DataFrame]:
    return {name: warehouse.read(name, netuid=netuid, block_start=first_block, block_end=last_block)
            for name in ("subnets", "neurons", "weights", "bonds")}


@task(name="recompute-epochs", cache_policy=NO_CACHE)
def recompute(snapshots: dict[str, pl.DataFrame], last_input_block: int):
    inputs_at = {name: frame.filter(pl.col("block") <= last_input_block) for name, frame in snapshots.items()}
    inputs = epoch_inputs_from_snapshots(inputs_at["subnets"], inputs_at["neurons"], inputs_at["weights"],
                                         inputs_at["bonds"])
    return inputs, run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])


@task(name="store-epoch-results", cache_policy=NO_CACHE)
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


@flow(name="consensus", log_prints=True)
def consensus_flow(netuid: int, start_block: int, end_block: int, warehouse: str) -> dict:
    """Recompute the epochs at blocks start_block..end_block of `netuid` from the warehouse."""
    if end_block < start_block:
        raise ValueError(f"end block {end_block} is before start block {start_block}")
    wh = Warehouse(Path(warehouse))
    snapshots = read_snapshots(wh, netuid, max(start_block, 1) - 1, end_block)
    if snapshots["subnets"].height == 0:
        raise ValueError(f"the warehouse {warehouse} holds no snapshot of netuid {netuid} in blocks "
                         f"{max(start_block, 1) - 1}..{end_block - 1}; run `yumaflow snapshot` or `backfill` first")
    inputs, outputs = recompute(snapshots, end_block - 1)
    store(wh, inputs, outputs, CHAIN_VARIANT)
    parity = chain_parity(outputs.neurons, snapshots["neurons"], snapshots["subnets"])
    summary = (parity.group_by("column").agg(pl.col("uids").sum(), pl.col("equal").sum(),
                                             pl.col("max_abs_diff").max()).sort("column"))
    epochs = outputs.neurons.select("netuid", "mechid", "block").unique().height
    if summary.height:
        create_table_artifact(key=f"consensus-parity-{netuid}", table=summary.to_dicts(),
                              description=f"netuid {netuid}, blocks {start_block}..{end_block}: uids equal to "
                                          f"the chain per output column ({epochs} epochs recomputed)")
    return {"epochs": epochs, "compared_epochs": parity.select("block").n_unique() if parity.height else 0,
            "parity": summary}
