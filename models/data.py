"""Training windows (DESIGN.md §7): (context, horizon) pairs cut from a SERIES frame, split by time.

Each series is cut at its own time cutoff, the step at (1 − val_fraction) of its length. A training
window ends before the cutoff; a validation window's horizon starts at or after it (its context may
reach back before the cutoff: the past is known when forecasting). No validation truth is ever seen
in training; batches are shuffled within the training windows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import polars as pl
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader, TensorDataset


@dataclass(frozen=True)
class Windows:
    """train/val contexts [N, context_len] and truths [N, horizon], float32."""

    train_context: np.ndarray
    train_truth: np.ndarray
    val_context: np.ndarray
    val_truth: np.ndarray


def cut_windows(series: pl.DataFrame, context_len: int, horizon: int, val_fraction: float = 0.2,
                stride: int = 1) -> Windows:
    """Windows of every series of the SERIES frame (one row per (series_id, t), sorted by t within a
    series), every `stride` steps. Raises ValueError when either split would be empty."""
    if context_len < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"context_len ({context_len}), horizon ({horizon}) and stride ({stride}) must be >= 1")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    window = context_len + horizon
    per_series = series.sort("series_id", "t").group_by("series_id", maintain_order=True).agg("value")
    train, val = [], []
    for values in per_series["value"].to_list():  # one iteration per series, windows cut columnar
        values = np.asarray(values, dtype=np.float32)
        if values.size < window:
            continue
        cutoff = values.size - int(round(values.size * val_fraction))
        all_windows = sliding_window_view(values, window)  # row s = steps s .. s+window-1
        starts = np.arange(all_windows.shape[0])
        train.append(all_windows[(starts + window <= cutoff) & (starts % stride == 0)])
        val.append(all_windows[(starts + context_len >= cutoff) & (starts % stride == 0)])
    train_w = np.concatenate(train) if train else np.empty((0, window), np.float32)
    val_w = np.concatenate(val) if val else np.empty((0, window), np.float32)
    if len(train_w) == 0 or len(val_w) == 0:
        longest = series.group_by("series_id").len()["len"].max() if series.height else 0
        raise ValueError(f"no {'training' if len(train_w) == 0 else 'validation'} windows: context_len + horizon "
                         f"= {window} steps with val_fraction {val_fraction} needs longer series "
                         f"(longest has {longest} steps)")
    return Windows(np.ascontiguousarray(train_w[:, :context_len]), np.ascontiguousarray(train_w[:, context_len:]),
                   np.ascontiguousarray(val_w[:, :context_len]), np.ascontiguousarray(val_w[:, context_len:]))


class WindowDataModule(L.LightningDataModule):
    """Loaders over `cut_windows`; training batches shuffled by a generator seeded with `seed`,
    num_workers=0 (no forked workers inside a Prefect task)."""

    def __init__(self, series: pl.DataFrame, context_len: int, horizon: int, *, val_fraction: float = 0.2,
                 stride: int = 1, batch_size: int = 256, seed: int = 0):
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.windows = cut_windows(series, context_len, horizon, val_fraction, stride)

    def train_dataloader(self) -> DataLoader:
        w = self.windows
        return DataLoader(TensorDataset(torch.from_numpy(w.train_context), torch.from_numpy(w.train_truth)),
                          batch_size=self.batch_size, shuffle=True, num_workers=0,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader:
        w = self.windows
        return DataLoader(TensorDataset(torch.from_numpy(w.val_context), torch.from_numpy(w.val_truth)),
                          batch_size=self.batch_size, shuffle=False, num_workers=0)
