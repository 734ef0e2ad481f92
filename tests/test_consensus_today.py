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
from consensus_cases import EpochCase, Neuron, frames_for, run_engine, run

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
    """The engine's own path: epoch columns -> batch index -> neuron frame -> `liquid_alpha_consensus`."""
    n = len(consensus_bits)
    case = EpochCase(block=100, neurons=[Neuron(alpha_stake=1) for _ in range(n)],
                     params={"liquid_alpha_consensus_mode": mode, "bonds_penalty": bonds_penalty,
                             "yuma3_enabled": True, "liquid_alpha_enabled": True})
    for uid, value in enumerate(stored[:n]):
        case.neurons[uid].previous_consensus = value
    batch = index_batch(*frames_for([case]))
    nr = engine.neuron_frame(batch.neurons, engine.epoch_parameters(batch.epochs)).collect()
    columns = {name: nr.get_column(name).to_numpy() for name in ("liquid_consensus_source", "previous_consensus_bits")}
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
