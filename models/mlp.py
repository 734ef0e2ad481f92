"""MLP: two hidden ReLU layers from the scaled context to the scaled horizon."""

from __future__ import annotations

from torch import nn

from models.base import WindowForecaster


class MLPForecaster(WindowForecaster):
    def __init__(self, context_len: int, horizon: int, hidden: int = 128, lr: float = 1e-3):
        net = nn.Sequential(nn.Linear(context_len, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                            nn.Linear(hidden, horizon))
        super().__init__(net, context_len, horizon, lr)
        self.save_hyperparameters()
