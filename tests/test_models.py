"""Miner models (models/): the registry, shapes, per-window scaling, the seasonal-naive baseline, and
the time split of the training windows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

import models
from models.data import WindowDataModule, cut_windows
from neurons.forecasters import SeasonalNaive

CONTEXT_LEN, HORIZON = 48, 12


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_model_maps_context_to_horizon(name):
    torch.manual_seed(0)
    module = models.build(name, CONTEXT_LEN, HORIZON)
    out = module(torch.randn(5, CONTEXT_LEN))
    assert out.shape == (5, HORIZON)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["linear", "mlp", "conv"])
def test_forecasts_follow_the_series_scale(name):
    """Scaling each window by its own mean and std makes f(a·x + b) = a·f(x) + b for a > 0: series of any
    magnitude look alike to the network."""
    torch.manual_seed(1)
    module = models.build(name, CONTEXT_LEN, HORIZON).eval()
    context = torch.randn(4, CONTEXT_LEN, dtype=torch.float64)
    module = module.double()
    with torch.no_grad():
        base = module(context)
        scaled = module(1000.0 * context - 30.0)
    torch.testing.assert_close(scaled, 1000.0 * base - 30.0, rtol=1e-9, atol=1e-7)


def test_constant_context_gives_finite_forecast():
    module = models.build("mlp", CONTEXT_LEN, HORIZON).eval()
    with torch.no_grad():
        out = module(torch.full((2, CONTEXT_LEN), 7.0))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("context_len", "period"), [(48, 24), (48, 7), (10, 24)])
def test_seasonal_naive_module_matches_the_miner_baseline(context_len, period):
    rng = np.random.default_rng(3)
    context = rng.normal(size=(6, context_len)) * 50 + 10
    module = models.build("seasonal_naive", context_len, HORIZON, period=period).double().eval()
    with torch.no_grad():
        ours = module(torch.from_numpy(context)).numpy()
    np.testing.assert_allclose(ours, SeasonalNaive(period).forecast(context, HORIZON), rtol=1e-12, atol=1e-9)


def test_unknown_model_names_the_known_ones():
    known = "seasonal_naive, linear, mlp, conv"
    with pytest.raises(ValueError, match=rf"unknown model 'transformer'; known models: {known}"):
        models.build("transformer", CONTEXT_LEN, HORIZON)


def test_unknown_hyperparameter_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"model 'mlp' has no hyperparameter\(s\) depth; it takes hidden, lr"):
        models.build("mlp", CONTEXT_LEN, HORIZON, depth=3)


def test_bad_window_sizes_are_refused():
    with pytest.raises(ValueError, match="context_len"):
        models.build("linear", 0, HORIZON)
    with pytest.raises(ValueError, match="odd number"):
        models.build("conv", CONTEXT_LEN, HORIZON, kernel=4)


def _ramp_series(lengths: dict[str, int]) -> pl.DataFrame:
    """value == t, so every window shows which steps it covers."""
    return pl.concat([pl.DataFrame({"series_id": [sid] * n, "t": np.arange(n, dtype=np.int64),
                                    "value": np.arange(n, dtype=np.float64)}) for sid, n in lengths.items()])


def test_windows_are_split_by_time_per_series():
    # length 100, val_fraction 0.2 → cutoff at step 80; window = 10 + 5 steps
    w = cut_windows(_ramp_series({"a": 100}), context_len=10, horizon=5, val_fraction=0.2)
    assert w.train_context.shape == (66, 10) and w.train_truth.shape == (66, 5)  # starts 0..65 end by step 79
    assert w.val_context.shape == (16, 10) and w.val_truth.shape == (16, 5)  # starts 70..85: horizon from 80
    assert w.train_truth.max() == 79.0
    assert w.val_truth.min() == 80.0 and w.val_truth.max() == 99.0
    np.testing.assert_array_equal(w.train_context[3], np.arange(3, 13))
    np.testing.assert_array_equal(w.train_truth[3], np.arange(13, 18))


def test_windows_skip_short_series_and_use_stride():
    # "b" (length 12) is shorter than one window; "a" gives starts 0, 3, ..., 63 for training
    w = cut_windows(_ramp_series({"a": 100, "b": 12}), context_len=10, horizon=5, val_fraction=0.2, stride=3)
    assert w.train_context[:, 0].tolist() == list(range(0, 66, 3))
    assert w.val_context[:, 0].tolist() == [72, 75, 78, 81, 84]


def test_too_short_series_give_a_clear_error():
    expected = r"no training windows: context_len \+ horizon = 60 steps .*\(longest has 50 steps\)"
    with pytest.raises(ValueError, match=expected):
        cut_windows(_ramp_series({"a": 50}), context_len=48, horizon=12)


def test_data_module_shuffles_training_only_and_reproducibly():
    series = _ramp_series({"a": 200, "b": 150})
    first = [b[0][:, 0].tolist() for b in WindowDataModule(series, 10, 5, batch_size=16, seed=7).train_dataloader()]
    again = [b[0][:, 0].tolist() for b in WindowDataModule(series, 10, 5, batch_size=16, seed=7).train_dataloader()]
    assert first == again
    data = WindowDataModule(series, 10, 5, batch_size=16, seed=7)
    val_starts = [v for b in data.val_dataloader() for v in b[0][:, 0].tolist()]
    assert val_starts == [float(s) for s in data.windows.val_context[:, 0]]  # in order
    train_starts = sorted(v for b in first for v in b)
    assert train_starts == sorted(data.windows.train_context[:, 0].tolist())  # every training window once
    assert max(train_starts) + 15 <= 160  # series "a": cutoff 160, no training window reaches it
