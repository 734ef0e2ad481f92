"""Yuma Consensus and the emission split as exact columnar transforms (DESIGN.md §5, yuma_spec.md §2–§5).

- `run_epochs` / `run_consensus_files`: the epoch (§2–§3), many epochs per batch.
- `alpha_block_split`, `epoch_pending_emission`: the per-block alpha split of a subnet's block history
  and the emission each epoch runs on (§5.1–§5.2).
- `split_mechanism_emission`, `aggregate_mechanisms`: mechanisms (sub-subnets), §5.3.
"""

from tasks.consensus.emission_split import (
    aggregate_mechanisms,
    alpha_block_split,
    epoch_pending_emission,
    split_mechanism_emission,
)
from tasks.consensus.epoch import EpochOutputs, run_epochs
from tasks.consensus.files import run_consensus_files
from tasks.consensus.median import weighted_median_columns
from tasks.consensus.validate import ConsensusInputError, validate_inputs

__all__ = ["ConsensusInputError", "EpochOutputs", "aggregate_mechanisms", "alpha_block_split",
           "epoch_pending_emission", "run_consensus_files", "run_epochs", "split_mechanism_emission",
           "validate_inputs", "weighted_median_columns"]
