"""The epoch rules after spec 425, as the current subtensor source has them (README "Epoch variants").

Vectors transcribed from RaoFoundation/subtensor's tests (and one opentensor/subtensor test for the
unconfirmed Max mode), each run through the engine and through the literal reference:
- liquid alpha's consensus (`compute_consensus_for_liquid_alpha`, tests `consensus_mode.rs`): the exact
  I32F32 bits of the consensus vector each mode hands to the sigmoid;
- the commit-reveal column mask (`tests/epoch/snipe_weight_mask.rs`): a uid registered after a
  validator's unexpired commit gets none of that validator's weight.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import reference_yuma as ref
from consensus_cases import EpochCase, Neuron, frames_for, run, run_engine

from tasks.consensus import epoch as engine
from tasks.consensus.validate import ConsensusInputError, index_batch

CURRENT, PREVIOUS, AUTO, MAX = range(4)

# I32F32::from_num(v) bits (round to nearest): 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5
FX = {0.1: 429496730, 0.15: 644245094, 0.2: 858993459, 0.25: 1073741824, 0.3: 1288490189, 0.4: 1717986918,
      0.5: 2147483648}
# The stored previous Consensus of the tests: (v as f32 * 65535f32) as u16 for 0.1, 0.2, 0.3, 0.4.
STORED = [6553, 13107, 19660, 26214]
# ... read back as I32F32 (u16 ⊘ 65535): 0.0999924, 0.2, 0.2999924, 0.4.
STORED_BITS = [429463961, 858993459, 1288457420, 1717986918]


def engine_consensus_for_liquid_alpha(mode: int, bonds_penalty: int, consensus_bits: list[int],
                                      stored: list[int]) -> list[int]:
    """The engine's own path: epoch columns -> batch index -> neuron inputs -> `liquid_alpha_consensus`."""
    n = len(consensus_bits)
    case = EpochCase(block=100, neurons=[Neuron(alpha_stake=1) for _ in range(n)],
                     params={"liquid_alpha_consensus_mode": mode, "bonds_penalty": bonds_penalty,
                             "yuma3_enabled": True, "liquid_alpha_enabled": True})
    for uid, value in enumerate(stored[:n]):
        case.neurons[uid].previous_consensus = value
    batch = index_batch(*frames_for([case]))
    nr = engine.neuron_inputs(batch, engine.epoch_parameters(batch.epochs))
    columns = {name: nr[name] for name in ("liquid_consensus_source", "previous_consensus_bits")}
    chunk = engine.ChunkNeurons({**columns, "offset": np.zeros(n, np.int64)}, np.array([0]))
    return engine.liquid_alpha_consensus(np.array(consensus_bits, np.int64), chunk).tolist()


def reference_consensus_for_liquid_alpha(mode: int, bonds_penalty: int, consensus_bits: list[int],
                                         stored: list[int]) -> list[int]:
    params = {"liquid_alpha_consensus_mode": mode, "bonds_penalty": bonds_penalty}
    return ref.consensus_for_liquid_alpha(params, consensus_bits, stored)


BOTH = [engine_consensus_for_liquid_alpha, reference_consensus_for_liquid_alpha]
C = [FX[0.2], FX[0.3], FX[0.4], FX[0.1]]


@pytest.mark.parametrize("impl", BOTH, ids=["engine", "reference"])
def test_current_mode_returns_the_current_consensus(impl):
    """test_compute_consensus_current_mode: result == C bit for bit, length 4."""
    assert impl(CURRENT, 0, C, STORED) == C


@pytest.mark.parametrize("impl", BOTH, ids=["engine", "reference"])
def test_previous_mode_returns_the_stored_consensus(impl):
    """test_compute_consensus_previous_mode: ≈ [0.1, 0.2, 0.3, 0.4] (±0.001); exact bits ⌊u·2^32/65535⌋."""
    got = impl(PREVIOUS, 0, C, STORED)
    assert got == STORED_BITS
    assert all(abs(g / 2**32 - v) < 0.001 for g, v in zip(got, [0.1, 0.2, 0.3, 0.4], strict=True))


@pytest.mark.parametrize("impl", BOTH, ids=["engine", "reference"])
def test_auto_mode_follows_the_raw_bonds_penalty(impl):
    """test_compute_consensus_auto_mode: BondsPenalty u16::MAX/2 -> current; u16::MAX -> previous."""
    assert impl(AUTO, 65535 // 2, C, STORED) == C
    assert impl(AUTO, 65535, C, STORED) == STORED_BITS
    assert impl(AUTO, 65534, C, STORED) == C  # exactly 65535, not "close to 1"


@pytest.mark.parametrize("impl", BOTH, ids=["engine", "reference"])
def test_max_mode_and_network_growth(impl):
    """opentensor test_compute_consensus_max_mode(_network_growth): max(C_j, P_j), P 0-padded past its end."""
    c = [FX[0.2], FX[0.2], FX[0.25], FX[0.5]]
    assert impl(MAX, 0, c, STORED) == [858993459, 858993459, 1288457420, 2147483648]
    grown = [FX[0.2], FX[0.15], FX[0.25], FX[0.5], FX[0.1], FX[0.3]]
    assert impl(MAX, 0, grown, STORED) == [858993459, 858993459, 1288457420, 2147483648, 429496730, 1288490189]


@pytest.mark.parametrize("impl", BOTH, ids=["engine", "reference"])
def test_previous_mode_edges_of_the_stored_vector(impl):
    """From the code: nothing stored -> C; stored shorter than n -> 0-padded (the network grew)."""
    assert impl(PREVIOUS, 0, C, []) == C
    assert impl(PREVIOUS, 0, C + [FX[0.5]], STORED) == STORED_BITS + [0]


def _liquid_case(mode: int, bonds_penalty: int, stored: list[int]) -> EpochCase:
    """A Yuma3 + liquid-alpha epoch of two validators and three miners whose consensus differs from the
    stored one, so the mode changes α and with it the bonds and dividends."""
    neurons = [Neuron(10**12, 90, 0, True), Neuron(3 * 10**12, 90, 0, True),
               Neuron(0, 90, 0, False), Neuron(0, 90, 0, False), Neuron(0, 90, 0, False)]
    for uid, value in enumerate(stored):
        neurons[uid].previous_consensus = value
    return EpochCase(block=100, neurons=neurons,
                     weights={0: [(2, 65535), (3, 20000), (4, 5000)], 1: [(2, 30000), (3, 65535), (4, 1000)]},
                     bonds={0: [(2, 30000), (3, 1000)], 1: [(3, 40000), (4, 500)]},
                     params={"yuma3_enabled": True, "liquid_alpha_enabled": True, "tempo": 100,
                             "liquid_alpha_consensus_mode": mode, "bonds_penalty": bonds_penalty,
                             "alpha_low": 6553, "alpha_high": 58982})


@pytest.mark.parametrize("runner", ["reference", "engine"])
def test_the_mode_changes_only_the_bonds_side(runner):
    """Only α reads the mode's vector: consensus, incentive and trust stay as in the current mode, bonds and
    dividends move; Auto equals Previous at BondsPenalty 65535 and Current below it."""
    stored = [0, 0, 60000, 100, 30000]
    current = run(runner, _liquid_case(CURRENT, 65535, stored))
    previous = run(runner, _liquid_case(PREVIOUS, 65535, stored))
    assert previous.bonds != current.bonds and previous.dividends != current.dividends
    for field in ("consensus", "incentive", "validator_trust", "server_emission"):
        assert getattr(previous, field) == getattr(current, field)
    auto = run(runner, _liquid_case(AUTO, 65535, stored))
    assert (auto.outputs, auto.bonds) == (previous.outputs, previous.bonds)
    auto_low = run(runner, _liquid_case(AUTO, 40000, stored))
    current_low = run(runner, _liquid_case(CURRENT, 40000, stored))
    assert (auto_low.outputs, auto_low.bonds) == (current_low.outputs, current_low.bonds)
    nothing_stored = run(runner, _liquid_case(PREVIOUS, 65535, []))
    assert (nothing_stored.outputs, nothing_stored.bonds) == (current.outputs, current.bonds)


# ---------------------------------------------------------------- the commit-reveal mask (§2.5.5)

def _snipe_case(commit_reveal: bool) -> EpochCase:
    """test_epoch_does_not_mask_outside_window_but_masks_inside (tempo 8, reveal period 2): validator uid 0
    committed at block 8 (expired by the epoch) and again at 32; uid 1 registered at 8, uids 2 and 3 at 33
    (inside the window); the validator's weights (set at 34) go a third to each. The snapshot resolves the
    unexpired commits to c_0 = 32 (tasks.chain.commits)."""
    neurons = [Neuron(10_000, 34, 0, True, commit_block=32), Neuron(1_000, 8, 8, False),
               Neuron(1_000, 33, 33, False), Neuron(1_000, 33, 33, False)]
    third = 65535 // 3
    return EpochCase(block=35, neurons=neurons, weights={0: [(1, third), (2, third), (3, third)]},
                     params={"tempo": 8, "max_allowed_validators": 1, "commit_reveal_enabled": commit_reveal})


@pytest.mark.parametrize("runner", ["reference", "engine"])
def test_uids_registered_inside_the_commit_window_are_masked(runner):
    masked = run(runner, _snipe_case(True))
    assert masked.incentive[1] > 0, "UID-1 (registered before the commit) unmasked"
    assert masked.incentive[2] == 0 and masked.incentive[3] == 0, "UID-2 and UID-3 (inside window) masked"
    assert masked.incentive[1] == 65535 and masked.server_emission[2:] == [0, 0]
    plain = run(runner, _snipe_case(False))  # test_epoch_no_mask_when_commit_reveal_disabled
    assert all(plain.incentive[j] > 0 for j in (1, 2, 3))


@pytest.mark.parametrize("runner", ["reference", "engine"])
def test_sniped_uid_inherits_nothing(runner):
    """test_epoch_masks_incoming_to_sniped_uid_prevents_inheritance: uid 1 is replaced (re-registered at
    block 30) after the validator's commit at block 24; the validator's refreshed row still points at it:
    no rank, no incentive. A validator with no unexpired commit is never masked."""
    neurons = [Neuron(10_000, 31, 0, True, commit_block=24), Neuron(10_000, 30, 30, False),
               Neuron(5_000, 0, 0, False)]
    case = EpochCase(block=32, neurons=neurons, weights={0: [(0, 32767), (1, 32767)]},
                     params={"tempo": 10, "max_allowed_validators": 3, "commit_reveal_enabled": True,
                             "owner_uid": 0})
    got = run(runner, case)
    assert got.incentive[1] == 0 and got.incentive[0] == 65535
    neurons[0].commit_block = None
    assert run(runner, case).incentive[1] > 0


def test_null_epoch_consensus_is_refused_by_name():
    case = EpochCase(block=10, neurons=[Neuron(1)], params={"epoch_consensus": 1})
    with pytest.raises(ConsensusInputError, match=r"epochs: at \(netuid=1, mechid=0, block=10\): "
                                                  r"epoch_consensus 1 \(Null\) is not supported"):
        run_engine([case])


def test_files_written_before_the_new_columns_mean_what_they_meant():
    """Frames without the new columns are valid, and give the outputs of the spec-425 rules."""
    case = _liquid_case(CURRENT, 65535, [])
    epochs, neurons, weights, bonds = frames_for([case])
    from tasks.consensus import run_epochs

    old = run_epochs(epochs.drop("commit_reveal_enabled", "liquid_alpha_consensus_mode", "epoch_consensus"),
                     neurons.drop("previous_consensus", "commit_block"), weights, bonds)
    new = run_epochs(epochs, neurons, weights, bonds)
    assert old.neurons.equals(new.neurons) and old.bonds.equals(new.bonds)
    with pytest.raises(ConsensusInputError, match="liquid_alpha_consensus_mode.*out of range"):
        run_epochs(epochs.with_columns(liquid_alpha_consensus_mode=pl.lit(4, pl.UInt8)), neurons, weights, bonds)


# ---------------------------------------------------------------- a replay across a rule change

def _snapshot_frames(block: int, mode: str | None, cr: bool, commit_blocks: list[int | None]):
    """A warehouse snapshot (subnets, neurons, weights, bonds) at `block` of a Yuma3 + liquid-alpha subnet,
    as the runtime in force stored it: `mode` None is a runtime before LiquidAlphaConsensusMode."""
    from schemas.chain import BONDS, NEURONS, SUBNETS, WEIGHTS

    n = 5
    subnets = pl.DataFrame([{
        "netuid": 7, "block": block, "subnetwork_n": n, "tempo": 100, "owner_uid": None, "kappa": 32767,
        "bonds_penalty": 65535, "bonds_moving_avg": 900_000, "yuma3_enabled": True, "liquid_alpha_enabled": True,
        "alpha_low": 6553, "alpha_high": 58982, "alpha_sigmoid_steepness": 1000, "activity_cutoff": 5000,
        "activity_cutoff_factor_milli": 13889, "max_allowed_validators": 64, "max_allowed_uids": 256,
        "min_allowed_weights": 1, "max_weight_limit": 65535, "weights_version": 0, "weights_rate_limit": 0,
        "immunity_period": 0, "commit_reveal_enabled": cr, "last_mechanism_step_block": block - 100,
        "mechanism_count": 1, "tao_weight": 0, "stake_threshold": 0, "pending_emission": 10**9,
        "liquid_alpha_consensus_mode": mode, "epoch_consensus": None if mode is None else "Yuma",
    }], schema=SUBNETS.polars_schema())
    neurons = pl.DataFrame({
        "netuid": 7, "block": block, "uid": range(n), "hotkey": [f"h{u}" for u in range(n)],
        "coldkey": [f"c{u}" for u in range(n)], "alpha_stake": [10**12, 3 * 10**12, 0, 0, 0], "tao_stake": [0] * n,
        "total_stake": [10**12, 3 * 10**12, 0, 0, 0], "emission": [0] * n,
        "consensus": [0, 0, 60000, 100, 30000], "incentive": [0] * n, "dividends": [0] * n,
        "validator_trust": [0] * n, "active": [True] * n, "validator_permit": [True, True, False, False, False],
        "last_update": [block - 10] * n, "block_at_registration": [0, 0, 0, 0, block - 20],
        "axon_ip": None, "axon_port": None, "axon_protocol": None, "commit_block": commit_blocks,
    }, schema=NEURONS.polars_schema())
    rows = [(0, 2, 65535), (0, 3, 20000), (0, 4, 5000), (1, 2, 30000), (1, 3, 65535), (1, 4, 1000)]
    weights = pl.DataFrame([(7, 0, block, v, m, w) for v, m, w in rows], orient="row", schema=WEIGHTS.polars_schema())
    bond_rows = [(0, 2, 30000), (0, 3, 1000), (1, 3, 40000), (1, 4, 500)]
    bonds = pl.DataFrame([(7, 0, block, v, m, b) for v, m, b in bond_rows], orient="row",
                         schema=BONDS.polars_schema())
    return subnets, neurons, weights, bonds


def test_a_replay_across_a_rule_change_applies_each_blocks_rules():
    """Block 1000 is before the upgrade (no consensus-mode item, no commit storage read: spec-425 rules);
    block 5000 after it (Auto with BondsPenalty 65535 -> the stored consensus; commit-reveal with validator
    1's commit older than uid 4's registration). One batch of both: each side equals the reference run
    with its own rules, and the later side differs from what the old rules would give."""
    from tasks.consensus import run_epochs
    from tasks.consensus.inputs import epoch_inputs_from_snapshots

    before = _snapshot_frames(1000, None, False, [None] * 5)
    after = _snapshot_frames(5000, "Auto", True, [None, 4970, None, None, None])
    inputs = epoch_inputs_from_snapshots(*(pl.concat([a, b]) for a, b in zip(before, after, strict=True)))
    epochs = inputs["epochs"].sort("block")
    assert epochs["liquid_alpha_consensus_mode"].to_list() == [0, 2]
    assert epochs["commit_reveal_enabled"].to_list() == [False, True]
    assert inputs["neurons"].filter(pl.col("block") == 5001)["previous_consensus"].to_list() == [0, 0, 60000, 100,
                                                                                                  30000]
    got = run_epochs(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    want_neurons, want_bonds = ref.run_frames(inputs["epochs"], inputs["neurons"], inputs["weights"], inputs["bonds"])
    assert got.neurons.sort("block", "uid").equals(want_neurons.sort("block", "uid"))
    assert got.bonds.sort("block", "validator_uid", "miner_uid").equals(
        want_bonds.sort("block", "validator_uid", "miner_uid"))

    old_rules = inputs["epochs"].with_columns(liquid_alpha_consensus_mode=pl.lit(0, pl.UInt8),
                                              commit_reveal_enabled=pl.lit(False))
    under_old = run_epochs(old_rules, inputs["neurons"], inputs["weights"], inputs["bonds"])
    late = pl.col("block") == 5001
    assert under_old.neurons.filter(~late).equals(got.neurons.filter(~late))
    assert not under_old.neurons.filter(late).equals(got.neurons.filter(late))
    assert got.neurons.filter(late)["incentive"][4] == 0  # masked: uid 4 registered after validator 1's commit
    assert under_old.neurons.filter(late)["incentive"][4] > 0


def test_an_unknown_consensus_mode_is_refused_by_name():
    from tasks.consensus.inputs import epoch_inputs_from_snapshots

    frames = _snapshot_frames(1000, "Median", False, [None] * 5)
    with pytest.raises(ValueError, match="LiquidAlphaConsensusMode 'Median' is a variant this engine does not know"):
        epoch_inputs_from_snapshots(*frames)


def test_a_null_consensus_epoch_is_left_out_of_the_replay():
    from tasks.consensus.inputs import epoch_inputs_from_snapshots

    subnets, neurons, weights, bonds = _snapshot_frames(1000, "Auto", False, [None] * 5)
    inputs = epoch_inputs_from_snapshots(subnets.with_columns(epoch_consensus=pl.lit("Null")), neurons, weights, bonds)
    assert inputs["epochs"].height == 0


@pytest.mark.parametrize(("split", "expected"), [
    (None, [333_333_334, 333_333_333, 333_333_333]),            # no split: ⌊E/3⌋ each, remainder on 0
    # ⌊10^9·49151/65535⌋ = 749996185, ⌊10^9·16384/65535⌋ = 250003814: one rao left, to mechanism 0
    ([49151, 16384, 0], [749_996_186, 250_003_814, 0]),
    ([65535], [333_333_334, 333_333_333, 333_333_333]),        # a split of the wrong length: even
])
def test_the_epoch_emission_is_split_over_mechanisms_as_split_emissions_does(split, expected):
    """subnets/mechanism.rs `split_emissions` with E = 10^9 rao over three mechanisms."""
    from tasks.consensus.inputs import epoch_inputs_from_snapshots

    subnets, neurons, weights, bonds = _snapshot_frames(1000, "Auto", False, [None] * 5)
    subnets = subnets.with_columns(mechanism_count=pl.lit(3, pl.UInt8), pending_emission=pl.lit(10**9, pl.UInt64),
                                   mechanism_emission_split=pl.lit(split, pl.List(pl.UInt16)))
    epochs = epoch_inputs_from_snapshots(subnets, neurons, weights, bonds)["epochs"].sort("mechid")
    assert epochs["emission"].to_list() == expected
    assert sum(expected) == 10**9
