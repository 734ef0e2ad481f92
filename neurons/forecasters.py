"""Forecasters a miner serves (DESIGN.md §7): built-in baselines and MLflow-registered models.

One interface for all: `forecast(context, horizon) -> values`, where `context` is a float64 array of
shape (batch, context_len) (one challenge per row, oldest value first) and `values` has shape
(batch, horizon). A spec string picks one: "baseline:seasonal_naive:24", "baseline:last_value",
"baseline:drift", "mlflow:models:/NAME@ALIAS" or "mlflow:models:/NAME/VERSION".

An MLflow alias moves when the `compare` flow crowns a new champion, so a miner holds its model in a
`ForecasterHolder`, whose `reload()` re-resolves the alias and swaps the model in one assignment.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)


@runtime_checkable
class Forecaster(Protocol):
    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        """(batch, context_len) float64 → (batch, horizon) float64."""


def _check_context(context: np.ndarray, horizon: int) -> np.ndarray:
    context = np.asarray(context, dtype=np.float64)
    if context.ndim != 2 or context.shape[1] < 1:
        raise ValueError(f"context must have shape (batch, context_len >= 1), got {context.shape}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return context


# -- baselines -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastValue:
    """Repeat the last observed value over the horizon."""

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        context = _check_context(context, horizon)
        return np.repeat(context[:, -1:], horizon, axis=1)


@dataclass(frozen=True)
class SeasonalNaive:
    """Repeat the last full season: value at t+h is the value at t+h-k·period for the smallest k >= 1.

    With a context shorter than one period there is no season to repeat: last value instead.
    """

    period: int

    def __post_init__(self):
        if self.period < 1:
            raise ValueError(f"seasonal_naive period must be >= 1, got {self.period}")

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        context = _check_context(context, horizon)
        context_len = context.shape[1]
        if context_len < self.period:
            return LastValue().forecast(context, horizon)
        season_index = context_len - self.period + (np.arange(horizon) % self.period)
        return context[:, season_index]


@dataclass(frozen=True)
class Drift:
    """Extend the straight line through the first and the last observed value (Hyndman's drift)."""

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        context = _check_context(context, horizon)
        context_len = context.shape[1]
        last = context[:, -1:]
        if context_len == 1:
            return np.repeat(last, horizon, axis=1)
        slope_per_step = (context[:, -1:] - context[:, :1]) / (context_len - 1)
        return last + slope_per_step * np.arange(1, horizon + 1)


# -- MLflow models -------------------------------------------------------------------------------


class ForecasterNotFound(LookupError):
    """The spec names a model (or alias, or version) the MLflow registry does not have."""


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The MLflow tracking URI: explicit, else $MLFLOW_TRACKING_URI, else the yumaflow setting."""
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    from flows.settings import load_settings

    return load_settings().mlflow_tracking_uri


class MlflowForecaster:
    """A registered model loaded as an MLflow pyfunc, at one fixed version.

    The model maps a (batch, n_in) array to a (batch, n_out) array. When its signature fixes n_in,
    the last n_in values of the context are used (a shorter context is left-padded with its first
    value). When n_out < horizon, the forecast is extended by feeding predictions back as context;
    when n_out > horizon, it is cut.
    """

    def __init__(self, model_uri: str, pyfunc_model, version: str | None = None):
        self.model_uri = model_uri
        self.version = version
        self._model = pyfunc_model
        self._input_len, self._input_dtype = _signature_input(pyfunc_model)

    def _predict(self, window: np.ndarray) -> np.ndarray:
        out = self._model.predict(window.astype(self._input_dtype, copy=False))
        out = np.asarray(getattr(out, "values", out), dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != window.shape[0] or out.shape[1] < 1:
            raise ValueError(f"model {self.model_uri} returned shape {out.shape} for input {window.shape}")
        return out

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        context = _check_context(context, horizon)
        history = context
        pieces: list[np.ndarray] = []
        produced = 0
        while produced < horizon:
            window = _fit_width(history, self._input_len) if self._input_len else history
            step = self._predict(window)
            pieces.append(step)
            produced += step.shape[1]
            history = np.concatenate([history, step], axis=1)
        return np.concatenate(pieces, axis=1)[:, :horizon]


def _fit_width(context: np.ndarray, width: int) -> np.ndarray:
    if context.shape[1] >= width:
        return context[:, -width:]
    pad = np.repeat(context[:, :1], width - context.shape[1], axis=1)
    return np.concatenate([pad, context], axis=1)


def _signature_input(pyfunc_model) -> tuple[int | None, type]:
    """(fixed input width or None, numpy dtype) from a tensor-based signature; (None, float32) otherwise."""
    try:
        inputs = pyfunc_model.metadata.get_input_schema()
        spec = inputs.inputs[0] if inputs is not None and inputs.is_tensor_spec() else None
    except Exception:  # no signature, or a column-based one: feed float32 at the context's width
        spec = None
    if spec is None:
        return None, np.float32
    width = spec.shape[-1] if len(spec.shape) >= 2 and spec.shape[-1] > 0 else None
    return width, spec.type.type


_MLFLOW_SPEC = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def _parse_mlflow_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    match = _MLFLOW_SPEC.match(model_uri)
    if not match:
        raise ValueError(f"MLflow forecaster spec must be models:/NAME@ALIAS or models:/NAME/VERSION, "
                         f"got {model_uri!r}")
    return match["name"], match["alias"], match["version"]


def _resolve_version(client, name: str, alias: str | None, version: str | None, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            return str(client.get_model_version_by_alias(name, alias).version)
        return str(client.get_model_version(name, version).version)
    except MlflowException as exc:
        which = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise ForecasterNotFound(f"MLflow model {name!r} {which} does not exist in the registry at {uri} "
                                 f"({exc.error_code})") from None


def load_mlflow_forecaster(model_uri: str, *, tracking_uri: str | None = None,
                           version: str | None = None) -> MlflowForecaster:
    """Load `models:/NAME@ALIAS` (resolved to a version first) or `models:/NAME/VERSION`."""
    name, alias, fixed_version = _parse_mlflow_uri(model_uri)  # a bad spec fails before the slow import
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = version or _resolve_version(client, name, alias, fixed_version, uri)
    # download through an explicit tracking URI instead of mlflow.set_tracking_uri: a miner inside a
    # bigger process (the demo, tests) must not redirect everyone else's MLflow calls
    local_copy = tempfile.TemporaryDirectory(prefix=f"yumaflow-{name}-v{version}-")
    local_path = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri(name, version), dst_path=local_copy.name,
        tracking_uri=uri)
    model = mlflow.pyfunc.load_model(local_path)
    log.info("loaded MLflow model %s version %s", name, version)
    forecaster = MlflowForecaster(model_uri, model, version=version)
    forecaster.local_copy = local_copy  # removed when the forecaster is dropped
    return forecaster


# -- specs and the holder ------------------------------------------------------------------------

BASELINES = {"last_value": LastValue, "drift": Drift, "seasonal_naive": SeasonalNaive}


def load_forecaster(spec: str, *, tracking_uri: str | None = None) -> Forecaster:
    """The forecaster a spec names (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "baseline":
        name, _, arg = rest.partition(":")
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r} in forecaster spec {spec!r}; known: {', '.join(BASELINES)}")
        if name == "seasonal_naive":
            if not arg.isdigit():
                raise ValueError(f"forecaster spec {spec!r}: seasonal_naive needs an integer period, "
                                 "e.g. baseline:seasonal_naive:24")
            return SeasonalNaive(int(arg))
        if arg:
            raise ValueError(f"forecaster spec {spec!r}: baseline {name!r} takes no parameter")
        return BASELINES[name]()
    if kind == "mlflow":
        return load_mlflow_forecaster(rest, tracking_uri=tracking_uri)
    raise ValueError(f"unknown forecaster spec {spec!r}; expected baseline:NAME[:ARG] or mlflow:models:/NAME@ALIAS")


class ForecasterHolder:
    """The forecaster a miner serves right now; `reload()` swaps it without a restart.

    Readers take `self.current` once per request, so a swap (one attribute assignment) never mixes
    two models inside a batch. Only an `mlflow:…@ALIAS` spec can change: reload re-resolves the alias
    and loads the model only when the alias points at another version.
    """

    def __init__(self, spec: str, *, tracking_uri: str | None = None):
        self.spec = spec
        self._tracking_uri = tracking_uri
        self.current: Forecaster = load_forecaster(spec, tracking_uri=tracking_uri)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> str | None:
        return getattr(self.current, "version", None)

    def forecast(self, context: np.ndarray, horizon: int) -> np.ndarray:
        return self.current.forecast(context, horizon)

    def reload(self) -> bool:
        """Re-resolve the alias; True when a new version was loaded and swapped in."""
        kind, _, model_uri = self.spec.partition(":")
        if kind != "mlflow":
            return False
        name, alias, _ = _parse_mlflow_uri(model_uri)
        if alias is None:
            return False
        from mlflow import MlflowClient

        with self._lock:  # one reload at a time; forecasts keep using the old model meanwhile
            uri = resolve_tracking_uri(self._tracking_uri)
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            version = _resolve_version(client, name, alias, None, uri)
            if version == self.version:
                return False
            self.current = load_mlflow_forecaster(model_uri, tracking_uri=uri, version=version)
            log.info("forecaster %s now serves version %s", self.spec, version)
            return True

    def start_auto_reload(self, interval_s: float) -> None:
        """Reload every `interval_s` seconds in a daemon thread; a failed reload keeps the old model."""
        if self._thread is not None:
            return

        def loop():
            while not self._stop.wait(interval_s):
                try:
                    self.reload()
                except Exception as exc:  # the registry may be briefly unreachable; keep serving
                    log.warning("forecaster reload of %s failed, keeping version %s: %s",
                                self.spec, self.version, exc)

        self._thread = threading.Thread(target=loop, name="forecaster-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
