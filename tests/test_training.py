"""Training (tasks/training/train.py, flows/train.py): real Lightning fits of a few small epochs, a real
MLflow store (sqlite + local artifacts) in a temporary directory, the registry and its aliases, and the
logged models loaded the way the miner loads them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import models
from flows.train import train_flow
from neurons.forecasters import SeasonalNaive, load_forecaster
from tasks.evaluation.series import SeriesError, generate_series
from tasks.training.train import TrainConfig, code_version, train

SMALL = dict(n_series=6, series_length=400, context_len=48, horizon=12, max_epochs=2, batch_size=128,
             progress_bar=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def trained(store):
    """Every model family trained once into the store, each registered under its own name."""
    return {name: train(TrainConfig(model=name, tracking_uri=store, registered_name=f"fc-{name}", seed=0, **SMALL))
            for name in models.MODELS}


@pytest.fixture(scope="module")
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.mark.parametrize("name", ["linear", "mlp", "conv"])
def test_trained_models_learn_and_beat_seasonal_naive(trained, name):
    result = trained[name]
    assert result.epochs == 2
    assert [row["epoch"] for row in result.history] == [0, 1]
    assert result.history[1]["val_loss"] < result.history[0]["val_loss"]
    assert result.val_loss == pytest.approx(min(row["val_loss"] for row in result.history), rel=1e-5)
    assert result.val_loss < result.baseline_val_loss


def test_seasonal_naive_is_validated_not_fitted(trained):
    result = trained["seasonal_naive"]
    assert result.epochs == 1 and "train_loss" not in result.history[0]
    assert result.val_loss == pytest.approx(result.baseline_val_loss, rel=1e-6)


def test_same_seed_same_losses():
    config = dict(SMALL, model="conv", max_epochs=1, seed=3, log_to_mlflow=False)
    first, second = train(TrainConfig(**config)), train(TrainConfig(**config))
    assert first.history == second.history
    assert first.val_loss == second.val_loss
    assert first.run_id is None and first.version is None


def test_run_records_params_metrics_fingerprint_and_code_version(trained, client):
    result = trained["mlp"]
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "yumaflow-train"
    params = run.data.params
    assert params["model"] == "mlp" and params["seed"] == "0" and params["max_epochs"] == "2"
    assert params["hparam_hidden"] == "128" and params["hparam_lr"] == "0.001"
    assert params["series_source"] == "generator" and params["series_n"] == "6" and params["series_length"] == "400"
    assert params["window_context_len"] == "48" and params["window_horizon"] == "12"
    assert params["series_rows"] == "2400" and len(params["series_content_sha256"]) == 64
    assert params["train_windows"] == str(result.train_windows)
    assert run.data.tags["yumaflow.code_version"] == code_version()
    assert run.data.tags["yumaflow.data.series_seed"] == "0"
    val_history = client.get_metric_history(result.run_id, "val_loss")
    assert [(m.step, m.value) for m in sorted(val_history, key=lambda m: m.step)] == [
        (row["epoch"], pytest.approx(row["val_loss"])) for row in result.history]
    assert len(client.get_metric_history(result.run_id, "train_loss")) == 2
    assert run.data.metrics["best_val_loss"] == pytest.approx(result.val_loss)
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "model")}
    assert {"model/MLmodel", "model/input_example.json"} <= artifacts
    assert [a.path for a in client.list_artifacts(result.run_id, "checkpoints")] == ["checkpoints/mlp-best.ckpt"]


def test_registered_model_description_says_what_the_models_are(trained, client):
    description = client.get_registered_model("fc-linear").description
    assert "forecast" in description and "DESIGN" not in description and ".md" not in description


def test_registered_version_gets_challenger_and_moves_with_a_new_version(trained, client, store):
    assert str(client.get_model_version_by_alias("fc-linear", "challenger").version) == trained["linear"].version == "1"
    again = train(TrainConfig(model="linear", tracking_uri=store, registered_name="fc-linear", seed=1, **SMALL))
    assert again.version == "2"
    assert str(client.get_model_version_by_alias("fc-linear", "challenger").version) == "2"
    assert client.get_model_version("fc-linear", "2").run_id == again.run_id


@pytest.mark.parametrize("batch", [1, 5])
def test_logged_model_serves_through_the_miner_loader(trained, store, batch):
    forecaster = load_forecaster("mlflow:models:/fc-conv@challenger", tracking_uri=store)
    context = np.random.default_rng(0).normal(size=(batch, 48)) * 30 + 100
    out = forecaster.forecast(context, 12)
    assert out.shape == (batch, 12) and np.isfinite(out).all()
    assert forecaster.version == trained["conv"].version


def test_logged_seasonal_naive_forecasts_like_the_miner_baseline(trained, store):
    forecaster = load_forecaster("mlflow:models:/fc-seasonal_naive@challenger", tracking_uri=store)
    context = np.random.default_rng(1).normal(size=(4, 48)) * 30 + 100
    np.testing.assert_allclose(forecaster.forecast(context, 12), SeasonalNaive(24).forecast(context, 12), rtol=1e-6)


def test_flow_trains_from_a_series_file_and_returns_the_version(tmp_path, store, client):
    path = tmp_path / "series.parquet"
    generate_series(4, 300, seed=5).write_parquet(path)
    out = train_flow.fn(model="linear", series_path=str(path), seed=0, context_len=48, horizon=12, max_epochs=1,
                        tracking_uri=store, registered_name="fc-file", batch_size=128, progress_bar=False)
    assert out["registered_name"] == "fc-file" and out["version"] == "1" and out["epochs"] == 1
    assert client.get_model_version_by_alias("fc-file", "challenger").run_id == out["run_id"]
    params = client.get_run(out["run_id"]).data.params
    assert params["series_source"] == "file" and params["series_path"] == str(path.resolve())
    assert len(params["series_file_sha256"]) == 64


def test_unknown_model_fails_before_training(store):
    with pytest.raises(ValueError, match=r"unknown model 'arima'; known models: seasonal_naive, linear, mlp, conv"):
        train(TrainConfig(model="arima", tracking_uri=store, **SMALL))


def test_series_file_with_nan_is_refused(tmp_path, store):
    path = tmp_path / "nan.parquet"
    generate_series(2, 200, seed=1).with_columns(
        pl.when(pl.col("t") == 17).then(float("nan")).otherwise(pl.col("value")).alias("value")).write_parquet(path)
    with pytest.raises(SeriesError, match=r"NaN or infinite value\(s\), first nan at series_id='series-00000' t=17"):
        train(TrainConfig(model="linear", series_path=str(path), tracking_uri=store, **SMALL))


def test_series_file_with_wrong_columns_is_refused(tmp_path, store):
    path = tmp_path / "cols.parquet"
    generate_series(2, 200, seed=1).rename({"value": "y"}).write_parquet(path)
    with pytest.raises(SeriesError, match=r"missing column\(s\) value"):
        train(TrainConfig(model="linear", series_path=str(path), tracking_uri=store, **SMALL))
