"""What our new weights would earn: the epoch recomputed with our row replaced, before we push it.

The chain stores our row re-upscaled (`chain_stored_row`, yuma_spec.md §6) and sets our LastUpdate to
the block that includes it. We put exactly that into the snapshot at block P (our row as stored,
last_update = P + 1) and run the consensus engine on "the epoch at P + 1"
(tasks.consensus.inputs.epoch_inputs_from_snapshots) twice: with the snapshot as it is, and with our
row replaced. Both use the same stake, bonds and hyperparameters, so the difference is what our
weights change. Emission is the lower bound of inputs.py (the block's own injection is not in a
snapshot); validator trust and dividends are exact.
"""

from __future__ import annotations

import polars as pl

from schemas.chain import BONDS, WEIGHTS
from tasks.consensus import run_epochs
from tasks.consensus.inputs import epoch_inputs_from_snapshots
from tasks.weights.convert import chain_stored_row

PROJECTED_COLUMNS = ("validator_trust", "dividends", "emission")


def _our_outputs(subnets, neurons, weights, bonds, our_uid: int, mechid: int) -> dict:
    inputs = epoch_inputs_from_snapshots(subnets, neurons, weights, bonds)
    out = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"]).neurons
    ours = out.filter((pl.col("uid") == our_uid) & (pl.col("mechid") == mechid))
    if ours.height != 1:
        raise ValueError(f"projection: the epoch has no output row for uid {our_uid} on mechanism {mechid}")
    return {column: int(ours[column][0]) for column in PROJECTED_COLUMNS}


def replace_weight_row(weights: pl.DataFrame, netuid: int, block: int, mechid: int, our_uid: int,
                       our_uids: list[int], our_weights: list[int]) -> pl.DataFrame:
    """The `weights` snapshot frame with our row as the chain would store it (one row per edge)."""
    new_row = pl.DataFrame({"netuid": netuid, "mechid": mechid, "block": block, "validator_uid": our_uid,
                            "miner_uid": list(our_uids), "weight": chain_stored_row(our_weights)},
                           schema=WEIGHTS.polars_schema())
    others = weights.filter(~((pl.col("validator_uid") == our_uid) & (pl.col("mechid") == mechid)))
    return pl.concat([others, new_row]).sort("netuid", "mechid", "block", "validator_uid", "miner_uid")


def project_epoch(subnets: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
                  bonds: pl.DataFrame | None, our_uid: int, our_uids: list[int], our_weights: list[int], *,
                  mechid: int = 0) -> dict:
    """Our validator's outputs in the epoch at P + 1, with and without our new row.

    Frames: one subnet snapshot at block P (`subnets` one row; `neurons`, `weights`, `bonds` of that
    netuid and block, warehouse schemas). `our_uids`/`our_weights`: the u16 row we would send.
    Returns block (P + 1), uid, validator_trust and dividends (u16), emission (rao), and the same three
    as baseline_* for the snapshot's own weights.
    """
    if subnets.height != 1:
        raise ValueError(f"projection: subnets must hold one snapshot row (netuid, block), got {subnets.height}")
    netuid, block = int(subnets["netuid"][0]), int(subnets["block"][0])
    if neurons.filter(pl.col("uid") == our_uid).height != 1:
        raise ValueError(f"projection: uid {our_uid} is not in the neurons of netuid {netuid} at block {block}")
    if len(our_uids) != len(our_weights):
        raise ValueError(f"projection: {len(our_uids)} uids but {len(our_weights)} weights")
    bonds = bonds if bonds is not None else BONDS.empty()
    baseline = _our_outputs(subnets, neurons, weights, bonds, our_uid, mechid)
    projected_neurons = neurons.with_columns(
        pl.when(pl.col("uid") == our_uid).then(pl.lit(block + 1, pl.UInt64)).otherwise(pl.col("last_update"))
        .alias("last_update"))
    projected_weights = replace_weight_row(weights, netuid, block, mechid, our_uid, our_uids, our_weights)
    projected = _our_outputs(subnets, projected_neurons, projected_weights, bonds, our_uid, mechid)
    return {"block": block + 1, "uid": our_uid, **projected,
            **{f"baseline_{column}": value for column, value in baseline.items()}}
