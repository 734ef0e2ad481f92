"""When an epoch runs (tasks/consensus/schedule.py, the current chain's drain_pending_subnet_emissions): hand-worked
blocks, and the simulated subnet following the same schedule, per-block cap included."""

from __future__ import annotations

import polars as pl

from tasks.consensus.schedule import EpochSchedule, epochs_of_block, is_due
from tasks.simnet.chain import SimChain


def test_due_by_tempo_by_owner_trigger_and_by_the_safety_net():
    s = EpochSchedule(tempo=10, last_epoch_block=100, blocks_since_last_step=5)
    assert not is_due(s, 109) and is_due(s, 110)
    assert is_due(EpochSchedule(tempo=10, last_epoch_block=100, pending_epoch_at=104), 104)
    assert not is_due(EpochSchedule(tempo=10, last_epoch_block=100, pending_epoch_at=104), 103)
    assert is_due(EpochSchedule(tempo=10, last_epoch_block=200, blocks_since_last_step=11), 150)  # > tempo
    assert not is_due(EpochSchedule(tempo=0, last_epoch_block=0, pending_epoch_at=1), 5)


def test_one_block_runs_at_most_the_cap_and_defers_the_rest_one_block():
    """Three subnets due at block 110, cap 2: netuids 1 and 2 run (their counters reset, index + 1), 3 is
    deferred (PendingEpochAt 111, schedule unchanged) and runs at 111; a subnet whose inputs are inconsistent
    is skipped: its slot is consumed, its counter keeps counting."""
    due = EpochSchedule(tempo=10, last_epoch_block=100, blocks_since_last_step=9, subnet_epoch_index=4)
    first = epochs_of_block([(1, due), (2, due), (3, due)], 110, 2)
    assert (first.run, first.deferred, first.skipped) == ([1, 2], [3], [])
    assert first.schedules[1] == EpochSchedule(tempo=10, last_epoch_block=110, blocks_since_last_step=0,
                                               subnet_epoch_index=5)
    assert first.schedules[3] == EpochSchedule(tempo=10, last_epoch_block=100, pending_epoch_at=111,
                                               blocks_since_last_step=10, subnet_epoch_index=4)
    second = epochs_of_block(sorted(first.schedules.items()), 111, 2)
    assert (second.run, second.deferred) == ([3], [])
    assert second.schedules[3].pending_epoch_at == 0 and second.schedules[3].subnet_epoch_index == 5
    skipped = epochs_of_block([(1, due)], 110, 2, consistent=lambda netuid: False)
    assert skipped.skipped == [1] and skipped.schedules[1] == EpochSchedule(
        tempo=10, last_epoch_block=110, blocks_since_last_step=10, subnet_epoch_index=5)
    # a subnet deferred again and again (cap 0): its counter stops at tempo + 1
    held = EpochSchedule(tempo=10, last_epoch_block=100, blocks_since_last_step=10)
    for block in (111, 112):
        held = epochs_of_block([(1, held)], block, 0).schedules[1]
        assert held.blocks_since_last_step == 11 and held.pending_epoch_at == block + 1


def test_the_sim_defers_the_third_due_epoch_of_a_block():
    """Subnets 2, 3 and 4 created in one block share their schedule: at the due block two epochs run and the
    third subnet's runs one block later, with PendingEpochAt showing the deferral in between."""
    sim = SimChain(5)
    with sim.block():
        for netuid in (2, 3, 4):
            sim.create_subnet(netuid, tempo=10)
    created = sim.head_block()
    sim.advance(10)
    due = created + 10
    subnets = {n: sim.snapshot(n, due, ("subnets",)).subnets.row(0, named=True) for n in (2, 3, 4)}
    assert [subnets[n]["last_epoch_block"] for n in (2, 3, 4)] == [due, due, created]
    assert subnets[4]["pending_epoch_at"] == due + 1 and subnets[4]["max_epochs_per_block"] == 2
    sim.advance(1)
    after = sim.snapshot(4, due + 1, ("subnets",)).subnets
    assert after["last_epoch_block"][0] == due + 1 and after["pending_epoch_at"][0] == 0
    assert after["subnet_epoch_index"][0] == subnets[2]["subnet_epoch_index"]
    assert pl.Series([subnets[n]["blocks_since_last_step"] for n in (2, 3)]).to_list() == [0, 0]
