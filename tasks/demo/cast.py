"""The demo's cast on the simulated subnet: who joins it, and what the other validators do each tempo.

The default scenario (tasks/simnet/scenario.py) already holds //Alice (our validator, uid 0) and
four honest validators that weigh the scenario's miners by a noisy view of their quality every tempo.
The demo adds, all on 127.0.0.1 and all labelled:

- a **weight copier**: a validator that sets, each tempo, the consensus the chain published at the last
  epoch (max-upscaled to u16 like the SDK) — it does no evaluation work and hopes to earn dividends;
- a **tiny validator**: an honest validator (the same noisy-quality weights as the background ones)
  with a tiny stake, 0.025 % of //Alice's;
- **miners** serving real HTTP: the MLflow `champion` and `challenger` of the demo's registered model,
  two baselines (seasonal naive, drift) and hostile miners (NaN, wrong length, a sleeper past the
  timeout, an answer copier).

Keys are the simulation's deterministic development keys (`//sim/<seed>/demo-…/<i>`), never secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tasks.simnet.chain import RAO_PER_ALPHA, SimChain
from tasks.simnet.scenario import validator_weights

COPIER_ALPHA_RAO = 60_000 * RAO_PER_ALPHA
TINY_ALPHA_RAO = 100 * RAO_PER_ALPHA
# Acting offsets within a tempo of 20 blocks: the background validators act at 2, 5, 8, 11 and 14;
# the copier and the tiny validator act after the epoch's consensus is public, our validator last.
COPIER_OFFSET = 7
TINY_OFFSET = 9
OUR_VALIDATOR_OFFSET = 16
TINY_VALIDATOR_INDEX = 99  # its noise stream in validator_weights (distinct from the scenario's 0..4)


@dataclass(frozen=True)
class MinerRole:
    """One demo miner: `kind` is `mlflow` (serves the alias `spec`), `baseline` (a forecaster spec)
    or `hostile` (a neurons.hostile kind)."""

    name: str
    kind: str
    spec: str


MINERS = (
    MinerRole("champion", "mlflow", "champion"),
    MinerRole("challenger", "mlflow", "challenger"),
    MinerRole("seasonal-naive", "baseline", "baseline:seasonal_naive:24"),
    MinerRole("drift", "baseline", "baseline:drift"),
    MinerRole("hostile-nan", "hostile", "nan"),
    MinerRole("hostile-wrong-length", "hostile", "wrong_length"),
    MinerRole("hostile-sleeper", "hostile", "sleeper"),
    MinerRole("hostile-answer-copier", "hostile", "copier"),
)


def copier_key(sim: SimChain):
    return sim.keypair("demo-validator", 0)


def tiny_key(sim: SimChain):
    return sim.keypair("demo-validator", 1)


def miner_key(sim: SimChain, i: int):
    return sim.keypair("demo-miner", i)


def join_validators(sim: SimChain, netuid: int) -> dict[str, int]:
    """Register and stake the copier and the tiny validator unless they already are; their uids."""
    uids = {}
    for role, key, alpha in (("copier", copier_key(sim), COPIER_ALPHA_RAO), ("tiny", tiny_key(sim), TINY_ALPHA_RAO)):
        uid = uid_of(sim, netuid, key.ss58_address)
        if uid is None:
            index = 0 if role == "copier" else 1
            coldkey = sim.keypair("demo-validator", index, coldkey=True).ss58_address
            uid = sim.register(netuid, key.ss58_address, coldkey)
            sim.add_stake(netuid, key.ss58_address, alpha)
        uids[role] = uid
    return uids


def join_miner(sim: SimChain, netuid: int, i: int, port: int) -> int:
    """Register demo miner `i` (once) and point its axon at 127.0.0.1:`port`; its uid."""
    key = miner_key(sim, i)
    uid = uid_of(sim, netuid, key.ss58_address)
    if uid is None:
        uid = sim.register(netuid, key.ss58_address, sim.keypair("demo-miner", i, coldkey=True).ss58_address)
    submission = sim.serve_axon(netuid, "127.0.0.1", port, key)
    if not submission.ok:
        raise RuntimeError(f"serve_axon for demo miner {i} was refused: {submission.error}")
    return uid


def uid_of(sim: SimChain, netuid: int, hotkey_ss58: str) -> int | None:
    neurons = sim.snapshot(netuid, sim.head_block(), parts=("neurons",)).neurons
    row = neurons.filter(pl.col("hotkey") == hotkey_ss58)
    return int(row["uid"][0]) if row.height else None


def permitted_validators(sim: SimChain, netuid: int) -> set[str]:
    """Hotkeys holding a validator permit now: whom the demo's miners answer."""
    neurons = sim.snapshot(netuid, sim.head_block(), parts=("neurons",)).neurons
    return set(neurons.filter(pl.col("validator_permit"))["hotkey"])


def copier_weights(neurons: pl.DataFrame, own_uid: int) -> tuple[list[int], list[int]]:
    """Last epoch's consensus as a weight row: u16, max-upscaled with round() like the SDK, zeros and
    the copier's own uid dropped, uids ascending."""
    row = neurons.filter((pl.col("consensus") > 0) & (pl.col("uid") != own_uid)).sort("uid")
    if row.height == 0:
        return [], []
    top = int(row["consensus"].max())
    values = row.select((pl.col("consensus").cast(pl.Float64) / top * 65535).round().cast(pl.Int64))
    pairs = [(int(u), int(v)) for u, v in zip(row["uid"], values.to_series(), strict=True) if v > 0]
    return [u for u, _ in pairs], [v for _, v in pairs]


def act(sim: SimChain, netuid: int, role: str) -> bool:
    """The copier or the tiny validator sets its weights in the next block; False if it had nothing to
    set or no permit (it then simply sits the tempo out, as a real validator would)."""
    key = copier_key(sim) if role == "copier" else tiny_key(sim)
    neurons = sim.snapshot(netuid, sim.head_block(), parts=("neurons",)).neurons
    me = neurons.filter(pl.col("hotkey") == key.ss58_address)
    if me.height == 0 or not me["validator_permit"][0]:
        return False
    if role == "copier":
        uids, weights = copier_weights(neurons, int(me["uid"][0]))
    else:
        uids, weights = validator_weights(sim, neurons, TINY_VALIDATOR_INDEX, sim.head_block() + 1)
    if not uids:
        return False
    return sim.set_weights(netuid, uids, weights, 0, key).ok


def advance_to_offset(sim: SimChain, netuid: int, offset: int) -> int:
    """Seal blocks until the head is `offset` blocks past the subnet's last epoch (the background
    validators act as the blocks go by); the new head."""
    target = sim.last_epoch_block(netuid) + offset
    if sim.head_block() < target:
        sim.advance(target - sim.head_block())
    return sim.head_block()
