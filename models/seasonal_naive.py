"""Seasonal naive: repeat the last season of the context (the baseline every model must beat)."""

from __future__ import annotations

import torch
from torch import nn

from models.base import WindowForecaster


class SeasonalRepeat(nn.Module):
    """Value at t+h is the context's value at t+h−k·period for the smallest k >= 1 (last value when the
    context is shorter than a period), as neurons.forecasters.SeasonalNaive."""

    def __init__(self, context_len: int, horizon: int, period: int):
        super().__init__()
        if period < 1:
            raise ValueError(f"seasonal_naive period must be >= 1, got {period}")
        steps = torch.arange(horizon)
        index = (context_len - period + steps % period if context_len >= period
                 else torch.full((horizon,), context_len - 1))
        self.register_buffer("index", index)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return context[:, self.index]


class SeasonalNaiveForecaster(WindowForecaster):
    """No weights: `train` validates it and logs it without fitting."""

    def __init__(self, context_len: int, horizon: int, period: int = 24, lr: float = 0.0):
        super().__init__(SeasonalRepeat(context_len, horizon, period), context_len, horizon, lr)
        self.save_hyperparameters()
