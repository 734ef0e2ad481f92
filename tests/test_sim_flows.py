"""The flows run unchanged against the simulated subnet: a backfill of its history, then the consensus
flow recomputes every epoch in it and matches the simulation's own results exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from warehouse import Warehouse

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")


def yumaflow(*args: str, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, f"yumaflow {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def test_backfill_of_the_sim_then_consensus_parity_is_exact(tmp_path, cli_env):
    wh_dir = str(tmp_path / "wh")
    yumaflow("backfill", "--chain", "sim:7", "--netuid", "1", "--start-block", "99", "--end-block", "200",
             "--chunk-size", "25", "--warehouse", wh_dir, env=cli_env)
    out = yumaflow("consensus", "--netuid", "1", "--start-block", "100", "--end-block", "200",
                   "--warehouse", wh_dir, env=cli_env).stdout
    wh = Warehouse(Path(wh_dir))
    sources = wh.read("blocks")["source"].unique().to_list()
    assert sources == ["sim:7 (simulation)"]
    ran = wh.read("subnets").filter(pl.col("last_mechanism_step_block") == pl.col("block"))
    epoch_blocks = sorted(ran["block"])
    assert len(epoch_blocks) >= 5 and {b - a for a, b in zip(epoch_blocks[:-1], epoch_blocks[1:], strict=True)} == {20}
    results = wh.read("epoch_results")
    assert set(ran["block"]) <= set(results["block"])
    for column in ("consensus", "incentive", "dividends", "validator_trust", "emission", "active",
                   "validator_permit"):
        line = next(line for line in out.splitlines() if line.strip().startswith(column + " "))
        equal, total = line.split()[1].split("/")
        assert equal == total and int(total) > 0, line
        assert line.rstrip().endswith("max |diff| 0"), line
