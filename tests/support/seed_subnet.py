"""Write a small, known subnet onto a local spec-218 chain through real extrinsics.

What is written (../shared/local_chain.md §3.4–3.5, chain_interface.md §6):
  * storage seeding (`dev_setStorage`): //Alice becomes the sudo key, every dev key gets a free
    balance, the network rate limit is lifted, and the new subnet's alpha issuance is put at the 21M
    cap so its alpha block emission is zero (see `freeze_stakes`);
  * `register_network` by //Alice: a new dynamic subnet whose owner hotkey takes uid 0;
  * sudo `AdminUtils.sudo_set_*`: tempo, registration limits, weights rate limit 0;
  * `burned_register` of every validator and miner hotkey (uids 1..n in that order);
  * `add_stake` from each validator's coldkey to its hotkey;
  * `set_weights` signed by each validator hotkey.

`seed_subnet(url)` returns a plain dict of what was written, including the weight rows exactly as
the chain stores them after its max-upscale (`chain_max_upscale`), so tests can compare storage
with values that do not come from reading the chain.

    python -m tests.support.seed_subnet ws://127.0.0.1:9944     # prints the dict as JSON
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.base import GenericCall

from .localchain import LocalChain, local_chain

TAO_RAO = 10**9
U16_MAX = 65_535
ALPHA_SUPPLY_CAP_RAO = 21_000_000 * TAO_RAO  # issuance at which the halving schedule emits 0
DEV_BALANCE_RAO = 1_000_000 * TAO_RAO
POOL_RESERVE_RAO = 1_000_000 * TAO_RAO

OWNER_COLDKEY_URI = "//Alice"
OWNER_HOTKEY_URI = "//Alice//owner//hotkey"
# Each validator's coldkey stakes this much TAO to its own hotkey.
VALIDATOR_STAKES_TAO_RAO = (1_000 * TAO_RAO, 500 * TAO_RAO, 250 * TAO_RAO)
MINER_COUNT = 4
# u16 weights each validator sends to the miners, in miner order. They cover the three branches of
# the chain's re-upscale (subtensor math.rs `vec_max_upscale_to_u16`): max already 65535, max above
# 32768 (multiply by the I32F32 factor 65535/max), and max at most 32768 (multiply, then divide).
WEIGHTS_SENT = (
    (65_535, 30_000, 10_000, 0),
    (40_000, 12_345, 1, 20_000),
    (100, 2_000, 300, 7),
)
HYPERPARAMETERS = {  # AdminUtils call -> value, each sent as a sudo call
    "sudo_set_tempo": 10,
    "sudo_set_max_registrations_per_block": 16,
    "sudo_set_target_registrations_per_interval": 16,  # an interval allows 3x this many
    "sudo_set_weights_set_rate_limit": 0,
}
HYPERPARAMETER_ARG = {  # AdminUtils call -> (its value argument, the SubtensorModule storage it sets)
    "sudo_set_tempo": ("tempo", "Tempo"),
    "sudo_set_max_registrations_per_block": ("max_registrations_per_block", "MaxRegistrationsPerBlock"),
    "sudo_set_target_registrations_per_interval": (
        "target_registrations_per_interval",
        "TargetRegistrationsPerInterval",
    ),
    "sudo_set_weights_set_rate_limit": ("weights_set_rate_limit", "WeightsSetRateLimit"),
}


class SeedError(RuntimeError):
    """A seeding step was rejected by the chain; the message names the step and the chain's error."""


def dev_uri(role: str, index: int, key: str) -> str:
    """Dev key URIs derived from //Alice, e.g. //Alice//validator0//hotkey."""
    return f"//Alice//{role}{index}//{key}"


def chain_max_upscale(weights: Sequence[int]) -> list[int]:
    """The u16 row the chain stores for `weights` sent to set_weights (spec 218, math.rs).

    `do_set_weights` stores `vec_u16_max_upscale_to_u16(values)`: in I32F32 (32 fractional bits),
    if max > 32768 each value is multiplied by the factor 65535/max, otherwise multiplied by 65535
    and divided by max; fixed-point division truncates and `round()` goes half away from zero.
    Reproduced here in integers on the raw fixed-point values.
    """
    peak = max(weights, default=0)
    if peak == 0:
        return [0 for _ in weights]
    half = 1 << 31
    if peak > 32_768:
        factor_raw = (U16_MAX << 32) // peak  # I32F32 65535/max, truncated
        return [(w * factor_raw + half) >> 32 for w in weights]
    return [(((w * U16_MAX) << 32) // peak + half) >> 32 for w in weights]


@dataclass
class Signer:
    """A keypair with the next nonce we will use, so one block can carry several of its calls."""

    keypair: Keypair
    next_nonce: int | None = None


def submit_in_one_block(
    substrate: SubstrateInterface, calls: Sequence[tuple[str, GenericCall, Signer]]
) -> tuple[str, list[list[dict]]]:
    """Sign and submit every (step name, call, signer), build one block, check every outcome.

    Returns the new head and, per call, its events (`event.value` dicts). Manual block mode: nothing
    is included until `dev_newBlock`, so `wait_for_inclusion` cannot be used (local_chain.md §3.5).
    A sudo dispatch succeeds as an extrinsic even when the inner call fails, so `Sudid` is checked.
    """
    submitted: list[tuple[str, str]] = []
    for step, call, signer in calls:
        if signer.next_nonce is None:
            # The stored nonce is the next one: the pool is empty between our blocks. A storage read
            # is much cheaper on Chopsticks than AccountNonceApi or system_accountNextIndex (WASM).
            account = substrate.query("System", "Account", [signer.keypair.ss58_address])
            signer.next_nonce = account.value["nonce"]
        extrinsic = substrate.create_signed_extrinsic(call=call, keypair=signer.keypair, nonce=signer.next_nonce)
        signer.next_nonce += 1
        substrate.rpc_request("author_submitExtrinsic", [str(extrinsic.data)])
        submitted.append((step, str(extrinsic.data)))
    head = substrate.rpc_request("dev_newBlock", [{"count": 1}])["result"]
    included = substrate.rpc_request("chain_getBlock", [head])["result"]["block"]["extrinsics"]
    events_by_index: dict[int, list[dict]] = {}
    for event in substrate.get_events(block_hash=head):
        if event.value["extrinsic_idx"] is not None:
            events_by_index.setdefault(event.value["extrinsic_idx"], []).append(event.value)
    outcomes = []
    for step, extrinsic_hex in submitted:
        if extrinsic_hex not in included:
            raise SeedError(f"{step}: not included in block {head} (dropped by the pool or block build failed)")
        events = events_by_index.get(included.index(extrinsic_hex), [])
        for event in events:
            if event["event_id"] == "ExtrinsicFailed":
                error = dispatch_error_name(substrate, event["attributes"]["dispatch_error"])
                raise SeedError(f"{step}: failed with {error}")
            if event["event_id"] == "Sudid" and "Err" in event["attributes"]["sudo_result"]:
                error = dispatch_error_name(substrate, event["attributes"]["sudo_result"]["Err"])
                raise SeedError(f"{step}: sudo call failed with {error}")
        outcomes.append(events)
    return head, outcomes


def dispatch_error_name(substrate: SubstrateInterface, error: dict | str) -> str:
    """`SubtensorModule.SettingWeightsTooFast`-style name of a DispatchError, or its raw form."""
    if not isinstance(error, dict) or "Module" not in error:
        return str(error)
    pallet_index, error_bytes = error["Module"]["index"], error["Module"]["error"]
    # Since the 4-byte error format, the error index is the first byte.
    error_index = int(error_bytes[2:4], 16) if isinstance(error_bytes, str) else error_bytes
    pallet = next(p.name for p in substrate.metadata.pallets if p["index"] == pallet_index)
    return f"{pallet}.{substrate.metadata.get_module_error(pallet_index, error_index).name}"


def events_named(events: list[dict], module: str, event: str) -> list[object]:
    return [e["attributes"] for e in events if e["module_id"] == module and e["event_id"] == event]


def freeze_stakes(netuid: int) -> dict:
    """Storage that stops emission on `netuid`, so stakes stay exactly as staked.

    The spec-218 coinbase gives a dynamic subnet `get_block_emission_for_issuance(alpha issuance)`
    alpha per block, which is 0 once SubnetAlphaIn + SubnetAlphaOut reaches the 21M cap; the epoch
    (which this runtime runs every block) then distributes nothing. The pool is seeded 1:1 with 1M
    on each side so that alpha can be bought; the coinbase of the next block rewrites SubnetTAO
    (observed: 39_614_081_257_133 rao), so the price is about 0.04 TAO per alpha and the alpha a
    stake buys is taken from the StakeAdded event. (Capping TAO issuance instead makes every later
    block panic in on_initialize: division by zero.)
    """
    return {
        "SubnetTAO": [[[netuid], str(POOL_RESERVE_RAO)]],
        "SubnetAlphaIn": [[[netuid], str(POOL_RESERVE_RAO)]],
        "SubnetAlphaOut": [[[netuid], str(ALPHA_SUPPLY_CAP_RAO)]],
    }


@dataclass(frozen=True)
class DevKeys:
    """The seeded subnet's accounts, all derived from //Alice so anyone can re-derive them."""

    owner_coldkey: Signer
    owner_hotkey: Keypair
    validators: list[tuple[Signer, Signer]]  # (coldkey, hotkey); the hotkey signs set_weights
    miners: list[tuple[Signer, Keypair]]

    @classmethod
    def derive(cls) -> DevKeys:
        def signer(role: str, index: int, key: str) -> Signer:
            return Signer(Keypair.create_from_uri(dev_uri(role, index, key)))

        return cls(
            owner_coldkey=Signer(Keypair.create_from_uri(OWNER_COLDKEY_URI)),
            owner_hotkey=Keypair.create_from_uri(OWNER_HOTKEY_URI),
            validators=[
                (signer("validator", i, "coldkey"), signer("validator", i, "hotkey"))
                for i in range(len(VALIDATOR_STAKES_TAO_RAO))
            ],
            miners=[
                (signer("miner", i, "coldkey"), Keypair.create_from_uri(dev_uri("miner", i, "hotkey")))
                for i in range(MINER_COUNT)
            ],
        )

    def accounts_paying_fees(self) -> list[str]:
        """Every account that signs something (validator hotkeys sign set_weights)."""
        signers = [self.owner_coldkey] + [k for pair in self.validators for k in pair]
        signers += [cold for cold, _ in self.miners]
        return [s.keypair.ss58_address for s in signers] + [self.owner_hotkey.ss58_address]


def seed_subnet(url: str) -> dict:
    """Create and populate a subnet on the local chain at `url`; return what was written.

    The returned dict (plain ints and ss58 strings):
      netuid, spec_version, block_number/block_hash (the head after seeding, where every value
      below holds; stakes do not move afterwards, see `freeze_stakes`), owner {coldkey, hotkey, uid},
      hyperparameters {SubtensorModule storage name: value}, neurons {uid: {hotkey, coldkey, role}},
      validator_uids, miner_uids, stakes {hotkey: {coldkey, uid, tao_staked_rao, alpha_rao}}
      (alpha_rao is the swap result the chain reported in StakeAdded), weights_sent
      {validator uid: [[miner uid, u16], ...]}, and weights, the same rows as the chain stores them
      after its max-upscale (computed here by `chain_max_upscale`, not read from the chain).
    """
    substrate = SubstrateInterface(url=url)
    try:
        keys = DevKeys.derive()
        seed_dev_accounts(substrate, keys)
        netuid = register_subnet(substrate, keys)
        configure_subnet(substrate, keys, netuid)
        neurons = register_neurons(substrate, keys, netuid)
        uid_of = {neuron["hotkey"]: uid for uid, neuron in neurons.items()}
        validator_uids = [uid_of[hot.keypair.ss58_address] for _, hot in keys.validators]
        miner_uids = [uid_of[hot.ss58_address] for _, hot in keys.miners]
        stakes = stake_validators(substrate, keys, netuid, uid_of)
        head = set_validator_weights(substrate, keys, netuid, miner_uids)
        return {
            "netuid": netuid,
            "spec_version": substrate.get_block_runtime_version(head)["specVersion"],
            "block_number": substrate.get_block_number(head),
            "block_hash": head,
            "owner": {
                "coldkey": keys.owner_coldkey.keypair.ss58_address,
                "hotkey": keys.owner_hotkey.ss58_address,
                "uid": 0,
            },
            "hyperparameters": {
                storage: HYPERPARAMETERS[function] for function, (_, storage) in HYPERPARAMETER_ARG.items()
            },
            "neurons": neurons,
            "validator_uids": validator_uids,
            "miner_uids": miner_uids,
            "stakes": stakes,
            "weights_sent": {
                uid: [[m, w] for m, w in zip(miner_uids, row, strict=True)]
                for uid, row in zip(validator_uids, WEIGHTS_SENT, strict=True)
            },
            "weights": {
                uid: [[m, w] for m, w in zip(miner_uids, chain_max_upscale(row), strict=True)]
                for uid, row in zip(validator_uids, WEIGHTS_SENT, strict=True)
            },
        }
    finally:
        substrate.close()


def seed_dev_accounts(substrate: SubstrateInterface, keys: DevKeys) -> None:
    """Storage seeding: //Alice is sudo (the genesis sudo key is not a dev key), every signer has a
    balance, and the network registration rate limit is off."""
    # u64 values go as decimal strings: Chopsticks rejects JSON numbers above 2^53 - 1.
    balance = {"providers": 1, "data": {"free": str(DEV_BALANCE_RAO)}}
    substrate.rpc_request(
        "dev_setStorage",
        [
            {
                "Sudo": {"Key": keys.owner_coldkey.keypair.ss58_address},
                "System": {"Account": [[[address], balance] for address in keys.accounts_paying_fees()]},
                "SubtensorModule": {"NetworkRateLimit": "0"},
            }
        ],
    )


def register_subnet(substrate: SubstrateInterface, keys: DevKeys) -> int:
    """`register_network` (dynamic mechanism 1) by the owner coldkey; the owner hotkey gets uid 0."""
    call = substrate.compose_call(
        "SubtensorModule", "register_network", {"hotkey": keys.owner_hotkey.ss58_address, "mechid": 1}
    )
    _, (events,) = submit_in_one_block(substrate, [("register_network", call, keys.owner_coldkey)])
    ((netuid, _mechanism),) = events_named(events, "SubtensorModule", "NetworkAdded")
    return netuid


def configure_subnet(substrate: SubstrateInterface, keys: DevKeys, netuid: int) -> None:
    """Freeze stakes (storage), then set the hyperparameters through sudo AdminUtils calls."""
    substrate.rpc_request("dev_setStorage", [{"SubtensorModule": freeze_stakes(netuid)}])
    calls = []
    for function, value in HYPERPARAMETERS.items():
        argument, _ = HYPERPARAMETER_ARG[function]
        inner = substrate.compose_call("AdminUtils", function, {"netuid": netuid, argument: value})
        sudo = substrate.compose_call("Sudo", "sudo", {"call": inner})
        calls.append((f"sudo {function}", sudo, keys.owner_coldkey))
    submit_in_one_block(substrate, calls)


def register_neurons(substrate: SubstrateInterface, keys: DevKeys, netuid: int) -> dict[int, dict]:
    """`burned_register` every validator, then every miner hotkey; uids as the chain assigned them."""
    planned = [("validator", i, cold, hot.keypair) for i, (cold, hot) in enumerate(keys.validators)]
    planned += [("miner", i, cold, hot) for i, (cold, hot) in enumerate(keys.miners)]
    calls = [
        (
            f"burned_register {role}{i}",
            substrate.compose_call(
                "SubtensorModule", "burned_register", {"netuid": netuid, "hotkey": hot.ss58_address}
            ),
            cold,
        )
        for role, i, cold, hot in planned
    ]
    _, outcomes = submit_in_one_block(substrate, calls)
    neurons = {
        0: {
            "hotkey": keys.owner_hotkey.ss58_address,
            "coldkey": keys.owner_coldkey.keypair.ss58_address,
            "role": "owner",
        }
    }
    for (role, i, cold, hot), events in zip(planned, outcomes, strict=True):
        ((event_netuid, uid, hotkey),) = events_named(events, "SubtensorModule", "NeuronRegistered")
        if (event_netuid, hotkey) != (netuid, hot.ss58_address):
            raise SeedError(f"burned_register {role}{i}: NeuronRegistered {event_netuid, uid, hotkey}")
        neurons[uid] = {"hotkey": hotkey, "coldkey": cold.keypair.ss58_address, "role": role}
    return neurons


def stake_validators(
    substrate: SubstrateInterface, keys: DevKeys, netuid: int, uid_of: dict[str, int]
) -> dict[str, dict]:
    """`add_stake` from each validator coldkey to its hotkey; the alpha bought is the chain's swap."""
    calls = [
        (
            f"add_stake validator{i}",
            substrate.compose_call(
                "SubtensorModule",
                "add_stake",
                {"hotkey": hot.keypair.ss58_address, "netuid": netuid, "amount_staked": amount_rao},
            ),
            cold,
        )
        for i, ((cold, hot), amount_rao) in enumerate(zip(keys.validators, VALIDATOR_STAKES_TAO_RAO, strict=True))
    ]
    _, outcomes = submit_in_one_block(substrate, calls)
    stakes = {}
    for (cold, hot), amount_rao, events in zip(keys.validators, VALIDATOR_STAKES_TAO_RAO, outcomes, strict=True):
        ((coldkey, hotkey, tao_rao, alpha_rao, event_netuid),) = events_named(events, "SubtensorModule", "StakeAdded")
        expected = (cold.keypair.ss58_address, hot.keypair.ss58_address, amount_rao, netuid)
        if (coldkey, hotkey, tao_rao, event_netuid) != expected:
            raise SeedError(f"add_stake: StakeAdded {coldkey, hotkey, tao_rao, event_netuid}, sent {expected}")
        stakes[hotkey] = {
            "coldkey": coldkey,
            "uid": uid_of[hotkey],
            "tao_staked_rao": tao_rao,
            "alpha_rao": alpha_rao,
        }
    return stakes


def set_validator_weights(substrate: SubstrateInterface, keys: DevKeys, netuid: int, miner_uids: list[int]) -> str:
    """`set_weights` signed by each validator hotkey (commit-reveal is off, rate limit 0)."""
    calls = [
        (
            f"set_weights validator{i}",
            substrate.compose_call(
                "SubtensorModule",
                "set_weights",
                {"netuid": netuid, "dests": miner_uids, "weights": list(row), "version_key": 0},
            ),
            hot,
        )
        for i, ((_, hot), row) in enumerate(zip(keys.validators, WEIGHTS_SENT, strict=True))
    ]
    head, _ = submit_in_one_block(substrate, calls)
    return head


@dataclass(frozen=True)
class SeededChain:
    chain: LocalChain
    seed: dict


@pytest.fixture(scope="module")
def seeded_local_chain() -> Iterator[SeededChain]:
    """A fresh local chain with the seeded subnet, per test module (import it into the module)."""
    with local_chain() as chain:
        yield SeededChain(chain=chain, seed=seed_subnet(chain.url))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.support.seed_subnet ws://127.0.0.1:PORT")
    json.dump(seed_subnet(sys.argv[1]), sys.stdout, indent=2)
    print()
