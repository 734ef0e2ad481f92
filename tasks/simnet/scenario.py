"""The default scenario of the simulated subnet: what `sim:SEED` holds before anyone touches it.

Given only a seed (everything below is drawn from NumPy generators keyed by the seed, so the same
seed gives the same chain bit for bit), on subnet 1:

- genesis (block 0): //Alice is registered as validator uid 0 with the largest stake ("our" validator
  in the demo and the CLI), four more validators with varied alpha and root TAO stake, and six
  miners (so no snapshot of the subnet is ever empty);
- every later block: while the subnet has free uids a miner registers with chance 0.6, once it is
  full with chance 0.15, replacing the uid with the lowest pruning score (SimChain.register). No
  registration lands in an epoch block, so every uid's stored epoch outputs are exactly the epoch's
  (a write in an epoch block applies after the epoch, as on chain, and a replaced uid shows cleared
  values);
- each validator that holds a permit sets weights once per tempo, at its own offset in the tempo
  (blocks 2, 5, 8, 11, 14 of each 20), on every miner: a noisy view (log-normal noise per validator
  and block) of each miner's hidden quality (log-normal per miner), max-upscaled to u16 like the SDK.
  Before the first epoch nobody has a permit, so the first tempo carries no weights (as on a new
  subnet);
- played for `tempos` tempos (default 10: blocks 1..200, ten epochs), so history is never empty;
- afterwards (the autopilot, `sim.scenario["autopilot"]`, saved with the state): as the chain advances,
  validators 1..4 keep setting weights each tempo the same way; //Alice (uid 0) is left to the caller
  (the demo's validator) and no miner registers by itself any more. Set it False for a quiet chain.
"""

from __future__ import annotations

import numpy as np

from tasks.simnet.chain import DEFAULT_NETUID, RAO_PER_ALPHA, SimChain

DEFAULT_TEMPOS = 10
VALIDATORS = 5
INITIAL_MINERS = 6
REGISTRATION_CHANCE_OPEN = 0.6  # per block while the subnet has free uids
REGISTRATION_CHANCE_FULL = 0.15  # per block once every uid is taken (each one replaces a uid)
WEIGHT_NOISE_SIGMA = 0.35
MINER_QUALITY_SIGMA = 0.6
ALICE_ALPHA_RAO = 400_000 * RAO_PER_ALPHA
ALICE_TAO_RAO = 50_000 * RAO_PER_ALPHA


def miner_quality(seed: int, miner: int) -> float:
    """Miner `miner`'s hidden quality (what validators observe, with noise)."""
    return float(np.random.default_rng([seed, 2, miner]).lognormal(0.0, MINER_QUALITY_SIGMA))


def register_miner(sim: SimChain, netuid: int) -> int:
    """Register the next scenario miner (`//sim/<seed>/miner/<k>`); its uid."""
    k = sim.scenario.get("miners_registered", 0)
    uid = sim.register(netuid, sim.keypair("miner", k).ss58_address, sim.keypair("miner", k, coldkey=True).ss58_address)
    sim.scenario["miners_registered"] = k + 1
    return uid


def validator_weights(sim: SimChain, neurons, validator: int, block: int) -> tuple[list[int], list[int]]:
    """A validator's u16 weights on every scenario miner registered now: noisy quality, max-upscaled
    with round() as the SDK does (chain_interface.md §6.1); zeros dropped, uids ascending."""
    quality = {sim.keypair("miner", k).ss58_address: miner_quality(sim.seed, k)
               for k in range(sim.scenario.get("miners_registered", 0))}
    miners = neurons.filter(neurons["hotkey"].is_in(list(quality))).sort("uid")
    if miners.height == 0:
        return [], []
    noise = np.random.default_rng([sim.seed, 3, block, validator]).normal(0.0, WEIGHT_NOISE_SIGMA, miners.height)
    score = np.array([quality[h] for h in miners["hotkey"]]) * np.exp(noise)
    values = [round(v) for v in score / score.max() * 65535]
    pairs = [(int(u), v) for u, v in zip(miners["uid"], values, strict=True) if v > 0]
    return [u for u, _ in pairs], [v for _, v in pairs]


def play_default_scenario(sim: SimChain, tempos: int = DEFAULT_TEMPOS, netuid: int = DEFAULT_NETUID) -> None:
    """Play the scenario on a fresh SimChain (head at genesis) until `tempos` epochs have run."""
    if sim.head_block() != 0:
        raise ValueError(f"the default scenario starts at genesis; {sim.source} is at block {sim.head_block()}")
    rng = np.random.default_rng([sim.seed, 1])
    alpha = [ALICE_ALPHA_RAO] + [int(a) * RAO_PER_ALPHA for a in rng.integers(20_000, 200_000, VALIDATORS - 1)]
    tao = [ALICE_TAO_RAO] + [int(t) * RAO_PER_ALPHA for t in rng.integers(0, 100_000, VALIDATORS - 1)]
    with sim.genesis():
        for i in range(VALIDATORS):
            hotkey = sim.keypair("validator", i)
            sim.register(netuid, hotkey.ss58_address, sim.keypair("validator", i, coldkey=True).ss58_address)
            sim.add_stake(netuid, hotkey.ss58_address, alpha[i], tao[i])
        for _ in range(INITIAL_MINERS):
            register_miner(sim, netuid)

    tempo = int(sim.snapshot(netuid, 0, ("subnets",)).subnets["tempo"][0])
    last_block = tempos * tempo
    while sim.head_block() < last_block:
        with sim.block() as b:
            play_block(sim, netuid, b, validators=range(VALIDATORS), registrations=True)
    sim.scenario.update(autopilot=True, netuid=netuid)


def play_block(sim: SimChain, netuid: int, b: int, *, validators, registrations: bool) -> None:
    """The scenario's actions in the open block `b`: the given validators that are due and hold a
    permit set weights; a miner may register (never in an epoch block)."""
    tempo = int(sim.snapshot(netuid, b - 1, ("subnets",)).subnets["tempo"][0])
    due = [i for i in validators if tempo and (b - 2 - 3 * i) % tempo == 0]
    if due:
        neurons = sim.snapshot(netuid, b - 1, ("neurons",)).neurons
        for i in due:
            hotkey = sim.keypair("validator", i)
            row = neurons.filter(neurons["hotkey"] == hotkey.ss58_address)
            if row.height and row["validator_permit"][0]:
                uids, weights = validator_weights(sim, neurons, i, b)
                if uids:
                    sim.set_weights(netuid, uids, weights, 0, hotkey)
    if registrations:
        subnet = sim.snapshot(netuid, b - 1, ("subnets",)).subnets.row(0, named=True)
        chance = REGISTRATION_CHANCE_OPEN if subnet["subnetwork_n"] < subnet["max_allowed_uids"] else \
            REGISTRATION_CHANCE_FULL
        if sim.last_epoch_block(netuid) != b and np.random.default_rng([sim.seed, 4, b]).random() < chance:
            register_miner(sim, netuid)


def autopilot_block(sim: SimChain, b: int) -> None:
    """After the scenario, the background validators (1..4, not //Alice, which is the caller's) keep
    setting weights each tempo as the chain advances; nobody new registers."""
    netuid = sim.scenario["netuid"]
    if netuid in sim.netuids():
        play_block(sim, netuid, b, validators=range(1, VALIDATORS), registrations=False)
