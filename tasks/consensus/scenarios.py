"""Named what-if scenarios on synthetic data: engine inputs for a few validators and miners over N
epochs, so a mechanism can be studied without history (issue 6; modelled on the Yuma3 tests,
yuma_vectors.md §2.7).

Conventions (as in `setup_yuma_3_scenario`): validators are uids 0..V−1 and hold permits from an
epoch without weights; miners follow. Epoch e runs at block FIRST_EPOCH_BLOCK + TEMPO·e; a validator
that sends weights for epoch e sends them one block before (its last_update); a miner registered
"at epoch e" registers in the block of epoch e − 1, after it ran, so it first appears in epoch e.
Baseline hyperparameters are those of the Yuma3 tests (Yuma3 and liquid alpha on, α bounds
(6553, 19660), κ 32767, bonds penalty 0, bonds moving average 975000); a what-if variant changes them.
A weight copier sets, for epoch e, the consensus of epoch e − 1; with the honest validators agreeing
(as here) that consensus is their common weight row of epoch e − 1, max-upscaled as stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import polars as pl

from schemas.consensus import EPOCH_BONDS, EPOCH_NEURONS, EPOCH_WEIGHTS, EPOCHS

M = 65535
NETUID = 1
TEMPO = 2
FIRST_EPOCH_BLOCK = 4
EMISSION_RAO = 1_000_000_000
STAKE_UNIT_RAO = 1_000_000_000
BASELINE_HYPERPARAMETERS = {
    "tempo": TEMPO, "last_mechanism_step_block": 0, "owner_uid": None, "kappa": 32767, "bonds_penalty": 0,
    "bonds_moving_avg": 975_000, "yuma3_enabled": True, "liquid_alpha_enabled": True, "alpha_low": 6553,
    "alpha_high": 19660, "alpha_sigmoid_steepness": 1000, "activity_cutoff_factor_milli": 13889,
    "max_allowed_validators": 64, "stake_threshold": 0, "tao_weight": 0, "emission": EMISSION_RAO,
}


class Scenario(NamedTuple):
    """inputs: the engine's four tables ("epochs", "neurons", "weights", "bonds"); roles: netuid, uid,
    role for the validators whose relative dividends matter (copier, tiny, big)."""

    name: str
    description: str
    inputs: dict[str, pl.DataFrame]
    roles: pl.DataFrame


def epoch_block(e: int) -> int:
    return FIRST_EPOCH_BLOCK + TEMPO * e


def build(name: str, description: str, stakes: list[int], miners: int, schedule: list[dict[int, list[int]]],
          *, registered_at_epoch: dict[int, int] | None = None, roles: dict[str, int] | None = None,
          netuid: int = NETUID) -> Scenario:
    """Engine inputs of a scenario. `stakes`: per validator, in stake units; `schedule[e]`: the weight rows
    (u16 per miner, in miner order) the validators send for epoch e (absent: last row kept);
    `registered_at_epoch`: miner index → epoch it first appears in (default: from the start)."""
    validators = len(stakes)
    registered_at_epoch = registered_at_epoch or {}
    epochs, neurons, weights = [], [], []
    rows: dict[int, list[int]] = {}
    last_update = dict.fromkeys(range(validators), 1)
    for e, sent in enumerate(schedule):
        block = epoch_block(e)
        key = {"netuid": netuid, "mechid": 0, "block": block}
        previous_epoch_block = epoch_block(e - 1) if e else FIRST_EPOCH_BLOCK - TEMPO
        epochs.append({**key, **BASELINE_HYPERPARAMETERS, "last_mechanism_step_block": previous_epoch_block})
        present = [m for m in range(miners) if registered_at_epoch.get(m, 0) <= e]
        for v, row in sent.items():
            rows[v], last_update[v] = row, block - 1
        for v in range(validators):
            neurons.append({**key, "uid": v, "alpha_stake": stakes[v] * STAKE_UNIT_RAO, "tao_stake": 0,
                            "last_update": last_update[v], "block_at_registration": 1,
                            "validator_permit": True})
        for m in present:
            at = registered_at_epoch.get(m, 0)
            registered = 1 if at == 0 else epoch_block(at - 1)
            neurons.append({**key, "uid": validators + m, "alpha_stake": 0, "tao_stake": 0,
                            "last_update": registered, "block_at_registration": registered,
                            "validator_permit": False})
        for v, row in sorted(rows.items()):
            weights += [{**key, "validator_uid": v, "miner_uid": validators + m, "weight": w}
                        for m, w in enumerate(row) if m in present]
    role_rows = [{"netuid": netuid, "uid": uid, "role": role} for role, uid in (roles or {}).items()]
    return Scenario(name, description, {
        "epochs": pl.DataFrame(epochs, schema=EPOCHS.polars_schema()),
        "neurons": pl.DataFrame(neurons, schema=EPOCH_NEURONS.polars_schema()),
        "weights": pl.DataFrame(weights, schema=EPOCH_WEIGHTS.polars_schema()),
        "bonds": EPOCH_BONDS.empty(),
    }, pl.DataFrame(role_rows, schema={"netuid": pl.UInt16, "uid": pl.UInt16, "role": pl.String}))


def _moves(epochs: int, first: int, second: int, big_first: bool) -> list[dict[int, list[int]]]:
    """Three validators [A (big), B, C] move from miner 0 to miner 1: one at epoch `first`, the next at
    `second`, the last at second + 1 (A first when `big_first`, else A last)."""
    old, new = [M, 0], [0, M]
    order = [0, 1, 2] if big_first else [1, 2, 0]
    schedule = [{0: old, 1: old, 2: old}]
    for e in range(1, epochs):
        moved = [v for v, at in zip(order, (first, second, second + 1), strict=True) if e >= at]
        schedule.append({v: (new if v in moved else old) for v in range(3)} if e <= second + 1 else {})
    return schedule


def kappa_moves_first(epochs: int = 6) -> Scenario:
    """`test_yuma_3_kappa_moves_first`: the 80 % validator A moves to the new miner first (e1), B at e2,
    C at e3 (yuma_vectors.md §2.7)."""
    return build("kappa_moves_first", kappa_moves_first.__doc__, [8, 1, 1], 2, _moves(epochs, 1, 2, True),
                 roles={"big": 0})


def kappa_moves_late(epochs: int = 6) -> Scenario:
    """`test_yuma_3_kappa_moves_last`: B moves at e1, C at e2 and the 80 % validator A last, at e3."""
    schedule = [{0: [M, 0], 1: [M, 0], 2: [M, 0]}, {1: [0, M]}, {2: [0, M]}, {0: [0, M]}]
    return build("kappa_moves_late", kappa_moves_late.__doc__, [8, 1, 1], 2,
                 (schedule + [{}] * epochs)[:epochs], roles={"big": 0})


def big_validator_moves_late(epochs: int = 8) -> Scenario:
    """Two 20 % validators move to the new miner at e2; the 60 % validator follows only at e5."""
    schedule = [{0: [M, 0], 1: [M, 0], 2: [M, 0]}, {}, {1: [0, M], 2: [0, M]}, {}, {}, {0: [0, M]}]
    return build("big_validator_moves_late", big_validator_moves_late.__doc__, [60, 20, 20], 2,
                 (schedule + [{}] * epochs)[:epochs], roles={"big": 0})


def all_validators_switch(epochs: int = 8) -> Scenario:
    """Three validators of equal stake all move from miner 0 to miner 1 at once, at epoch N/2."""
    switch = epochs // 2
    schedule = [{v: [M, 0] for v in range(3)}] + [{}] * (epochs - 1)
    schedule[switch] = {v: [0, M] for v in range(3)}
    return build("all_validators_switch", all_validators_switch.__doc__, [33, 33, 34], 2, schedule)


def weight_copier(epochs: int = 8) -> Scenario:
    """Three honest validators (30 % of stake each) move from miner 0 to miner 1 at e2 and to miner 2 at
    e5; a copier (uid 3, 9 %) sends last epoch's consensus; a tiny honest validator (uid 4, 1 %)."""
    honest = {0: [M, 0, 0], 2: [0, M, 0], 5: [0, 0, M]}
    row, schedule = honest[0], []
    for e in range(epochs):
        previous, row = row, honest.get(e, row)
        sent = {v: row for v in (0, 1, 2, 4)}
        sent[3] = previous if e else row
        schedule.append(sent)
    return build("weight_copier", weight_copier.__doc__, [30, 30, 30, 9, 1], 3, schedule,
                 roles={"copier": 3, "tiny": 4})


def new_strong_miner(epochs: int = 8) -> Scenario:
    """Two miners share the weight; a third, stronger miner registers at e3 and every validator gives it
    most of its weight from then on."""
    schedule = [{v: [M, M, 0] for v in range(3)}] + [{}] * (epochs - 1)
    if epochs > 3:
        schedule[3] = {v: [M // 4, M // 4, M] for v in range(3)}
    return build("new_strong_miner", new_strong_miner.__doc__, [50, 30, 20], 3, schedule,
                 registered_at_epoch={2: 3})


CATALOGUE: dict[str, Callable[..., Scenario]] = {f.__name__: f for f in (
    kappa_moves_first, kappa_moves_late, all_validators_switch, weight_copier, big_validator_moves_late,
    new_strong_miner)}


def scenario(name: str, epochs: int | None = None) -> Scenario:
    """The catalogue's scenario `name` (optionally over `epochs` epochs)."""
    if name not in CATALOGUE:
        raise ValueError(f"unknown scenario {name!r}; the catalogue has: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]() if epochs is None else CATALOGUE[name](epochs)
