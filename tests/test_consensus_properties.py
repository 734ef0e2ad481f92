"""Random epochs: the engine equals the literal reference exactly, on every output and on bonds.

Seeded generation (numpy): n from 1 to 40; random stored permits, alpha and root stakes (TaoWeight),
weights (explicit zeros, absent entries, outdated rows), bonds, activity, owner, κ, bonds penalty,
moving average, classic and Yuma3, liquid alpha with any steepness. Several epochs go through ONE
run_epochs call (grouping by the epoch key); each is checked against its own reference run. Besides
equality: outputs in range, Σincentive and Σdividends in [65535 − n, 65535] when nonzero, paid
emission ≤ the epoch's, and new permits follow the top-k rule of spec §2.3.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference_yuma as ref
from consensus_cases import EpochCase, Neuron, run_engine, run_reference

U16 = 65535


def random_epoch(rng: np.random.Generator, netuid: int, *, yuma3: bool, liquid: bool,
                 consensus_mode: int | None = None) -> EpochCase:
    """A random epoch; with `consensus_mode` (a CONSENSUS_MODES code) also the rules after spec 425:
    liquid alpha's mode, a stored previous consensus (none, shorter or as long as n, gaps read 0) and
    commit-reveal with commit blocks around the registrations (c_i = R_j is not masked)."""
    n = int(rng.integers(1, 41))
    tempo = int(rng.choice([1, 10, 100, 360]))
    block = int(rng.integers(2_000, 20_000))
    cutoff = max(1, 13889 * tempo // 1000)
    neurons = []
    for _ in range(n):
        kind = rng.random()
        alpha = 0 if kind < 0.25 else int(rng.integers(1, 10**6)) if kind < 0.4 else int(10 ** rng.uniform(9, 15))
        tao = int(10 ** rng.uniform(6, 14)) if rng.random() < 0.3 else 0
        registered = int(rng.integers(0, block))
        last_update = int(rng.integers(max(0, block - 2 * cutoff), block + 1))
        if rng.random() < 0.15:
            last_update = registered  # outdated against its own registration block
        neurons.append(Neuron(alpha_stake=alpha, tao_stake=tao, last_update=last_update,
                              block_at_registration=registered, validator_permit=bool(rng.random() < 0.6)))
    weights = {}
    for i in range(n):
        if rng.random() < 0.7:
            miners = sorted(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).tolist())
            values = rng.integers(0, U16 + 1, size=len(miners))
            values[rng.random(len(miners)) < 0.15] = 0
            if rng.random() < 0.7 and values.max() > 0:  # as set_weights stores them (max-upscaled)
                values = np.array(ref.vec_max_upscale_to_u16([ref.from_int(int(v)) for v in values]))
            weights[i] = [(int(j), int(v)) for j, v in zip(miners, values, strict=True)]
    bonds = {}
    for i in range(n):
        if rng.random() < 0.5:
            miners = sorted(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).tolist())
            bonds[i] = [(int(j), int(rng.integers(1, U16 + 1))) for j in miners]
    low = int(rng.integers(1638, U16 + 1))
    high = int(rng.integers(low, U16 + 1))
    params = {
        "tempo": tempo,
        "last_mechanism_step_block": int(rng.choice([0, block - tempo, int(rng.integers(0, block))])),
        "owner_uid": int(rng.integers(0, n)) if rng.random() < 0.3 else None,
        "kappa": int(rng.choice([32767, 32767, 0, 1, 65535, int(rng.integers(0, U16 + 1))])),
        "bonds_penalty": int(rng.choice([0, U16, int(rng.integers(0, U16 + 1))])),
        "bonds_moving_avg": int(rng.choice([900_000, 975_000, 0, 1_000_000, int(rng.integers(0, 1_000_001))])),
        "yuma3_enabled": yuma3,
        "liquid_alpha_enabled": liquid,
        "alpha_low": low,
        "alpha_high": high,
        "alpha_sigmoid_steepness": int(rng.choice([1000, 0, -1000, 32767, -32768, int(rng.integers(-32768, 32768))])),
        "activity_cutoff_factor_milli": 13889,
        "max_allowed_validators": int(rng.integers(0, n + 3)),
        "stake_threshold": int(rng.choice([0, 0, 10**9, int(rng.integers(0, 10**12))])),
        "tao_weight": [0, 971718665099567868, 2**64 - 1][int(rng.integers(0, 3))],  # no float detour
        "emission": int(rng.choice([10**9, int(rng.integers(0, 2**50))])),
    }
    if consensus_mode is not None:
        params["liquid_alpha_consensus_mode"] = consensus_mode
        params["commit_reveal_enabled"] = bool(rng.random() < 0.7)
        stored = int(rng.choice([0, n, int(rng.integers(0, n + 1))]))
        registrations = [nd.block_at_registration for nd in neurons]
        for uid, nd in enumerate(neurons):
            if uid < stored:
                nd.previous_consensus = None if rng.random() < 0.1 else int(rng.integers(0, U16 + 1))
            if rng.random() < 0.5:
                nd.commit_block = int(rng.choice(registrations)) + int(rng.integers(-1, 2))
                nd.commit_block = max(nd.commit_block, 0)
    return EpochCase(block=block, neurons=neurons, weights=weights, bonds=bonds, params=params,
                     netuid=netuid, mechid=int(rng.integers(0, 2)))


def topk_permits(case: EpochCase) -> list[bool]:
    """Spec §2.3 from the inputs: s ≠ 0, the n − K lowest stakes (stable, uid order) lose, owner on."""
    p = case.full_params()
    n = len(case.neurons)
    tw = p["tao_weight"] * ref.ONE // (2**64 - 1)
    u = [nd.alpha_stake * ref.ONE + nd.tao_stake * tw for nd in case.neurons]
    u = [0 if (i != p["owner_uid"] and (x >> 32) < p["stake_threshold"]) else x for i, x in enumerate(u)]
    s = [x * ref.ONE // sum(u) if sum(u) else 0 for x in u]
    permits = [x != 0 for x in s]
    k = p["max_allowed_validators"]
    if n >= k:
        for i in sorted(range(n), key=lambda i: s[i])[: n - k]:
            permits[i] = False
    if p["owner_uid"] is not None:
        permits[p["owner_uid"]] = True
    return permits


def check_batch(cases: list[EpochCase]) -> None:
    engine = run_engine(cases)
    problems = []
    for case, got in zip(cases, engine, strict=True):
        want = run_reference([case])[0]
        n = len(case.neurons)
        p = case.full_params()
        label = (f"epoch {case.key} n={n} yuma3={p['yuma3_enabled']} liquid={p['liquid_alpha_enabled']} "
                 f"kappa={p['kappa']} penalty={p['bonds_penalty']} owner={p['owner_uid']}")
        for field, values in want.outputs.items():
            if got.outputs[field] != values:
                diff = [(uid, values[uid], got.outputs[field][uid]) for uid in range(n)
                        if got.outputs[field][uid] != values[uid]]
                problems.append(f"{label}: {field} differs at (uid, expected, got) {diff[:5]}")
        if got.bonds != want.bonds:
            diff = [(i, j, want.bond(i, j), got.bond(i, j)) for i in range(n) for j in range(n)
                    if want.bond(i, j) != got.bond(i, j)]
            problems.append(f"{label}: bonds differ at (i, j, expected, got) {diff[:5]}")
        # properties that hold whatever the implementation
        for field in ("stake_weight", "consensus", "incentive", "dividends", "validator_trust"):
            assert all(0 <= v <= U16 for v in got.outputs[field]), f"{label}: {field} out of range"
        for field in ("incentive", "dividends"):
            total = sum(got.outputs[field])
            assert total == 0 or U16 - n <= total <= U16, f"{label}: Σ{field} = {total}"
        emission = p["emission"]
        assert sum(got.server_emission) + sum(got.validator_emission) <= emission, f"{label}: overpaid"
        assert sum(got.emission) <= emission, f"{label}: Σ emission > epoch emission"
        assert got.validator_permit == topk_permits(case), f"{label}: new permits break the top-k rule"
        for i in got.bonds:
            assert got.validator_permit[i], f"{label}: bonds stored for uid {i} without a new permit"
            assert all(0 < b <= U16 for b in got.bonds[i].values()), f"{label}: bond out of range"
    assert not problems, "engine != reference:\n" + "\n".join(problems)


@pytest.mark.parametrize("mode", ["classic", "yuma3", "yuma3_liquid"])
@pytest.mark.parametrize("seed", range(6))
def test_random_epochs_engine_equals_reference(mode, seed):
    rng = np.random.default_rng(1000 * seed + len(mode))
    cases = [random_epoch(rng, netuid, yuma3=mode != "classic", liquid=mode == "yuma3_liquid")
             for netuid in range(12)]
    check_batch(cases)


@pytest.mark.parametrize("consensus_mode", range(4), ids=["current", "previous", "auto", "max"])
@pytest.mark.parametrize("seed", range(3))
def test_random_epochs_with_todays_rules_engine_equals_reference(consensus_mode, seed):
    """Liquid alpha's consensus mode, the stored previous consensus and the commit-reveal mask on
    random classic, Yuma3 and liquid epochs in one batch: engine = reference on every column."""
    rng = np.random.default_rng(500 + 10 * seed + consensus_mode)
    cases = [random_epoch(rng, netuid, yuma3=netuid % 3 > 0, liquid=netuid % 3 == 2, consensus_mode=consensus_mode)
             for netuid in range(15)]
    check_batch(cases)


def test_mixed_modes_in_one_batch():
    """Classic, Yuma3 and liquid epochs of several subnets, mechanisms and blocks in one call."""
    rng = np.random.default_rng(7)
    cases = []
    for netuid in range(18):
        mode = netuid % 3
        cases.append(random_epoch(rng, netuid % 5, yuma3=mode > 0, liquid=mode == 2))
    keys = [c.key for c in cases]
    for i, c in enumerate(cases):  # make the keys distinct (same netuid, other mechid/block)
        while keys.count(c.key) > 1:
            c.block += 1
            keys[i] = c.key
    check_batch(cases)


def test_kappa_one_with_all_positive_scores():
    """κ = 65535/65535 = 1 > S (μ < 0): the pivot search returns the smallest score present."""
    neurons = [Neuron(10**9, 5, 0, True), Neuron(2 * 10**9, 5, 0, True), Neuron(0, 5, 0, False)]
    case = EpochCase(block=10, neurons=neurons, weights={0: [(2, 65535)], 1: [(0, 1), (2, 1)]},
                     params={"kappa": 65535, "tempo": 100})
    want = run_reference([case])[0]
    assert want.consensus[2] == 32767  # min(1.0, 0.5): the smaller score, floor(0.5·65535)
    assert run_engine([case])[0].outputs == want.outputs


def test_large_subnet_extreme_magnitudes():
    """n = 128, dense rows, stakes up to 2^54 rao with TaoWeight 1.0, emission 2^62 rao, steepness at the
    i16 limit (the exp_safe clamp of §3 matters), owner set: classic, Yuma3 and liquid in one batch."""
    rng = np.random.default_rng(5)
    cases = []
    for mode in range(3):
        n = 128
        neurons = [Neuron(alpha_stake=int(rng.integers(0, 2**54)), tao_stake=int(rng.integers(0, 2**54)),
                          last_update=1000, block_at_registration=int(rng.integers(0, 900)),
                          validator_permit=bool(rng.random() < 0.5)) for _ in range(n)]
        weights = {i: [(j, int(rng.integers(0, U16 + 1))) for j in range(n)] for i in range(n) if rng.random() < 0.5}
        bonds = {i: [(j, int(rng.integers(1, U16 + 1))) for j in range(n) if rng.random() < 0.5]
                 for i in range(n) if rng.random() < 0.5}
        cases.append(EpochCase(block=1001, neurons=neurons, weights=weights, bonds=bonds, mechid=mode, params={
            "tempo": 360, "yuma3_enabled": mode > 0, "liquid_alpha_enabled": mode == 2, "tao_weight": 2**64 - 1,
            "max_allowed_validators": 64, "bonds_penalty": 40000, "emission": 2**62, "owner_uid": 3,
            "alpha_low": 6553, "alpha_high": 60000, "alpha_sigmoid_steepness": 32767 if mode == 2 else -32768}))
    check_batch(cases)


def test_row_order_of_epochs_neurons_and_bonds_does_not_matter():
    """Frames are sets of keyed rows: shuffling epochs, neurons and bonds rows changes nothing (weights
    rows keep their order, which the contract fixes as ascending miner_uid per validator)."""
    from consensus_cases import frames_for, split_outputs

    from tasks.consensus import run_epochs

    rng = np.random.default_rng(11)
    cases = [random_epoch(rng, netuid, yuma3=netuid % 2 == 0, liquid=netuid % 4 == 0) for netuid in range(8)]
    epochs, neurons, weights, bonds = frames_for(cases)
    straight = run_epochs(epochs, neurons, weights, bonds)
    shuffled = run_epochs(epochs.sample(fraction=1.0, shuffle=True, seed=1),
                          neurons.sample(fraction=1.0, shuffle=True, seed=2), weights,
                          bonds.sample(fraction=1.0, shuffle=True, seed=3))
    for a, b in zip(split_outputs(cases, straight.neurons, straight.bonds),
                    split_outputs(cases, shuffled.neurons, shuffled.bonds), strict=True):
        assert a.outputs == b.outputs and a.bonds == b.bonds
