"""The consensus engine's file contract (DESIGN.md §5), and the warehouse's `epoch_results`.

Every table carries the epoch key (netuid UInt16, mechid UInt8, block UInt64): `block` is the block
at which the epoch runs (the spec's current block b).
"""

import pyarrow as pa

from schemas.table import Table, register

U16_MAX = 65535
EPOCH_KEY = ("netuid", "mechid", "block")

# `epochs.liquid_alpha_consensus_mode`: which consensus vector liquid alpha reads (the chain's
# `LiquidAlphaConsensusMode`, ConsensusMode by variant name). The code is the position here.
# "max" (max of current and previous) appears only in an opentensor/subtensor test; kept for what-if.
CONSENSUS_MODES = ("current", "previous", "auto", "max")
# `epochs.epoch_consensus`: the chain's `SubnetEpochConsensus` (EpochConsensus: 0 Yuma, 1 Null).
EPOCH_CONSENSUS = ("yuma", "null")


def consensus_mode_code(variant: str | None) -> int:
    """The `liquid_alpha_consensus_mode` code of a ConsensusMode variant name as the chain stores it
    ("Current", "Previous", "Auto", "Max"); None (a runtime before the item) behaved as Current."""
    return _code(variant, CONSENSUS_MODES, "LiquidAlphaConsensusMode", default=0)


def epoch_consensus_code(variant: str | None) -> int:
    """The `epoch_consensus` code of an EpochConsensus variant name; None (before the item) was Yuma."""
    return _code(variant, EPOCH_CONSENSUS, "SubnetEpochConsensus", default=0)


def _code(variant: str | None, names: tuple[str, ...], item: str, default: int) -> int:
    if variant is None:
        return default
    try:
        return names.index(variant.lower())
    except ValueError:
        raise ValueError(f"{item} {variant!r} is a variant this engine does not know (known: "
                         f"{', '.join(n.capitalize() for n in names)}): its epoch rules are not implemented") from None

_key_fields = [
    pa.field("netuid", pa.uint16(), nullable=False),
    pa.field("mechid", pa.uint8(), nullable=False),
    pa.field("block", pa.uint64(), nullable=False),
]


def _f(name, type_, nullable=False):
    return pa.field(name, type_, nullable=nullable)


EPOCHS = register(Table(
    name="epochs",
    grain="one epoch of one mechanism of one subnet: its hyperparameters and emission",
    key=EPOCH_KEY,
    schema=pa.schema(_key_fields + [
        _f("tempo", pa.uint16()),
        _f("last_mechanism_step_block", pa.uint64()),
        _f("owner_uid", pa.uint16(), nullable=True),
        _f("kappa", pa.uint16()),
        _f("bonds_penalty", pa.uint16()),
        _f("bonds_moving_avg", pa.uint64()),
        _f("yuma3_enabled", pa.bool_()),
        _f("liquid_alpha_enabled", pa.bool_()),
        _f("alpha_low", pa.uint16()),
        _f("alpha_high", pa.uint16()),
        _f("alpha_sigmoid_steepness", pa.int16()),
        _f("activity_cutoff_factor_milli", pa.uint64()),
        _f("max_allowed_validators", pa.uint16()),
        _f("stake_threshold", pa.uint64()),
        _f("tao_weight", pa.uint64()),
        _f("emission", pa.uint64()),
        # Rules the chain gained after spec 425 (README "Epoch variants"); each defaults to the value
        # that reproduces spec 425, so files written before they existed mean what they meant.
        _f("commit_reveal_enabled", pa.bool_()),             # CommitRevealWeightsEnabled: §2.5.5 mask on
        _f("liquid_alpha_consensus_mode", pa.uint8()),       # CONSENSUS_MODES code
        _f("epoch_consensus", pa.uint8()),                   # EPOCH_CONSENSUS code (Null is refused)
    ]),
    # BondsMovingAverage is a fraction of 10^6 (spec §7); above it the EMA rate would be negative.
    ranges={"bonds_moving_avg": (0, 1_000_000),
            "liquid_alpha_consensus_mode": (0, len(CONSENSUS_MODES) - 1),
            "epoch_consensus": (0, len(EPOCH_CONSENSUS) - 1)},
    optional={"commit_reveal_enabled": False, "liquid_alpha_consensus_mode": 0, "epoch_consensus": 0},
))

EPOCH_NEURONS = register(Table(
    name="epoch_neurons",
    grain="one uid (0..n-1) at the epoch, with stakes already inherited through parent/child keys",
    key=EPOCH_KEY + ("uid",),
    schema=pa.schema(_key_fields + [
        _f("uid", pa.uint16()),
        _f("alpha_stake", pa.uint64()),
        _f("tao_stake", pa.uint64()),
        _f("last_update", pa.uint64()),
        _f("block_at_registration", pa.uint64()),
        _f("validator_permit", pa.bool_()),
        # The chain's stored Consensus before this epoch (u16; null past the stored vector's end, all
        # null: nothing stored). Only liquid alpha's previous/auto/max modes read it.
        _f("previous_consensus", pa.uint16(), nullable=True),
        # The block of this validator's earliest unexpired weight commit (§2.5.5), null if it has none.
        _f("commit_block", pa.uint64(), nullable=True),
    ]),
    optional={"previous_consensus": None, "commit_block": None},
))

EPOCH_WEIGHTS = register(Table(
    name="epoch_weights",
    grain="one stored weight edge (u16) from a validator to a miner; a row's edges in submission order",
    key=EPOCH_KEY + ("validator_uid", "miner_uid"),
    schema=pa.schema(_key_fields + [
        _f("validator_uid", pa.uint16()),
        _f("miner_uid", pa.uint16()),
        _f("weight", pa.uint16()),
    ]),
))

EPOCH_BONDS = register(Table(
    name="epoch_bonds",
    grain="one stored bond edge (u16) of a validator in a miner, before the epoch",
    key=EPOCH_KEY + ("validator_uid", "miner_uid"),
    schema=pa.schema(_key_fields + [
        _f("validator_uid", pa.uint16()),
        _f("miner_uid", pa.uint16()),
        _f("bond", pa.uint16()),
    ]),
))

EPOCH_NEURONS_OUT = register(Table(
    name="epoch_neurons_out",
    grain="one uid's outputs of the epoch, as the chain stores them (u16) and pays them (rao)",
    key=EPOCH_KEY + ("uid",),
    schema=pa.schema(_key_fields + [
        _f("uid", pa.uint16()),
        _f("stake_weight", pa.uint16()),
        _f("active", pa.bool_()),
        _f("validator_permit", pa.bool_()),
        _f("consensus", pa.uint16()),
        _f("incentive", pa.uint16()),
        _f("dividends", pa.uint16()),
        _f("validator_trust", pa.uint16()),
        _f("server_emission", pa.uint64()),
        _f("validator_emission", pa.uint64()),
        _f("emission", pa.uint64()),
    ]),
))

EPOCH_BONDS_OUT = register(Table(
    name="epoch_bonds_out",
    grain="one new nonzero bond edge (u16) as the chain stores it after the epoch",
    key=EPOCH_KEY + ("validator_uid", "miner_uid"),
    schema=EPOCH_BONDS.schema,
))

# Warehouse: recomputed epochs, tagged with the variant ("chain" = exact replay, else a what-if name).
EPOCH_RESULTS = register(Table(
    name="epoch_results",
    grain="one uid's recomputed epoch outputs under a variant",
    key=("variant",) + EPOCH_KEY + ("uid",),
    schema=pa.schema([_f("variant", pa.string())] + list(EPOCH_NEURONS_OUT.schema)),
))

EPOCH_RESULT_BONDS = register(Table(
    name="epoch_result_bonds",
    grain="one recomputed bond edge after the epoch under a variant",
    key=("variant",) + EPOCH_KEY + ("validator_uid", "miner_uid"),
    schema=pa.schema([_f("variant", pa.string())] + list(EPOCH_BONDS_OUT.schema)),
))

# File names of the contract: IN/<file> and OUT/<file>.
INPUT_FILES = {"epochs.parquet": EPOCHS, "neurons.parquet": EPOCH_NEURONS,
               "weights.parquet": EPOCH_WEIGHTS, "bonds.parquet": EPOCH_BONDS}
OUTPUT_FILES = {"neurons.parquet": EPOCH_NEURONS_OUT, "bonds.parquet": EPOCH_BONDS_OUT}
