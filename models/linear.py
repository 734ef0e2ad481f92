"""Linear: one affine map from the scaled context to the scaled horizon (DLinear without the split)."""

from __future__ import annotations

from torch import nn

from models.base import WindowForecaster


class LinearForecaster(WindowForecaster):
    def __init__(self, context_len: int, horizon: int, lr: float = 1e-2):
        super().__init__(nn.Linear(context_len, horizon), context_len, horizon, lr)
        self.save_hyperparameters()
