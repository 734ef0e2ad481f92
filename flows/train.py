"""Flow `train` (DESIGN.md §8): train a miner model, track it in MLflow, register it as `challenger`.

Thin: all the work is tasks/training/train.py. The CLI wires `yumaflow train` to `train_flow`.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow


@flow(name="train", log_prints=True)
def train_flow(model: str = "linear", series_path: str | None = None, seed: int = 0, context_len: int = 96,
               horizon: int = 24, max_epochs: int = 10, tracking_uri: str | None = None,
               registered_name: str = "forecaster", n_series: int = 32, series_length: int = 2048,
               batch_size: int = 256, patience: int = 3, val_fraction: float = 0.2,
               hparams: dict[str, Any] | None = None, progress_bar: bool | None = None) -> dict:
    """Train `model` and register it; returns run_id, registered_name, version, model, val_loss,
    baseline_val_loss (seasonal naive), epochs, history. tracking_uri None → the yumaflow setting."""
    # no library may phone home (stack.md §6, §8); set before mlflow is imported
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    from tasks.training.train import TrainConfig, train

    if tracking_uri is None:
        from neurons.forecasters import resolve_tracking_uri

        tracking_uri = resolve_tracking_uri()
    result = train(TrainConfig(model=model, hparams=dict(hparams or {}), series_path=series_path, seed=seed,
                               context_len=context_len, horizon=horizon, max_epochs=max_epochs,
                               tracking_uri=tracking_uri, registered_name=registered_name, n_series=n_series,
                               series_length=series_length, batch_size=batch_size, patience=patience,
                               val_fraction=val_fraction, progress_bar=progress_bar))
    print(f"{model}: val_loss {result.val_loss:.4f} (seasonal naive {result.baseline_val_loss:.4f}) after "
          f"{result.epochs} epoch(s); registered {result.registered_name} version {result.version} as challenger "
          f"(run {result.run_id})")
    out = result.as_dict()
    out.pop("checkpoint_path")
    return out
