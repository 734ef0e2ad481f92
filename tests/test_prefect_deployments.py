"""prefect.yaml deploys as written against a real Prefect server, with the schedules it declares."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).parent / "prefect")
pytestmark = pytest.mark.slow


def prefect(*args: str, env: dict) -> subprocess.CompletedProcess:
    res = subprocess.run([PREFECT, "--no-prompt", *args], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert res.returncode == 0, f"prefect {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def test_every_deployment_of_prefect_yaml_deploys(cli_env):
    env = {**cli_env, "YUMAFLOW_CHAIN": "ws://127.0.0.1:9944"}
    prefect("work-pool", "create", "yumaflow-local", "--type", "process", "--overwrite", env=env)
    prefect("deploy", "--all", env=env)
    listed = prefect("deployment", "ls", env=env).stdout
    for name in ("snapshot/snapshot-every-tempo", "backfill/backfill", "consensus/consensus",
                 "epoch/epoch-every-tempo", "train/train-nightly", "compare/compare-after-train"):
        assert name in listed
    inspected = prefect("deployment", "inspect", "snapshot/snapshot-every-tempo", "--output", "json", env=env).stdout
    deployment = json.loads(inspected)
    assert deployment["parameters"]["chain"] == "ws://127.0.0.1:9944"
    assert [s["schedule"]["interval"] for s in deployment["schedules"]] == [4320.0]
