"""Benchmark: training throughput with Lightning vs a plain PyTorch loop, and MLflow's cost per epoch.

1. Throughput (training windows per second) of the same model on the same batches: the plain loop
   (`zero_grad / scaled_mae / backward / step` over the data module's loader) vs `Trainer.fit` with
   validation, checkpoints, logger, progress bar and summary off — same seed, same shuffled batches,
   same Adam, same number of steps. Overhead % = (plain − Lightning) / plain throughput. Each side is
   timed `--repeats` times, alternating, whole `fit()` (Trainer set-up included), on the wall clock and
   on this process's CPU clock (less disturbed by other work on a shared machine); the best and the
   median of each are printed. Several `--model`s are measured in turn.
2. MLflow per epoch: `Trainer.fit` with the per-epoch MLflow metrics callback writing to a real sqlite
   store vs the same callback not logging; plus the direct cost of one epoch's `log_batch`.
3. MLflow once per run: `train()` end to end with MLflow (run, params, model save + upload, checkpoint,
   registration, alias) vs `log_to_mlflow=False`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py --model mlp --epochs 2 --repeats 3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py --model conv mlp linear --throughput-only

Figures are wall-clock on a shared machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
import torch  # noqa: E402

import models  # noqa: E402
from models.data import WindowDataModule  # noqa: E402
from tasks.evaluation.series import generate_series  # noqa: E402
from tasks.training.train import TrainConfig, _epoch_metrics_callback, _experiment_id, _quiet_and_fixed_threads, train  # noqa: E402


def plain_loop(model_name: str, data: WindowDataModule, epochs: int, seed: int) -> tuple[float, float]:
    """(wall seconds, last loss) of the plain PyTorch loop."""
    L.seed_everything(seed, verbose=False)
    torch.use_deterministic_algorithms(True)  # as Trainer(deterministic=True) does
    module = models.build(model_name, *data.shape)
    optimizer = module.configure_optimizers()
    loader = data.train_dataloader()
    start = time.perf_counter()
    module.train()
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            loss = module.scaled_mae(batch)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start, float(loss)


def lightning_fit(model_name: str, data: WindowDataModule, epochs: int, seed: int, callbacks=(),
                  validate: bool = False) -> tuple[float, L.LightningModule]:
    L.seed_everything(seed, verbose=False)
    module = models.build(model_name, *data.shape)
    trainer = L.Trainer(accelerator="cpu", devices=1, deterministic=True, max_epochs=epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=1.0 if validate else 0, callbacks=list(callbacks))
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return time.perf_counter() - start, module


def _timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of `run()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(model_name: str, data: WindowDataModule, n_train: int, epochs: int, repeats: int, seed: int) -> None:
    """Section 1 for one model: the plain loop and `Trainer.fit` alternately, `repeats` times each."""
    plain, lightning = [], []  # (wall, cpu) per repeat
    for _ in range(repeats):
        plain.append(_timed(lambda: plain_loop(model_name, data, epochs, seed)))
        lightning.append(_timed(lambda: lightning_fit(model_name, data, epochs, seed)))
    print(f"\n1. training throughput, {model_name} ({repeats} repeats, alternating; windows/s = "
          f"{n_train * epochs} windows / seconds; load average {os.getloadavg()[0]:.2f})")
    for clock, index in (("wall", 0), ("cpu", 1)):
        for stat, pick in (("best", min), ("median", statistics.median)):
            plain_s, lightning_s = pick(t[index] for t in plain), pick(t[index] for t in lightning)
            plain_rate, lightning_rate = n_train * epochs / plain_s, n_train * epochs / lightning_s
            print(f"   {clock:4} {stat:6}: plain {plain_rate:8.0f} windows/s ({plain_s:.3f} s), Lightning "
                  f"{lightning_rate:8.0f} windows/s ({lightning_s:.3f} s), overhead "
                  f"{100 * (plain_rate - lightning_rate) / plain_rate:5.1f} % (target < 15 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["conv"], choices=list(models.MODELS),
                        help="section 1 measures each; sections 2 and 3 use the first")
    parser.add_argument("--series", type=int, default=32)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--context-len", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-only", action="store_true", help="section 1 only")
    args = parser.parse_args()
    seed = 0
    series = generate_series(args.series, args.length, seed)
    data = WindowDataModule(series, args.context_len, args.horizon, batch_size=args.batch_size, seed=seed)
    data.shape = (args.context_len, args.horizon)
    n_train = len(data.windows.train_context)
    steps = -(-n_train // args.batch_size) * args.epochs
    print(f"models {', '.join(args.model)}, {n_train} training windows ({args.series} series x {args.length} steps, "
          f"context {args.context_len}, horizon {args.horizon}), batch {args.batch_size}, {args.epochs} epochs = "
          f"{steps} steps, torch threads 1, load average {os.getloadavg()[0]:.2f}")

    with _quiet_and_fixed_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_name in args.model:
            throughput(model_name, data, n_train, args.epochs, args.repeats, seed)
        if args.throughput_only:
            return
        args.model = args.model[0]

        # 2. MLflow per epoch
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        with tempfile.TemporaryDirectory(prefix="yumaflow-bench-") as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            experiment_id = _experiment_id(client, "bench", uri)
            with_mlflow, without = [], []
            for _ in range(args.repeats):
                run_id = client.create_run(experiment_id).info.run_id
                seconds, _ = lightning_fit(args.model, data, args.epochs, seed, validate=True,
                                           callbacks=[_epoch_metrics_callback(client, run_id, [])])
                with_mlflow.append(seconds)
                seconds, _ = lightning_fit(args.model, data, args.epochs, seed, validate=True,
                                           callbacks=[_epoch_metrics_callback(None, "", [])])
                without.append(seconds)
            run_id = client.create_run(experiment_id).info.run_id
            batches = 20
            start = time.perf_counter()
            for epoch in range(batches):
                client.log_batch(run_id, metrics=[Metric(name, 1.0, 0, epoch) for name in ("train_loss", "val_loss")])
            per_log = (time.perf_counter() - start) / batches
        print(f"\n2. MLflow per epoch (fit with validation, best of {args.repeats})")
        print(f"   fit without MLflow : {min(without) / args.epochs * 1000:8.1f} ms/epoch")
        print(f"   fit with MLflow    : {min(with_mlflow) / args.epochs * 1000:8.1f} ms/epoch")
        print(f"   difference         : {(min(with_mlflow) - min(without)) / args.epochs * 1000:8.1f} ms/epoch "
              f"({100 * (min(with_mlflow) - min(without)) / min(without):.1f} %)")
        print(f"   one epoch's log_batch (train_loss + val_loss) to sqlite: {per_log * 1000:.1f} ms")

        # 3. MLflow once per run
        config = dict(model=args.model, n_series=args.series, series_length=args.length,
                      context_len=args.context_len, horizon=args.horizon, batch_size=args.batch_size,
                      max_epochs=args.epochs, progress_bar=False)
        with tempfile.TemporaryDirectory(prefix="yumaflow-bench-") as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            train(TrainConfig(**config, tracking_uri=uri, registered_name="warm-up"))  # creates the DB tables
            start = time.perf_counter()
            train(TrainConfig(**config, tracking_uri=uri, registered_name="bench"))
            tracked = time.perf_counter() - start
        start = time.perf_counter()
        train(TrainConfig(**config, log_to_mlflow=False))
        untracked = time.perf_counter() - start
        print("\n3. train() end to end (existing store)")
        print(f"   log_to_mlflow=False : {untracked:6.2f} s")
        print(f"   with MLflow         : {tracked:6.2f} s  (+{tracked - untracked:.2f} s per run: run, params, "
              "model save + upload, checkpoint, registration, alias)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
