"""The Yuma Consensus epoch as exact columnar transforms (DESIGN.md §5, ../shared/yuma_spec.md §2–§3)."""

from tasks.consensus.epoch import EpochOutputs, run_epochs
from tasks.consensus.files import run_consensus_files
from tasks.consensus.median import weighted_median_columns
from tasks.consensus.validate import ConsensusInputError, validate_inputs

__all__ = ["EpochOutputs", "run_epochs", "ConsensusInputError", "validate_inputs", "run_consensus_files",
           "weighted_median_columns"]
