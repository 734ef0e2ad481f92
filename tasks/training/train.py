"""Train a miner model (DESIGN.md §7, §8 flow `train`): Lightning on CPU, tracked and registered in MLflow.

`train(TrainConfig(...))` cuts windows from the series generator or a Parquet file of series, fits the
model deterministically (fixed seed and thread count), stops early on the validation loss, keeps the
best checkpoint, and records in MLflow — through an explicit MlflowClient, never by setting the
process-wide tracking URI (a miner may share the process):
- a run in experiment "yumaflow-train" with the config as params, per-epoch train_loss / val_loss,
  the data's fingerprint and the code version as params and tags;
- the model (its plain-torch ScaledForecaster, pyfunc-loadable, with a tensor signature and a two-row
  input example so the exported graph takes any batch size) and the best Lightning checkpoint;
- a new version of the registered model, with alias `challenger`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "yumaflow-train"
BASELINE_PERIOD_STEPS = 24  # the validator's season length (tasks/evaluation/scoring.py)
_LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "pytorch_lightning.utilities.rank_zero",
                           "lightning.fabric.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


@dataclass
class TrainConfig:
    model: str = "linear"
    hparams: dict[str, Any] = field(default_factory=dict)  # the model family's keyword arguments
    series_path: str | None = None  # a Parquet file of series; None → the seeded generator
    n_series: int = 32  # generator only; the validator's defaults (flows/epoch.py)
    series_length: int = 2048
    seed: int = 0  # the generator's seed and the training seed
    context_len: int = 96
    horizon: int = 24
    val_fraction: float = 0.2
    stride: int = 1
    batch_size: int = 256
    max_epochs: int = 10
    patience: int = 3  # epochs without a better val_loss before stopping
    num_threads: int = 1  # results depend on the thread count (stack.md §7): fixed, part of the run
    tracking_uri: str = "sqlite:///data/mlflow.db"
    experiment: str = EXPERIMENT
    registered_name: str = "forecaster"
    alias: str = "challenger"
    progress_bar: bool | None = None  # None: shown when stderr is a terminal
    checkpoint_dir: str | None = None  # None: a temporary directory (the best checkpoint goes to MLflow)
    log_to_mlflow: bool = True  # False only for benchmarks: no run, no model, no registration


@dataclass
class TrainResult:
    run_id: str | None
    registered_name: str | None
    version: str | None
    model: str
    val_loss: float  # scaled MAE of the kept (best) weights on the validation windows
    baseline_val_loss: float  # the same for seasonal naive (period 24)
    epochs: int
    history: list[dict[str, float]]  # one row per epoch: epoch, train_loss, val_loss
    train_windows: int
    val_windows: int
    checkpoint_path: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- data ----------------------------------------------------------------------------------------


def load_training_series(config: TrainConfig) -> tuple[pl.DataFrame, dict[str, str]]:
    """The series frame and its fingerprint (params describing exactly which data was used)."""
    from tasks.evaluation.series import generate_series, load_series

    if config.series_path:
        series = load_series(config.series_path)  # SeriesError names the file and the problem
        source = {"series_source": "file", "series_path": str(Path(config.series_path).resolve()),
                  "series_file_sha256": hashlib.sha256(Path(config.series_path).read_bytes()).hexdigest()}
    else:
        series = generate_series(config.n_series, config.series_length, config.seed)
        source = {"series_source": "generator", "series_n": str(config.n_series),
                  "series_length": str(config.series_length), "series_seed": str(config.seed)}
    content = hashlib.sha256("\x00".join(series["series_id"].to_list()).encode())
    content.update(series["t"].to_numpy().tobytes())
    content.update(series["value"].to_numpy().tobytes())
    return series, {**source, "series_rows": str(series.height),
                    "series_count": str(series["series_id"].n_unique()),
                    "series_content_sha256": content.hexdigest(),
                    "window_context_len": str(config.context_len), "window_horizon": str(config.horizon),
                    "split": f"per-series time cutoff at {1 - config.val_fraction:g} of its length",
                    "val_fraction": str(config.val_fraction), "window_stride": str(config.stride)}


def code_version() -> str:
    """The repo's git commit (+"-dirty" with uncommitted changes to tracked files), else "unknown"."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit or "unknown"


# -- MLflow --------------------------------------------------------------------------------------


def _experiment_id(client, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        # next to the database file, not ./mlruns under whatever the current directory is (stack.md §6)
        db_path = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
        artifact_location = (db_path.parent / "mlartifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=artifact_location)


def _epoch_metrics_callback(client, run_id: str, history: list[dict[str, float]]):
    import lightning as L

    class MlflowEpochMetrics(L.Callback):
        """train_loss and val_loss of every epoch, logged with step = epoch (and kept in `history`)."""

        def on_train_epoch_end(self, trainer, pl_module):  # after this epoch's validation
            self._record(trainer, pl_module)

        def on_validation_end(self, trainer, pl_module):
            if trainer.state.fn == "validate":  # a validation-only run (a model without weights)
                self._record(trainer, pl_module)

        def _record(self, trainer, pl_module):
            metrics = {f"{split}_loss": pl_module.epoch_loss(split) for split in ("train", "val")
                       if pl_module.epoch_loss(split) is not None}
            history.append({"epoch": trainer.current_epoch, **metrics})
            if client is not None:
                from mlflow.entities import Metric

                now_ms = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric(k, v, now_ms, trainer.current_epoch)
                                                  for k, v in metrics.items()])

    return MlflowEpochMetrics()


def _log_model(client, run_id: str, forecaster, example_context: np.ndarray) -> None:
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    forecaster.eval()
    with torch.no_grad():
        example_forecast = forecaster(torch.from_numpy(example_context)).numpy()
    signature = infer_signature(example_context, example_forecast)
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]
    with tempfile.TemporaryDirectory(prefix="yumaflow-model-") as tmp:
        # save locally then upload through the client: log_model would need the global tracking URI
        mlflow.pytorch.save_model(forecaster, path=f"{tmp}/model", signature=signature,
                                  input_example=example_context, pip_requirements=requirements)
        client.log_artifacts(run_id, f"{tmp}/model", "model")


MODEL_DESCRIPTION = ("yumaflow forecasters: Lightning time-series models that answer a prediction subnet's "
                     "forecasting challenges; one version per training run, aliases champion and challenger")


def _register(client, name: str, run, alias: str, tags: dict[str, str]) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=MODEL_DESCRIPTION)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                          tags=tags)
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


# -- training ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_and_fixed_threads(num_threads: int):
    import torch

    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_INFO_LOGGERS}
    torch.set_num_threads(num_threads)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r".*does not have many workers")
            warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty")
            warnings.filterwarnings("ignore", message=r".*The number of training batches .* is smaller than")
            for name in _LIGHTNING_INFO_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
            yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _scaled_mae(module, context: np.ndarray, truth: np.ndarray) -> float:
    import torch

    module.eval()
    with torch.no_grad():
        return float(module.scaled_mae((torch.from_numpy(context), torch.from_numpy(truth))))


def train(config: TrainConfig) -> TrainResult:
    """Train `config.model` on the configured series; see the module docstring for what is recorded."""
    import models

    models.model_class(config.model)  # an unknown name fails before any data is generated
    series, fingerprint = load_training_series(config)
    # telemetry must be off before mlflow is first imported (stack.md §6: "true", not "1")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from models.data import WindowDataModule

    with _quiet_and_fixed_threads(config.num_threads):
        L.seed_everything(config.seed, workers=True, verbose=False)
        module = models.build(config.model, config.context_len, config.horizon, **config.hparams)
        data = WindowDataModule(series, config.context_len, config.horizon, val_fraction=config.val_fraction,
                                stride=config.stride, batch_size=config.batch_size, seed=config.seed)
        windows = data.windows
        baseline = models.build("seasonal_naive", config.context_len, config.horizon, period=BASELINE_PERIOD_STEPS)
        baseline_val_loss = _scaled_mae(baseline, windows.val_context, windows.val_truth)

        client = run = None
        if config.log_to_mlflow:
            from mlflow import MlflowClient

            if config.tracking_uri.startswith("sqlite:///"):  # sqlite creates the file, not its directory
                Path(config.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
            run = client.create_run(_experiment_id(client, config.experiment, config.tracking_uri),
                                    run_name=f"{config.model}-seed{config.seed}",
                                    tags={"yumaflow.model": config.model, "yumaflow.code_version": code_version(),
                                          **{f"yumaflow.data.{k}": v for k, v in fingerprint.items()}})
        try:
            history: list[dict[str, float]] = []
            checkpoint_dir = tempfile.TemporaryDirectory(prefix="yumaflow-ckpt-") if config.checkpoint_dir is None \
                else contextlib.nullcontext(config.checkpoint_dir)
            with checkpoint_dir as ckpt_dir:
                checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename=f"{config.model}-best", monitor="val_loss",
                                             mode="min", save_top_k=1)
                trainer = L.Trainer(
                    accelerator="cpu", devices=1, deterministic=True, max_epochs=config.max_epochs, logger=False,
                    callbacks=[EarlyStopping("val_loss", patience=config.patience, mode="min"), checkpoint,
                               _epoch_metrics_callback(client, run.info.run_id if run else "", history)],
                    enable_progress_bar=sys.stderr.isatty() if config.progress_bar is None else config.progress_bar,
                    enable_model_summary=False, num_sanity_val_steps=0)
                if module.trainable:
                    trainer.fit(module, datamodule=data)
                    best_path = checkpoint.best_model_path
                    module.load_state_dict(_load_state(best_path))
                else:  # seasonal naive: nothing to fit, one validation pass for the record
                    trainer.validate(module, datamodule=data, verbose=False)
                    best_path = None
                val_loss = _scaled_mae(module, windows.val_context, windows.val_truth)
                result = TrainResult(run_id=None, registered_name=None, version=None, model=config.model,
                                     val_loss=val_loss, baseline_val_loss=baseline_val_loss, epochs=len(history),
                                     history=history, train_windows=len(windows.train_context),
                                     val_windows=len(windows.val_context),
                                     checkpoint_path=best_path if config.checkpoint_dir else None)
                if client is None:
                    return result
                run_id = run.info.run_id
                # not the tracking URI: it may hold credentials
                unlogged = ("hparams", "progress_bar", "tracking_uri")
                params = {k: v for k, v in dataclasses.asdict(config).items() if k not in unlogged}
                params.update({f"hparam_{k}": v for k, v in module.hparams.items()})
                params.update(fingerprint)
                params.update(train_windows=result.train_windows, val_windows=result.val_windows)
                from mlflow.entities import Metric, Param

                client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()], metrics=[
                    Metric("best_val_loss", val_loss, int(time.time() * 1000), 0),
                    Metric("baseline_val_loss", baseline_val_loss, int(time.time() * 1000), 0),
                    Metric("epochs", float(len(history)), int(time.time() * 1000), 0)])
                _log_model(client, run_id, module.forecaster, windows.val_context[:2])
                if best_path:
                    client.log_artifact(run_id, best_path, "checkpoints")
            version = _register(client, config.registered_name, run, config.alias,
                                tags={"model": config.model, "val_loss": f"{val_loss:.6g}"})
        except BaseException:
            if run is not None:
                client.set_terminated(run.info.run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        log.info("trained %s: val_loss %.4f (seasonal naive %.4f) in %d epochs; registered %s version %s (@%s)",
                 config.model, val_loss, baseline_val_loss, len(history), config.registered_name, version,
                 config.alias)
        return dataclasses.replace(result, run_id=run_id, registered_name=config.registered_name, version=version)


def _load_state(checkpoint_path: str) -> dict:
    import torch

    return torch.load(checkpoint_path, map_location="cpu", weights_only=True)["state_dict"]
