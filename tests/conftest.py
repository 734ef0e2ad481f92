"""Shared test setup: offline, quiet, single-threaded; paths to the read-only ../shared material."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("YUMAFLOW_SHARED", REPO.parent / "shared"))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"the shared reference folder {SHARED} is missing; set YUMAFLOW_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One temporary Prefect API server for the whole session; its URL for subprocesses.

    Flow runs are real (states, artifacts, retries) but the 15–20 s start-up is paid once, not per
    process: a CLI subprocess gets PREFECT_API_URL through `cli_env`.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (prefect_test_harness(server_startup_timeout=180),
          temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})):
        yield PREFECT_API_URL.value()


@pytest.fixture
def cli_env(prefect_api: str, tmp_path: Path) -> dict:
    """Environment for a `yumaflow` subprocess: the session's Prefect server, offline settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUMAFLOW_")}
    env.update(PREFECT_API_URL=prefect_api, PREFECT_LOGGING_LEVEL="WARNING", DO_NOT_TRACK="true",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1")
    return env
