"""The `yumaflow` console script as a user runs it: a real process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "yumaflow"


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_help_lists_every_command_with_its_purpose():
    res = run("--help")
    assert res.returncode == 0
    assert "consensus" in res.stdout and "bit-exact" in res.stdout
    assert "config" in res.stdout


def test_subcommand_help_shows_the_file_contract_and_an_example():
    res = run("consensus", "--help")
    assert res.returncode == 0
    for part in ("IN/epochs.parquet", "OUT/bonds.parquet", "examples:", "--netuid"):
        assert part in res.stdout


def test_settings_precedence_option_env_toml(tmp_path: Path):
    toml = tmp_path / "y.toml"
    toml.write_text('warehouse = "/from/toml"\nlog_level = "DEBUG"\n')
    env = {**os.environ, "YUMAFLOW_CONFIG": str(toml), "YUMAFLOW_LOG_LEVEL": "WARNING"}
    env.pop("YUMAFLOW_WAREHOUSE", None)
    out = run("config", env=env, cwd=tmp_path).stdout
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert lines["warehouse"] == "/from/toml"  # from the TOML file
    assert lines["log_level"] == "WARNING"  # the environment beats the file
    env["YUMAFLOW_WAREHOUSE"] = "/from/env"
    out = run("config", env=env, cwd=tmp_path).stdout
    assert "/from/env" in out


def test_bad_setting_in_toml_is_named(tmp_path: Path):
    toml = tmp_path / "bad.toml"
    toml.write_text('wharehouse = "/typo"\n')
    res = run("config", "--config", str(toml), cwd=tmp_path)
    assert res.returncode == 2
    assert "wharehouse" in res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_command_is_refused():
    res = run("frobnicate")
    assert res.returncode == 2
    assert "invalid choice" in res.stderr
