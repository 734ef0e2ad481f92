"""Miner models (DESIGN.md §7): Lightning modules, one file per family, built by name.

Every model maps a (batch, context_len) window of raw values to a (batch, horizon) forecast; see
models/base.py for the per-window scaling they share. torch and Lightning are imported only when a
model is built, so importing this package (e.g. for `yumaflow --help`) stays instant.
"""

from __future__ import annotations

import importlib
import inspect

# name → (module, class)
MODELS = {
    "seasonal_naive": ("models.seasonal_naive", "SeasonalNaiveForecaster"),
    "linear": ("models.linear", "LinearForecaster"),
    "mlp": ("models.mlp", "MLPForecaster"),
    "conv": ("models.conv", "ConvForecaster"),
}


def model_class(name: str):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    module, cls = MODELS[name]
    return getattr(importlib.import_module(module), cls)


def build(name: str, context_len: int, horizon: int, **hparams):
    """The LightningModule `name` for windows of `context_len` → `horizon` steps, with `hparams`
    (each family's keyword arguments, e.g. hidden=64 for mlp). Unknown names or hparams raise ValueError."""
    cls = model_class(name)
    if context_len < 1 or horizon < 1:
        raise ValueError(f"model {name!r}: context_len ({context_len}) and horizon ({horizon}) must be >= 1")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "context_len", "horizon")]
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} has no hyperparameter(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(accepted) or 'none'}")
    return cls(context_len=context_len, horizon=horizon, **hparams)
