"""Liquid alpha's choice of consensus (subtensor `run_epoch/bonds_ema_liquid_alpha.rs` and, for the mode,
`compute_consensus_for_liquid_alpha`): which consensus vector the per-edge sigmoid of §3 reads."""

from __future__ import annotations

import numpy as np

from tasks.consensus.epoch_loaders import ChunkNeurons

# `liquid_consensus_source`: the consensus vector liquid alpha reads for a neuron's epoch.
LIQUID_CURRENT, LIQUID_PREVIOUS, LIQUID_MAX = 0, 1, 2


def liquid_alpha_consensus(consensus_bits: np.ndarray, nr: ChunkNeurons) -> np.ndarray:
    """The consensus vector liquid alpha's sigmoid reads (`compute_consensus_for_liquid_alpha`): C itself,
    the stored previous consensus P (u16 ⊘ 65535, 0 past its end), or max(C, P), per the epoch's mode.
    Only the sigmoid reads it: the liquid-alpha gate, clipping, trust, W^B and dividends keep C."""
    source = nr["liquid_consensus_source"]
    if not source.any():
        return consensus_bits
    previous = nr["previous_consensus_bits"]
    return np.where(source == LIQUID_PREVIOUS, previous,
                    np.where(source == LIQUID_MAX, np.maximum(consensus_bits, previous), consensus_bits))
