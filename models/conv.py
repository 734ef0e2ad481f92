"""1D CNN: two same-length convolutions over the scaled context, then a linear head to the horizon."""

from __future__ import annotations

import torch
from torch import nn

from models.base import WindowForecaster


class ConvNet(nn.Module):
    def __init__(self, context_len: int, horizon: int, channels: int, kernel: int):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"conv kernel must be an odd number >= 1 (same-length padding), got {kernel}")
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, kernel, padding=kernel // 2), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2), nn.ReLU())
        self.head = nn.Linear(channels * context_len, horizon)
        self.skip = nn.Linear(context_len, horizon)  # the linear model as a floor the convolutions refine

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        features = self.features(context.unsqueeze(1)).flatten(1)
        return self.head(features) + self.skip(context)


class ConvForecaster(WindowForecaster):
    def __init__(self, context_len: int, horizon: int, channels: int = 16, kernel: int = 5, lr: float = 1e-3):
        super().__init__(ConvNet(context_len, horizon, channels, kernel), context_len, horizon, lr)
        self.save_hyperparameters()
