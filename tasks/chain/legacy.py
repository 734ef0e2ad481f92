"""The frozen hand layouts of opaque runtime-API answers (runtimes before spec 233).

Before spec 233 Subtensor's runtime APIs answered `Vec<u8>` around a SCALE value whose type the
runtime's metadata does not describe (the spec-218 runtime serves V15 metadata, but its registry has no
NeuronInfoLite nor SubnetHyperparams; the recorded spec-208 traffic carries no V15 at all). For those
answers, and only those, the layout is written here; `tasks/chain/scale.py` decodes it. Every newer
runtime is decoded from its own metadata (tasks/chain/runtime.py). These layouts serve history only,
so they never grow. They decode the recorded mainnet spec-208 answers and the spec-218 runtime's with
no byte left over (tests/test_chain_replay.py, tests/test_chain_local.py).
"""

from __future__ import annotations


def _struct(*fields: tuple[str, str]) -> dict:
    return {"type": "struct", "type_mapping": [list(f) for f in fields]}


_AXON = _struct(("block", "u64"), ("version", "u32"), ("ip", "u128"), ("port", "u16"), ("ip_type", "u8"),
                ("protocol", "u8"), ("placeholder1", "u8"), ("placeholder2", "u8"))
_PROMETHEUS = _struct(("block", "u64"), ("version", "u32"), ("ip", "u128"), ("port", "u16"), ("ip_type", "u8"))

# NeuronInfoRuntimeApi.get_neurons_lite element; as opaque bytes before spec 233.
_NEURON_INFO_LITE = _struct(
    ("hotkey", "AccountId"), ("coldkey", "AccountId"), ("uid", "Compact<u16>"), ("netuid", "Compact<u16>"),
    ("active", "bool"), ("axon_info", "SubtensorAxonInfo"), ("prometheus_info", "SubtensorPrometheusInfo"),
    ("stake", "Vec<(AccountId, Compact<u64>)>"), ("rank", "Compact<u16>"), ("emission", "Compact<u64>"),
    ("incentive", "Compact<u16>"), ("consensus", "Compact<u16>"), ("trust", "Compact<u16>"),
    ("validator_trust", "Compact<u16>"), ("dividends", "Compact<u16>"), ("last_update", "Compact<u64>"),
    ("validator_permit", "bool"), ("pruning_score", "Compact<u16>"))

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

TYPE_REGISTRY: dict = {"types": {
    "SubtensorAxonInfo": _AXON,
    "SubtensorPrometheusInfo": _PROMETHEUS,
    "SubtensorNeuronInfoLite": _NEURON_INFO_LITE,
    "SubtensorSubnetHyperparams": _struct(*_HYPERPARAMS_V1),
}}

# "<Api>_<method>" -> the type inside the Vec<u8> answer, for runtimes whose metadata declares Vec<u8>.
OPAQUE_ANSWERS: dict[str, str] = {
    "NeuronInfoRuntimeApi_get_neurons_lite": "Vec<SubtensorNeuronInfoLite>",
    "SubnetInfoRuntimeApi_get_subnet_hyperparams": "SubtensorSubnetHyperparams",
}
