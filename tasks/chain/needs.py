"""Everything yumaflow reads from or sends to a Subtensor runtime, by name, with the shape it expects.

This list is the contract between yumaflow and a runtime: `SubstrateChain` checks each item against
the block's metadata before it decodes (tasks/chain/runtime.py), and `yumaflow doctor` prints it as a
table for the user's node. Fields are taken by name; a runtime that adds fields passes, one that
removes or retypes a needed field is refused naming it.
"""

from __future__ import annotations

from tasks.chain.runtime import ACCOUNT, ANY, BOOL, INT, Needs

MODULE = "SubtensorModule"


def _opt(shape):
    return ("option", shape)


def _list(shape):
    return ("list", shape)


# -- runtime APIs ------------------------------------------------------------------------------

#: NeuronInfoRuntimeApi.get_neurons_lite(netuid) -> Vec<NeuronInfoLite>
NEURONS_LITE = Needs("api", "NeuronInfoRuntimeApi", "get_neurons_lite", {
    "hotkey": ACCOUNT, "coldkey": ACCOUNT, "uid": INT, "validator_trust": INT, "emission": INT,
    "consensus": INT, "incentive": INT, "dividends": INT, "active": BOOL, "validator_permit": BOOL,
    "last_update": INT, "axon_info": {"ip": INT, "ip_type": INT, "port": INT, "protocol": INT}})

_AXON = {"ip": INT, "ip_type": INT, "port": INT, "protocol": INT}

#: SubnetInfoRuntimeApi.get_selective_mechagraph(netuid, subid, metagraph_indexes) -> Option<SelectiveMetagraph>;
#: every field but netuid is an Option (None when its index was not asked for).
SELECTIVE_MECHAGRAPH = Needs("api", "SubnetInfoRuntimeApi", "get_selective_mechagraph", {
    # per uid
    "hotkeys": _opt(_list(ACCOUNT)), "coldkeys": _opt(_list(ACCOUNT)), "alpha_stake": _opt(_list(INT)),
    "tao_stake": _opt(_list(INT)), "total_stake": _opt(_list(INT)), "emission": _opt(_list(INT)),
    "consensus": _opt(_list(INT)), "incentives": _opt(_list(INT)), "dividends": _opt(_list(INT)),
    "active": _opt(_list(BOOL)), "validator_permit": _opt(_list(BOOL)), "last_update": _opt(_list(INT)),
    "block_at_registration": _opt(_list(INT)), "axons": _opt(_list(_AXON)),
    # per subnet
    "num_uids": _opt(INT), "max_uids": _opt(INT), "tempo": _opt(INT), "owner_hotkey": _opt(ACCOUNT),
    "kappa": _opt(INT), "bonds_moving_avg": _opt(INT), "liquid_alpha_enabled": _opt(BOOL),
    "alpha_low": _opt(INT), "alpha_high": _opt(INT), "activity_cutoff": _opt(INT), "max_validators": _opt(INT),
    "min_allowed_weights": _opt(INT), "max_weights_limit": _opt(INT), "weights_version": _opt(INT),
    "weights_rate_limit": _opt(INT), "immunity_period": _opt(INT), "commit_reveal_weights_enabled": _opt(BOOL),
    "last_step": _opt(INT), "blocks_since_last_step": _opt(INT), "pending_alpha_emission": _opt(INT)})

#: Pre-233 runtimes have no metagraph API; their hyperparameters come from this (opaque, legacy layout).
HYPERPARAMS_OPAQUE = ("SubnetInfoRuntimeApi", "get_subnet_hyperparams")

RUNTIME_APIS = (NEURONS_LITE, SELECTIVE_MECHAGRAPH)


# -- storage ---------------------------------------------------------------------------------------

def storage(name: str, shape=INT, pallet: str = MODULE) -> Needs:
    return Needs("storage", pallet, name, {"": shape})


TIMESTAMP_NOW = storage("Now", pallet="Timestamp")
WEIGHTS = storage("Weights", ("tuple", INT, INT))
BONDS = storage("Bonds", ("tuple", INT, INT))
EVENTS = storage("Events", ANY, pallet="System")
#: Pending weight commits, read for the commit-reveal mask (tasks/consensus/commit_window.py), both double maps
#: keyed (NetUidStorageIndex, …): WeightCommits[…][hotkey] = queue of (hash, u64, u64, u64), on runtimes with the
#: stateful epoch schedule (hash, commit_epoch, commit_block, last reveal epoch); TimelockedWeightCommits
#: […][commit_epoch] = queue of (hotkey, commit_block, encrypted commit, drand reveal round).
HASH_COMMITS = storage("WeightCommits", ("tuple", ANY, INT, INT, INT))
TIMELOCKED_COMMITS = storage("TimelockedWeightCommits", ("tuple", ACCOUNT, INT, ANY, INT))

#: Global and per-subnet storage a snapshot reads besides the metagraph; column -> item. Each is keyed as the
#: runtime declares it (none, the netuid, or netuid and mechanism 0). Absent in a runtime: the column is
#: null (never guessed).
SUBNET_STORAGE: dict[str, Needs] = {
    "tao_weight": storage("TaoWeight"),
    "stake_threshold": storage("StakeThreshold"),
    "bonds_penalty": storage("BondsPenalty"),
    "mechanism_count": storage("MechanismCountCurrent"),
    "activity_cutoff_factor_milli": storage("ActivityCutoffFactorMilli"),
    # the subnet's epoch and weight rules (issue: "Today's settings of a subnet")
    "yuma3_enabled": storage("Yuma3On", BOOL),
    "alpha_sigmoid_steepness": storage("AlphaSigmoidSteepness"),
    "liquid_alpha_consensus_mode": storage("LiquidAlphaConsensusMode", ANY),
    "bonds_reset_enabled": storage("BondsResetOn", BOOL),
    "mechanism_emission_split": storage("MechanismEmissionSplit", ANY),
    "commit_reveal_version": storage("CommitRevealWeightsVersion"),
    "reveal_period_epochs": storage("RevealPeriodEpochs"),
    "subnet_epoch_index": storage("SubnetEpochIndex"),
    "last_epoch_block": storage("LastEpochBlock"),
    "pending_epoch_at": storage("PendingEpochAt"),
    "max_epochs_per_block": storage("MaxEpochsPerBlock"),
    "blocks_since_last_step": storage("BlocksSinceLastStep"),
    "epoch_consensus": storage("SubnetEpochConsensus", ANY),
}

#: What a pre-metagraph runtime (spec 218) reads from storage instead of the metagraph.
SUBNET_STORAGE_WITHOUT_METAGRAPH = {
    "num_uids": storage("SubnetworkN"), "owner_hotkey": storage("SubnetOwnerHotkey", ACCOUNT),
    "last_step": storage("LastMechansimStepBlock"), "max_uids": storage("MaxAllowedUids"),
    "pending_alpha_emission": storage("PendingEmission"),
}

#: The epoch schedule a timelocked commit's reveal round is computed from, read at one pinned block.
COMMIT_SCHEDULE = ("Tempo", "RevealPeriodEpochs", "LastEpochBlock", "PendingEpochAt", "SubnetEpochIndex",
                   "BlocksSinceLastStep")

# -- calls and signed extensions ---------------------------------------------------------------------

#: (pallet, call) -> what yumaflow uses it for
CALLS = {
    (MODULE, "set_weights"): "push weights (mechanism 0, runtimes without mechanisms)",
    (MODULE, "set_mechanism_weights"): "push weights",
    (MODULE, "commit_timelocked_mechanism_weights"): "commit-reveal: timelocked commit",
    (MODULE, "commit_timelocked_weights"): "commit-reveal: timelocked commit (mechanism 0)",
    (MODULE, "commit_weights"): "commit-reveal: hash commit (runtimes without timelocked commits)",
    (MODULE, "reveal_weights"): "commit-reveal: hash reveal",
    (MODULE, "serve_axon"): "publish a miner's address",
}
