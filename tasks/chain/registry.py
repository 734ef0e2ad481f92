"""Hand-written SCALE layouts of the Subtensor runtime APIs, keyed by runtime spec_version.

substrate-interface 1.8.1 reads only metadata V14, which does not describe runtime-API return types,
so we write them (chain_interface.md §4). The spec-343 layouts below were transcribed from that
runtime's own metadata V15 (recordings/mainnet-spec343/metadata_v15.hex) and decode the recorded
mainnet bytes with no byte left over. One registry holds every layout under distinct names; a
`Layout` says which names and runtime APIs a spec uses. All type names carry a `Subtensor` prefix
so that they never collide with the metadata's own type paths.
"""

from __future__ import annotations

from dataclasses import dataclass


def _struct(*fields: tuple[str, str]) -> dict:
    return {"type": "struct", "type_mapping": [list(f) for f in fields]}


_AXON = _struct(("block", "u64"), ("version", "u32"), ("ip", "u128"), ("port", "u16"), ("ip_type", "u8"),
                ("protocol", "u8"), ("placeholder1", "u8"), ("placeholder2", "u8"))
_PROMETHEUS = _struct(("block", "u64"), ("version", "u32"), ("ip", "u128"), ("port", "u16"), ("ip_type", "u8"))

# NeuronInfoRuntimeApi.get_neurons_lite element; unchanged from spec 208 to 425 (chain_interface.md §4).
_NEURON_INFO_LITE = _struct(
    ("hotkey", "AccountId"), ("coldkey", "AccountId"), ("uid", "Compact<u16>"), ("netuid", "Compact<u16>"),
    ("active", "bool"), ("axon_info", "SubtensorAxonInfo"), ("prometheus_info", "SubtensorPrometheusInfo"),
    ("stake", "Vec<(AccountId, Compact<u64>)>"), ("rank", "Compact<u16>"), ("emission", "Compact<u64>"),
    ("incentive", "Compact<u16>"), ("consensus", "Compact<u16>"), ("trust", "Compact<u16>"),
    ("validator_trust", "Compact<u16>"), ("dividends", "Compact<u16>"), ("last_update", "Compact<u64>"),
    ("validator_permit", "bool"), ("pruning_score", "Compact<u16>"))

# Metagraph fields in SelectiveMetagraphIndex order (chain_interface.md §3; spec-343 metadata V15).
METAGRAPH_FIELDS: tuple[tuple[str, str], ...] = (
    ("netuid", "Compact<u16>"), ("name", "Vec<Compact<u8>>"), ("symbol", "Vec<Compact<u8>>"),
    ("identity", "Option<SubtensorSubnetIdentityV3>"), ("network_registered_at", "Compact<u64>"),
    ("owner_hotkey", "AccountId"), ("owner_coldkey", "AccountId"), ("block", "Compact<u64>"),
    ("tempo", "Compact<u16>"), ("last_step", "Compact<u64>"), ("blocks_since_last_step", "Compact<u64>"),
    ("subnet_emission", "Compact<u64>"), ("alpha_in", "Compact<u64>"), ("alpha_out", "Compact<u64>"),
    ("tao_in", "Compact<u64>"), ("alpha_out_emission", "Compact<u64>"), ("alpha_in_emission", "Compact<u64>"),
    ("tao_in_emission", "Compact<u64>"), ("pending_alpha_emission", "Compact<u64>"),
    ("pending_root_emission", "Compact<u64>"), ("subnet_volume", "Compact<u128>"),
    ("moving_price", "SubtensorFixedI128"), ("rho", "Compact<u16>"), ("kappa", "Compact<u16>"),
    ("min_allowed_weights", "Compact<u16>"), ("max_weights_limit", "Compact<u16>"),
    ("weights_version", "Compact<u64>"), ("weights_rate_limit", "Compact<u64>"),
    ("activity_cutoff", "Compact<u16>"), ("max_validators", "Compact<u16>"), ("num_uids", "Compact<u16>"),
    ("max_uids", "Compact<u16>"), ("burn", "Compact<u64>"), ("difficulty", "Compact<u64>"),
    ("registration_allowed", "bool"), ("pow_registration_allowed", "bool"), ("immunity_period", "Compact<u16>"),
    ("min_difficulty", "Compact<u64>"), ("max_difficulty", "Compact<u64>"), ("min_burn", "Compact<u64>"),
    ("max_burn", "Compact<u64>"), ("adjustment_alpha", "Compact<u64>"), ("adjustment_interval", "Compact<u16>"),
    ("target_regs_per_interval", "Compact<u16>"), ("max_regs_per_block", "Compact<u16>"),
    ("serving_rate_limit", "Compact<u64>"), ("commit_reveal_weights_enabled", "bool"),
    ("commit_reveal_period", "Compact<u64>"), ("liquid_alpha_enabled", "bool"), ("alpha_high", "Compact<u16>"),
    ("alpha_low", "Compact<u16>"), ("bonds_moving_avg", "Compact<u64>"), ("hotkeys", "Vec<AccountId>"),
    ("coldkeys", "Vec<AccountId>"), ("identities", "Vec<Option<SubtensorChainIdentityV2>>"),
    ("axons", "Vec<SubtensorAxonInfo>"), ("active", "Vec<bool>"), ("validator_permit", "Vec<bool>"),
    ("pruning_score", "Vec<Compact<u16>>"), ("last_update", "Vec<Compact<u64>>"),
    ("emission", "Vec<Compact<u64>>"), ("dividends", "Vec<Compact<u16>>"), ("incentives", "Vec<Compact<u16>>"),
    ("consensus", "Vec<Compact<u16>>"), ("trust", "Vec<Compact<u16>>"), ("rank", "Vec<Compact<u16>>"),
    ("block_at_registration", "Vec<Compact<u64>>"), ("alpha_stake", "Vec<Compact<u64>>"),
    ("tao_stake", "Vec<Compact<u64>>"), ("total_stake", "Vec<Compact<u64>>"),
    ("tao_dividends_per_hotkey", "Vec<(AccountId, Compact<u64>)>"),
    ("alpha_dividends_per_hotkey", "Vec<(AccountId, Compact<u64>)>"),
)
# Only in the selective form: 72 validators, 73 commitments (spec >= 315).
SELECTIVE_EXTRA_FIELDS = (("validators", "Vec<Compact<u16>>"), ("commitments", "Vec<(AccountId, Vec<Compact<u8>>)>"))

_HYPERPARAMS_V1 = (
    ("rho", "Compact<u16>"), ("kappa", "Compact<u16>"), ("immunity_period", "Compact<u16>"),
    ("min_allowed_weights", "Compact<u16>"), ("max_weights_limit", "Compact<u16>"), ("tempo", "Compact<u16>"),
    ("min_difficulty", "Compact<u64>"), ("max_difficulty", "Compact<u64>"), ("weights_version", "Compact<u64>"),
    ("weights_rate_limit", "Compact<u64>"), ("adjustment_interval", "Compact<u16>"),
    ("activity_cutoff", "Compact<u16>"), ("registration_allowed", "bool"),
    ("target_regs_per_interval", "Compact<u16>"), ("min_burn", "Compact<u64>"), ("max_burn", "Compact<u64>"),
    ("bonds_moving_avg", "Compact<u64>"), ("max_regs_per_block", "Compact<u16>"),
    ("serving_rate_limit", "Compact<u64>"), ("max_validators", "Compact<u16>"),
    ("adjustment_alpha", "Compact<u64>"), ("difficulty", "Compact<u64>"), ("commit_reveal_period", "Compact<u64>"),
    ("commit_reveal_weights_enabled", "bool"), ("alpha_high", "Compact<u16>"), ("alpha_low", "Compact<u16>"),
    ("liquid_alpha_enabled", "bool"))
_HYPERPARAMS_V2 = _HYPERPARAMS_V1 + (
    ("alpha_sigmoid_steepness", "SubtensorFixedI64"), ("yuma_version", "Compact<u16>"),
    ("subnet_is_active", "bool"), ("transfers_enabled", "bool"), ("bonds_reset_enabled", "bool"),
    ("user_liquidity_enabled", "bool"))

TYPE_REGISTRY: dict = {"types": {
    "SubtensorAxonInfo": _AXON,
    "SubtensorPrometheusInfo": _PROMETHEUS,
    "SubtensorNeuronInfoLite": _NEURON_INFO_LITE,
    "SubtensorFixedI128": _struct(("bits", "i128")),  # I96F32: bits / 2^32
    "SubtensorFixedI64": _struct(("bits", "i64")),    # I32F32: bits / 2^32
    "SubtensorChainIdentityV2": _struct(*[(n, "Bytes") for n in (
        "name", "url", "github_repo", "image", "discord", "description", "additional")]),
    "SubtensorSubnetIdentityV3": _struct(*[(n, "Bytes") for n in (
        "subnet_name", "github_repo", "subnet_contact", "subnet_url", "discord", "description", "logo_url",
        "additional")]),
    "SubtensorMetagraph": _struct(*METAGRAPH_FIELDS),
    # netuid is plain; every other field is Option (None when its index was not asked for).
    "SubtensorSelectiveMetagraph": _struct(
        METAGRAPH_FIELDS[0], *[(n, f"Option<{t}>") for n, t in METAGRAPH_FIELDS[1:] + SELECTIVE_EXTRA_FIELDS]),
    "SubtensorSubnetHyperparams": _struct(*_HYPERPARAMS_V1),
    "SubtensorSubnetHyperparamsV2": _struct(*_HYPERPARAMS_V2),
    "SubtensorHyperparamValue": {"type": "enum", "type_mapping": [
        ["Bool", "bool"], ["U16", "Compact<u16>"], ["U32", "Compact<u32>"], ["U64", "Compact<u64>"],
        ["U128", "Compact<u128>"], ["TaoBalance", "Compact<u64>"], ["I32F32", "i64"], ["U64F64", "u128"]]},
    "SubtensorHyperparamEntry": _struct(("name", "Bytes"), ("value", "SubtensorHyperparamValue")),
}}

ALL_METAGRAPH_INDEXES: tuple[int, ...] = tuple(range(len(METAGRAPH_FIELDS) + len(SELECTIVE_EXTRA_FIELDS)))


@dataclass(frozen=True)
class RuntimeCall:
    """A runtime API method and the type its SCALE result decodes to.

    `wrapped`: before spec 233 runtime APIs returned `Vec<u8>` around the value (chain_interface.md §4).
    """

    name: str  # "<Api>_<method>", as sent in state_call
    returns: str
    wrapped: bool = False


@dataclass(frozen=True)
class Layout:
    """What one range of runtime specs offers a snapshot, and how its answers are laid out."""

    name: str
    first_spec: int
    last_spec: int
    neurons_lite: RuntimeCall
    selective_mechagraph: RuntimeCall | None  # None: no metagraph API (spec < 233)
    hyperparams: RuntimeCall
    hyperparams_named: bool  # v3: a name -> value list instead of a fixed struct
    mechanisms: bool         # spec >= 320: Weights/Bonds/Incentive/LastUpdate keyed by NetUidStorageIndex
    dtao: bool               # stake in alpha per subnet (spec >= 2xx dTAO); False: pre-dTAO TAO stake
    verified: str            # what these layouts were checked against


_NIL = "NeuronInfoRuntimeApi_get_neurons_lite"
_SELECTIVE = RuntimeCall("SubnetInfoRuntimeApi_get_selective_mechagraph", "Option<SubtensorSelectiveMetagraph>")

LAYOUTS: tuple[Layout, ...] = (
    Layout("pre-dtao-208", 208, 208,
           neurons_lite=RuntimeCall(_NIL, "Vec<SubtensorNeuronInfoLite>", wrapped=True),
           selective_mechagraph=None,
           hyperparams=RuntimeCall("SubnetInfoRuntimeApi_get_subnet_hyperparams",
                                   "SubtensorSubnetHyperparams", wrapped=True),
           hyperparams_named=False, mechanisms=False, dtao=False,
           verified="recorded mainnet spec-208 traffic (netuid 23)"),
    Layout("raonet-218", 218, 218,
           neurons_lite=RuntimeCall(_NIL, "Vec<SubtensorNeuronInfoLite>", wrapped=True),
           selective_mechagraph=None,
           hyperparams=RuntimeCall("SubnetInfoRuntimeApi_get_subnet_hyperparams",
                                   "SubtensorSubnetHyperparams", wrapped=True),
           hyperparams_named=False, mechanisms=False, dtao=True,
           verified="chain_interface.md §4/§5 and local_chain.md §3 (raonet spec 218 under Chopsticks)"),
    # From ≈401 rank/trust/pruning_score come back empty or 0; the wire layout is unchanged and we
    # do not map those fields, so one layout serves until hyperparams v3 (chain_interface.md §5).
    Layout("mechanisms-343", 320, 412,
           neurons_lite=RuntimeCall(_NIL, "Vec<SubtensorNeuronInfoLite>"),
           selective_mechagraph=_SELECTIVE,
           hyperparams=RuntimeCall("SubnetInfoRuntimeApi_get_subnet_hyperparams_v2",
                                   "Option<SubtensorSubnetHyperparamsV2>"),
           hyperparams_named=False, mechanisms=True, dtao=True,
           verified="metadata V15 and recorded mainnet bytes of spec 343"),
    # rank/trust/pruning_score emptied (≈401); get_subnet_hyperparams_v3 (≈413); the selective
    # metagraph stays wire-compatible (chain_interface.md §5). Source snapshot at spec 425.
    Layout("current-425", 413, 441,
           neurons_lite=RuntimeCall(_NIL, "Vec<SubtensorNeuronInfoLite>"),
           selective_mechagraph=_SELECTIVE,
           hyperparams=RuntimeCall("SubnetInfoRuntimeApi_get_subnet_hyperparams_v3",
                                   "Option<Vec<SubtensorHyperparamEntry>>"),
           hyperparams_named=True, mechanisms=True, dtao=True,
           verified="subtensor source at spec 425 (chain_interface.md §3–§5); no recorded bytes"),
)


def known_specs() -> str:
    return ", ".join(f"{lay.first_spec}" if lay.first_spec == lay.last_spec else f"{lay.first_spec}–{lay.last_spec}"
                     for lay in LAYOUTS)


def layout_for(spec_version: int, block=None) -> Layout:
    """The layout of runtime `spec_version`; UnknownSpecError naming the known ones otherwise."""
    from tasks.chain.errors import UnknownSpecError

    for lay in LAYOUTS:
        if lay.first_spec <= spec_version <= lay.last_spec:
            return lay
    raise UnknownSpecError(spec_version, known_specs(), block)
