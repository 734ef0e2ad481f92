"""What every forecaster shares (DESIGN.md §7): per-window scaling and the Lightning training step.

A window's context is normalised by its own mean and standard deviation before the network sees it,
and the forecast is mapped back with the same numbers, so series whose magnitudes differ by orders of
magnitude (the generator's scales span 0.1–100) train together. The loss is the MAE of the scaled
forecast against the scaled truth: close to the validator's scale-free error (tasks/evaluation/scoring.py).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn


class ScaledForecaster(nn.Module):
    """(batch, context_len) raw values → (batch, horizon) raw values around a network on scaled windows.

    Plain `nn.Module` (no Lightning) so that it is what MLflow saves and the miner loads."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @staticmethod
    def normalise(context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loc = context.mean(dim=1, keepdim=True)
        scale = context.std(dim=1, keepdim=True, correction=0)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant context: shift only
        return (context - loc) / scale, loc, scale

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        scaled, loc, scale = self.normalise(context)
        return self.net(scaled) * scale + loc


class WindowForecaster(L.LightningModule):
    """The Lightning module of a forecaster: holds `self.forecaster` and the scaled-MAE loss.

    Subclasses build the network; batches are (context [B, context_len], truth [B, horizon])."""

    def __init__(self, net: nn.Module, context_len: int, horizon: int, lr: float):
        super().__init__()
        if context_len < 1 or horizon < 1:
            raise ValueError(f"context_len ({context_len}) and horizon ({horizon}) must be >= 1")
        self.context_len, self.horizon, self.lr = context_len, horizon, lr
        self.forecaster = ScaledForecaster(net)
        self._sums: dict[str, tuple[float, int]] = {}
        # Manual optimisation: training_step runs the plain zero_grad / backward / step. Lightning's automatic
        # optimisation wraps each step in a closure and several more hook calls, ~0.15 ms a step: a tenth of
        # a small model's step on CPU (benchmarks/training.py). The parameter updates are identical.
        self.automatic_optimization = False

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets `_current_fx_name` around every hook call, ~20 times a training step; nn.Module's
        # __setattr__ first checks whether the value is a parameter, submodule or buffer. It is a plain string.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.forecaster(context)

    def scaled_mae(self, batch) -> torch.Tensor:
        context, truth = batch
        scaled, loc, scale = self.forecaster.normalise(context)
        return (self.forecaster.net(scaled) - (truth - loc) / scale).abs().mean()

    # Epoch means are accumulated here and logged once per epoch: a `self.log` per step costs Lightning
    # about a millisecond of bookkeeping, a sizeable share of a small model's step on CPU. A Python float
    # (CPU only, so `item()` does not wait on a device) is cheaper than two tensor ops a step.
    def _accumulate(self, split: str, loss: torch.Tensor, batch_size: int) -> None:
        total, count = self._sums.get(split, (0.0, 0))
        self._sums[split] = (total + loss.item() * batch_size, count + batch_size)

    def epoch_loss(self, split: str) -> float | None:
        """Mean loss per window over the current (or last) epoch's `split` ("train" or "val")."""
        total, count = self._sums.get(split, (0.0, 0))
        return total / count if count else None

    def on_train_epoch_start(self):
        self._sums.pop("train", None)

    def on_validation_epoch_start(self):
        self._sums.pop("val", None)

    def training_step(self, batch, batch_idx):
        # the LightningOptimizer (not the bare Adam) so that Lightning counts the step: global_step drives
        # ModelCheckpoint's saves. `loss.backward()` rather than `manual_backward`: training is CPU, 32-bit,
        # one device (DESIGN.md §7), where manual_backward adds only the (unused) backward hooks.
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = self.scaled_mae(batch)
        loss.backward()
        optimizer.step()
        self._accumulate("train", loss, batch[0].shape[0])  # nothing reads a returned loss: none is returned

    def validation_step(self, batch, batch_idx):
        self._accumulate("val", self.scaled_mae(batch), batch[0].shape[0])

    def on_validation_epoch_end(self):  # before EarlyStopping and ModelCheckpoint read val_loss
        if self.epoch_loss("val") is not None:
            self.log("val_loss", self.epoch_loss("val"))

    def on_train_epoch_end(self):
        if self.epoch_loss("train") is not None:
            self.log("train_loss", self.epoch_loss("train"))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())
