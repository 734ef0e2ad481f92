"""Which weight commits still mask an epoch's weights: the c_i of the commit-reveal mask (yuma_spec.md §2.5.5).

As `epoch_mechanism` builds `commit_blocks` (RaoFoundation/subtensor run_epoch/epoch_mechanism.rs): for each
validator, the earliest block among its unexpired commits, where
- the hash-commit queue (`WeightCommits`, v2) contributes only its first unexpired entry, in queue order;
- every unexpired epoch of `TimelockedWeightCommits` (v4) contributes all its entries;
- a commit is expired iff current_epoch > commit_epoch + RevealPeriodEpochs (`is_commit_expired`).
The epoch at block b runs with current_epoch = SubnetEpochIndex + 1 (the due slot is counted), so a
snapshot after block b − 1 passes its own SubnetEpochIndex + 1.

Both the chain reader and the simulated subnet derive `neurons.commit_block` here, so a replay and the
simulation mask alike.
"""

from __future__ import annotations

from collections.abc import Iterable


def is_commit_expired(commit_epoch: int, current_epoch: int, reveal_period_epochs: int) -> bool:
    return current_epoch > commit_epoch + reveal_period_epochs


def earliest_unexpired_commit_blocks(hash_queues: dict[str, list[tuple[int, int]]],
                                     timelocked: Iterable[tuple[int, str, int]], current_epoch: int,
                                     reveal_period_epochs: int) -> dict[str, int]:
    """hotkey -> c_i. `hash_queues`: hotkey -> [(commit_epoch, commit_block)] in queue order (v2);
    `timelocked`: (commit_epoch, hotkey, commit_block) of every timelocked commit (v4)."""
    earliest: dict[str, int] = {}

    def note(hotkey: str, block: int) -> None:
        earliest[hotkey] = min(block, earliest.get(hotkey, block))

    for hotkey, queue in hash_queues.items():
        for commit_epoch, commit_block in queue:
            if not is_commit_expired(commit_epoch, current_epoch, reveal_period_epochs):
                note(hotkey, commit_block)
                break  # the queue's first unexpired commit is the one that counts
    for commit_epoch, hotkey, commit_block in timelocked:
        if not is_commit_expired(commit_epoch, current_epoch, reveal_period_epochs):
            note(hotkey, commit_block)
    return earliest
