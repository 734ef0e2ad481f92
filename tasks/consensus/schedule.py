"""When a subnet's epoch runs: the stateful epoch schedule of the current chain.

As `drain_pending_subnet_emissions` / `should_run_epoch_given_tempo` do it (RaoFoundation/subtensor
coinbase/run_coinbase/drain_pending_emissions.rs @ 0bb2cb30), once per block over the subnets in order:
1. BlocksSinceLastStep += 1, capped at tempo + 1;
2. the epoch is due iff tempo > 0 and (PendingEpochAt > 0 and block ≥ PendingEpochAt, or
   BlocksSinceLastStep > tempo, or block − LastEpochBlock ≥ tempo);
3. at most MaxEpochsPerBlock due epochs run in a block: a due subnet past the cap is deferred
   (PendingEpochAt := block + 1) and its schedule does not advance;
4. a due subnet that runs (its epoch inputs consistent: no duplicate hotkey) gets BlocksSinceLastStep := 0
   and is paid; one that is not consistent is skipped, its pending emission kept;
5. for both, the slot is consumed: LastEpochBlock := block, PendingEpochAt := 0, SubnetEpochIndex += 1.

(yuma_spec.md §8, at spec 425, had the safety net at BlocksSinceLastStep > 50400; the current code has it
at > tempo, with the counter capped at tempo + 1.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class EpochSchedule:
    """A subnet's schedule items (storage of the same names)."""

    tempo: int
    last_epoch_block: int
    pending_epoch_at: int = 0
    blocks_since_last_step: int = 0
    subnet_epoch_index: int = 0


def is_due(schedule: EpochSchedule, block: int) -> bool:
    """`should_run_epoch_given_tempo` (with BlocksSinceLastStep already counted for this block)."""
    if schedule.tempo == 0:
        return False
    if schedule.pending_epoch_at > 0 and block >= schedule.pending_epoch_at:
        return True
    if schedule.blocks_since_last_step > schedule.tempo:
        return True
    return block - schedule.last_epoch_block >= schedule.tempo


@dataclass(frozen=True)
class BlockEpochs:
    """What block `block` does to the schedules: the subnets whose epoch runs (in order), those skipped
    (due, inputs inconsistent), those deferred to the next block, and every subnet's new schedule."""

    run: list[int]
    skipped: list[int]
    deferred: list[int]
    schedules: dict[int, EpochSchedule]


def epochs_of_block(schedules: Iterable[tuple[int, EpochSchedule]], block: int, max_epochs_per_block: int,
                    consistent: Callable[[int], bool] = lambda netuid: True) -> BlockEpochs:
    """One block of the schedule over `schedules` ((netuid, schedule) in the chain's subnet order)."""
    run, skipped, deferred, after = [], [], [], {}
    for netuid, s in schedules:
        s = replace(s, blocks_since_last_step=min(s.blocks_since_last_step + 1, s.tempo + 1))
        if not is_due(s, block):
            after[netuid] = s
            continue
        if len(run) >= max_epochs_per_block:
            deferred.append(netuid)
            after[netuid] = replace(s, pending_epoch_at=block + 1)
            continue
        if consistent(netuid):
            run.append(netuid)
            s = replace(s, blocks_since_last_step=0)
        else:
            skipped.append(netuid)
        after[netuid] = replace(s, last_epoch_block=block, pending_epoch_at=0,
                                subnet_epoch_index=s.subnet_epoch_index + 1)
    return BlockEpochs(run, skipped, deferred, after)
