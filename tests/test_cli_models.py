"""`yumaflow train` and `yumaflow compare` as a user runs them: bad input gives one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

BIN = str(Path(sys.executable).parent / "yumaflow")
pytestmark = pytest.mark.slow


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=600)


def test_unknown_model_name_lists_the_known_ones(cli_env, tmp_path):
    res = run("train", "--model", "transformer", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", env=cli_env)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("yumaflow train: error:") and "transformer" in last and "mlp" in last


def test_series_file_with_nans_is_named(cli_env, tmp_path):
    bad = tmp_path / "series.parquet"
    pl.DataFrame({"series_id": ["a"] * 300, "t": range(300), "value": [float("nan")] + [1.0] * 299}).write_parquet(bad)
    res = run("train", "--model", "linear", "--series", str(bad), "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
              env=cli_env)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert str(bad) in last and ("NaN" in last or "nan" in last)


def test_compare_of_an_unregistered_model_is_refused(cli_env, tmp_path):
    res = run("compare", "--name", "nobody", "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
              "--warehouse", str(tmp_path / "wh"), env=cli_env)
    assert res.returncode == 2
    assert "nobody" in res.stderr.strip().splitlines()[-1]
