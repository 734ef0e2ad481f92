"""Chain tables of the warehouse (DESIGN.md §4): what a snapshot reads, in the chain's own units.

Stakes and emissions are rao (UInt64); normalised values are u16 exactly as stored on chain.
"""

import pyarrow as pa

from schemas.table import Table, register


def _f(name, type_, nullable=False):
    return pa.field(name, type_, nullable=nullable)


_netuid_block = [_f("netuid", pa.uint16()), _f("block", pa.uint64())]

BLOCKS = register(Table(
    name="blocks",
    grain="one block we read: its hash, runtime spec version and timestamp",
    key=("block",),
    schema=pa.schema([
        _f("block", pa.uint64()),
        _f("block_hash", pa.string()),
        _f("spec_version", pa.uint32()),
        _f("timestamp_ms", pa.uint64()),  # pallet Timestamp.Now, ms since the Unix epoch
        _f("source", pa.string()),        # the chain source URL it was read from (sim:… for the simulation)
    ]),
))

SUBNETS = register(Table(
    name="subnets",
    grain="a subnet's hyperparameters and state at a block (nullable where a runtime lacks the item)",
    key=("netuid", "block"),
    schema=pa.schema(_netuid_block + [
        _f("subnetwork_n", pa.uint16()),
        _f("tempo", pa.uint16()),
        _f("owner_hotkey", pa.string(), True),
        _f("owner_uid", pa.uint16(), True),
        _f("kappa", pa.uint16()),
        _f("bonds_penalty", pa.uint16(), True),
        _f("bonds_moving_avg", pa.uint64()),
        _f("yuma3_enabled", pa.bool_(), True),
        _f("liquid_alpha_enabled", pa.bool_()),
        _f("alpha_low", pa.uint16()),
        _f("alpha_high", pa.uint16()),
        _f("alpha_sigmoid_steepness", pa.int16(), True),
        _f("activity_cutoff", pa.uint16()),
        _f("activity_cutoff_factor_milli", pa.uint64(), True),
        _f("max_allowed_validators", pa.uint16()),
        _f("max_allowed_uids", pa.uint16()),
        _f("min_allowed_weights", pa.uint16()),
        _f("max_weight_limit", pa.uint16()),
        _f("weights_version", pa.uint64()),
        _f("weights_rate_limit", pa.uint64()),
        _f("immunity_period", pa.uint16()),
        _f("commit_reveal_enabled", pa.bool_()),
        _f("last_mechanism_step_block", pa.uint64(), True),
        _f("mechanism_count", pa.uint8(), True),
        _f("tao_weight", pa.uint64(), True),       # global TaoWeight, raw u64 (÷ 2^64−1)
        _f("stake_threshold", pa.uint64(), True),  # global StakeThreshold, rao
        _f("pending_emission", pa.uint64(), True), # rao of alpha accumulated for the next epoch
        # The subnet's epoch and weight rules at this block, from the runtime's storage; null where that
        # runtime has no such item (never guessed).
        _f("liquid_alpha_consensus_mode", pa.string(), True),   # LiquidAlphaConsensusMode variant name
        _f("bonds_reset_enabled", pa.bool_(), True),            # BondsResetOn
        _f("mechanism_emission_split", pa.list_(pa.uint16()), True),  # MechanismEmissionSplit; [] = even split
        _f("commit_reveal_version", pa.uint16(), True),         # CommitRevealWeightsVersion (global)
        _f("reveal_period_epochs", pa.uint64(), True),          # RevealPeriodEpochs
        _f("subnet_epoch_index", pa.uint64(), True),            # SubnetEpochIndex
        _f("last_epoch_block", pa.uint64(), True),              # LastEpochBlock
        _f("pending_epoch_at", pa.uint64(), True),              # PendingEpochAt (0: none pending)
        _f("max_epochs_per_block", pa.uint64(), True),          # MaxEpochsPerBlock (global)
        _f("blocks_since_last_step", pa.uint64(), True),        # BlocksSinceLastStep
        _f("epoch_consensus", pa.string(), True),               # SubnetEpochConsensus variant name (Yuma, Null)
    ]),
    optional={"epoch_consensus": None},  # added after the first warehouses were written
))

#: The settings columns above, in order (every reader of a subnet fills them, null when unknown).
SUBNET_SETTINGS_COLUMNS = ("liquid_alpha_consensus_mode", "bonds_reset_enabled", "mechanism_emission_split",
                           "commit_reveal_version", "reveal_period_epochs", "subnet_epoch_index", "last_epoch_block",
                           "pending_epoch_at", "max_epochs_per_block", "blocks_since_last_step", "epoch_consensus")

NEURONS = register(Table(
    name="neurons",
    grain="one uid of a subnet at a block (contract columns of DESIGN.md §4)",
    key=("netuid", "block", "uid"),
    schema=pa.schema(_netuid_block + [
        _f("uid", pa.uint16()),
        _f("hotkey", pa.string()),
        _f("coldkey", pa.string()),
        _f("alpha_stake", pa.uint64()),
        _f("tao_stake", pa.uint64()),
        _f("total_stake", pa.uint64()),
        _f("emission", pa.uint64()),
        _f("consensus", pa.uint16()),
        _f("incentive", pa.uint16()),
        _f("dividends", pa.uint16()),
        _f("validator_trust", pa.uint16()),
        _f("active", pa.bool_()),
        _f("validator_permit", pa.bool_()),
        _f("last_update", pa.uint64()),
        _f("block_at_registration", pa.uint64()),
        _f("axon_ip", pa.string(), True),
        _f("axon_port", pa.uint16(), True),
        _f("axon_protocol", pa.uint8(), True),
        # The block of the uid's earliest unexpired weight commit (the commit-reveal mask's c_i, yuma_spec
        # §2.5.5), null if it has none or the runtime keeps no commit storage yuma-flow reads.
        _f("commit_block", pa.uint64(), True),
    ]),
    optional={"commit_block": None},  # added after the first warehouses were written
))

WEIGHTS = register(Table(
    name="weights",
    grain="one weight edge as stored on chain (u16), in the validator's submission order",
    key=("netuid", "mechid", "block", "validator_uid", "miner_uid"),
    schema=pa.schema([_f("netuid", pa.uint16()), _f("mechid", pa.uint8()), _f("block", pa.uint64()),
                      _f("validator_uid", pa.uint16()), _f("miner_uid", pa.uint16()),
                      _f("weight", pa.uint16())]),
))

BONDS = register(Table(
    name="bonds",
    grain="one bond edge as stored on chain (u16)",
    key=("netuid", "mechid", "block", "validator_uid", "miner_uid"),
    schema=pa.schema([_f("netuid", pa.uint16()), _f("mechid", pa.uint8()), _f("block", pa.uint64()),
                      _f("validator_uid", pa.uint16()), _f("miner_uid", pa.uint16()),
                      _f("bond", pa.uint16())]),
))
