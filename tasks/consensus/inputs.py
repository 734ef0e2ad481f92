"""Engine inputs from warehouse snapshots, and the parity of recomputed epochs with the chain.

The chain runs a subnet's epoch inside block b (`block_step`, before the block's extrinsics) on the
state left by block b − 1. So a snapshot at block P is the input of "the epoch at block P + 1", and
the chain's own outputs of that epoch are in the snapshot at P + 1 when the subnet's
`last_mechanism_step_block` there equals P + 1 (an epoch ran and paid out in that block).
"""

from __future__ import annotations

import polars as pl

from schemas import consensus as contract
from schemas import validate_frame

# Before ActivityCutoffFactorMilli existed, the cutoff was the ActivityCutoff storage in blocks. The
# smallest factor f with floor(f·T/1000) ≥ cutoff reproduces it exactly for tempos up to 1000 blocks.
_FACTOR_FROM_CUTOFF = (pl.col("activity_cutoff").cast(pl.UInt64) * 1000 + pl.col("tempo").cast(pl.UInt64).clip(1)
                       - 1) // pl.col("tempo").cast(pl.UInt64).clip(1)

# Runtimes that predate an item behaved as these values do (yuma_spec.md §7, chain_interface.md §5):
# no Yuma3 and no bonds penalty item meant classic bonds on clipped weights (β = 1).
_PRE_ITEM_DEFAULTS = {"bonds_penalty": 65535, "yuma3_enabled": False, "alpha_sigmoid_steepness": 1000,
                      "tao_weight": 0, "stake_threshold": 0}


def epoch_inputs_from_snapshots(subnets: pl.DataFrame, neurons: pl.DataFrame, weights: pl.DataFrame,
                                bonds: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The engine's four input tables for "the epoch at P + 1" of every (netuid, P) snapshot given.

    Rows in: warehouse `subnets` (one per netuid, block P), `neurons` (per uid), `weights` and `bonds`
    (per edge and mechanism). Rows out: `epochs` (one per netuid, mechid, P + 1), `epoch_neurons`,
    `epoch_weights`, `epoch_bonds`, keyed by that epoch. The epoch emission is the subnet's pending
    alpha emission at P, split over mechanisms as `split_emissions` does (§5.3: by the subnet's
    MechanismEmissionSplit, else evenly; the remainder on mechanism 0). The rules after spec 425 come
    from the same snapshot: liquid alpha's consensus mode and the Consensus stored at P (its "previous"),
    commit-reveal and each uid's unexpired commit block; a Null-consensus epoch is left out (no Yuma runs).
    The block's own injection at P + 1 is not in any snapshot, so emissions are a lower bound for real
    chains (exact for the simulated subnet, which records E itself).
    """
    # A subnet with no registered uid has no epoch to recompute (the engine refuses empty epochs).
    # Runtimes before mechanisms (spec 218) have no MechanismCountCurrent: one mechanism.
    subnets = subnets.filter(pl.col("subnetwork_n") > 0).with_columns(pl.col("mechanism_count").fill_null(1))
    mechanisms = (subnets.select("netuid", "block", pl.col("mechanism_count").cast(pl.UInt8))
                  .with_columns(pl.int_ranges(0, pl.col("mechanism_count"), dtype=pl.UInt8).alias("mechid"))
                  .explode("mechid"))
    epochs = (subnets.drop("mechanism_count").join(mechanisms, on=["netuid", "block"])
              .with_columns(
                  (pl.col("block") + 1).alias("epoch_block"),
                  pl.col("activity_cutoff_factor_milli").fill_null(_FACTOR_FROM_CUTOFF),
                  *[pl.col(c).fill_null(v) for c, v in _PRE_ITEM_DEFAULTS.items()],
                  mechanism_emission().alias("emission"),
                  pl.col("last_mechanism_step_block").fill_null(0))
              .drop("block").rename({"epoch_block": "block"}))
    # The rules after spec 425, as the snapshot's own runtime stored them (README "Epoch variants"):
    # a runtime without an item ran the spec-425 rule (null -> Current, Yuma).
    epochs = epochs.with_columns(
        _variant_code(epochs, "liquid_alpha_consensus_mode", contract.consensus_mode_code),
        _variant_code(epochs, "epoch_consensus", contract.epoch_consensus_code))
    # A Null-consensus epoch runs no Yuma: there is nothing of it this engine can recompute.
    epochs = epochs.filter(pl.col("epoch_consensus") == contract.EPOCH_CONSENSUS.index("yuma"))
    epochs = epochs.select([pl.col(c).cast(t) for c, t in contract.EPOCHS.polars_schema().items()])

    keys = epochs.select("netuid", "mechid", "block")
    to_epoch = pl.col("block") + 1

    def per_mechanism(frame: pl.DataFrame, table) -> pl.DataFrame:
        shifted = frame.with_columns(to_epoch.alias("block"))
        return validate_frame(shifted.join(keys, on=["netuid", "mechid", "block"], how="semi")
                              .select(table.columns), table)

    # The Consensus stored at P is the one before the epoch at P + 1: liquid alpha's "previous".
    epoch_neurons = (neurons.with_columns(to_epoch.alias("block"), pl.col("consensus").alias("previous_consensus"))
                     .join(keys, on=["netuid", "block"])
                     .select(contract.EPOCH_NEURONS.columns))
    return {
        "epochs": validate_frame(epochs, contract.EPOCHS),
        "neurons": validate_frame(epoch_neurons, contract.EPOCH_NEURONS),
        "weights": per_mechanism(weights.sort("netuid", "mechid", "block", "validator_uid", "miner_uid"),
                                 contract.EPOCH_WEIGHTS),
        "bonds": per_mechanism(bonds, contract.EPOCH_BONDS),
    }


def mechanism_emission() -> pl.Expr:
    """§5.3 `split_emissions`, per (netuid, block, mechid) row: E_k = ⌊E·s_k/65535⌋ with the subnet's
    MechanismEmissionSplit s when it has one entry per mechanism, else ⌊E/M⌋; what rounding leaves goes
    to mechanism 0."""
    pending = pl.col("pending_emission").fill_null(0).cast(pl.Int128)
    count = pl.col("mechanism_count").cast(pl.Int128)
    split = pl.col("mechanism_emission_split")
    share = (pl.when(split.list.len().fill_null(0) == pl.col("mechanism_count").cast(pl.UInt32))
             .then(pending * split.list.get(pl.col("mechid").cast(pl.Int64), null_on_oob=True).cast(pl.Int128)
                   // 65535)
             .otherwise(pending // count))
    remainder = pending - share.sum().over("netuid", "block")
    return (share + pl.when(pl.col("mechid") == 0).then(remainder).otherwise(0)).cast(pl.UInt64)


def _variant_code(frame: pl.DataFrame, column: str, code_of) -> pl.Expr:
    """An enum variant name column as its code, each distinct name mapped once by `code_of` (null: the
    item's historical value). A variant this engine does not know is refused by name (`code_of` raises),
    rather than recomputed under other rules."""
    codes = {name: code_of(name) for name in frame.get_column(column).drop_nulls().unique().to_list()}
    return (pl.col(column).replace_strict(codes, default=None, return_dtype=pl.UInt8)
            .fill_null(code_of(None)).alias(column))


PARITY_COLUMNS = ("active", "validator_permit", "consensus", "incentive", "dividends", "validator_trust",
                  "emission")


def chain_parity(recomputed: pl.DataFrame, chain_neurons: pl.DataFrame, chain_subnets: pl.DataFrame) -> pl.DataFrame:
    """One row per (netuid, block, column): how many uids the recomputation matches the chain on.

    Only epochs the chain actually ran at that block (its `last_mechanism_step_block` equals the block)
    on a single-mechanism subnet are compared; mechanism 0 of the recomputation against the chain's
    netuid-level values. `max_abs_diff` is in the column's unit (u16 or rao; 0/1 for flags).
    """
    ran = (chain_subnets.filter((pl.col("last_mechanism_step_block") == pl.col("block"))
                                & (pl.col("mechanism_count").fill_null(1) == 1))
           .select("netuid", "block"))
    ours = recomputed.filter(pl.col("mechid") == 0).drop("mechid")
    joined = ours.join(chain_neurons.join(ran, on=["netuid", "block"], how="semi"),
                       on=["netuid", "block", "uid"], suffix="_chain")
    per_column = [
        joined.group_by("netuid", "block").agg(
            pl.lit(col).alias("column"),
            pl.len().cast(pl.UInt32).alias("uids"),
            (pl.col(col) == pl.col(f"{col}_chain")).sum().cast(pl.UInt32).alias("equal"),
            (pl.col(col).cast(pl.Int64) - pl.col(f"{col}_chain").cast(pl.Int64)).abs().max()
            .cast(pl.UInt64).alias("max_abs_diff"))
        for col in PARITY_COLUMNS
    ]
    return pl.concat(per_column).sort("netuid", "block", "column")
