"""Scores → on-chain u16 weights, their projected effect, and the push (chain_interface.md §6).

- `scores_to_weights`: the SDK's float → u16 pipeline; `chain_stored_row`: the chain's re-upscale.
- `project_epoch`: our validator trust, dividends and emission in the next epoch with the new row.
- `push_weights`: checks (stale snapshot, rate limit, version key), dry run or a signed send; one
  `weight_submissions` row per attempt.
"""

from tasks.weights.convert import WeightRow, WeightsRefused, chain_stored_row, scores_to_weights
from tasks.weights.projection import project_epoch
from tasks.weights.push import push_weights

__all__ = ["WeightRow", "WeightsRefused", "chain_stored_row", "project_epoch", "push_weights", "scores_to_weights"]
