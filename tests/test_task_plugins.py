"""Task plug-ins: found through the `yumaflow.tasks` entry points; the second plug-in (`price`, whose truth
arrives after the answer) end to end on the simulated subnet with real HTTP miners: asked in one epoch,
settled and scored when its truth has come, weights pushed from the settled scores; a validator killed
between the answers and the settlement loses nothing.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

from neurons.forecasters import Drift, LastValue
from neurons.hostile import create_hostile_app
from neurons.miner import MinerServer, create_app, stop_servers
from tasks.evaluation.plugin import ChallengeOptions, available_tasks, load_task
from tasks.evaluation.price_task import PriceTask, price_scores
from tasks.simnet.chain import SimChain
from tasks.weights.convert import chain_stored_row
from tests.support.crashkit import REPO, KillPoint, run_and_kill
from warehouse import Warehouse

BIN = str(Path(sys.executable).parent / "yumaflow")
NETUID, HORIZON = 1, 4


def test_both_built_in_tasks_are_entry_points_and_an_unknown_one_is_named():
    assert {"forecast", "price"} <= set(available_tasks())
    assert (load_task("forecast").path, load_task("price").path) == ("/forecast", "/predict")
    with pytest.raises(LookupError, match=r"no task plug-in named 'tarot'.*installed: .*forecast.*price"):
        load_task("tarot")


def test_price_truth_arrives_with_the_blocks_and_is_the_later_context():
    task = PriceTask()
    options = ChallengeOptions(seed=3, n_challenges=16, context_len=8, horizon=HORIZON)
    first = task.make_challenges("1:50", NETUID, 1000, options)
    assert first["truth"].null_count() == 16 and set(first["truth_block"]) == {1000 + HORIZON}
    assert task.settle(first, 1000 + HORIZON - 1).height == 0  # not before its block
    settled = task.settle(first, 1000 + HORIZON)
    assert settled.height == 16 and settled["truth"].list.len().to_list() == [HORIZON] * 16
    # a challenge cut HORIZON blocks later sees, as its last prices, the truth of the earlier one
    later = task.make_challenges("1:51", NETUID, 1000 + HORIZON, options)
    common = set(first["series_id"]) & set(later["series_id"])
    assert common
    for asset in common:
        truth = settled.filter(pl.col("series_id") == asset)["truth"][0].to_list()
        tail = later.filter(pl.col("series_id") == asset)["context"][0].to_list()[-HORIZON:]
        assert truth == tail


def test_price_score_worked_by_hand():
    # last price 100; truth 101, 102; forecast 101, 103: same direction (1), mean error 0.5 = 0.5 % of
    # the price → accuracy exp(-0.5); score (1 + 0.60653066) / 2; an unscored answer 0
    forecasts = torch.tensor([[[101.0, 103.0]], [[101.0, 99.0]]], dtype=torch.float64)
    scored = torch.tensor([[True], [False]])
    got = price_scores(forecasts, scored, torch.tensor([[101.0, 102.0]], dtype=torch.float64),
                       torch.tensor([100.0], dtype=torch.float64))
    assert math.isclose(got[0, 0].item(), (1 + math.exp(-0.5)) / 2, rel_tol=1e-12) and got[1, 0].item() == 0.0


@pytest.fixture(scope="module")
def subnet(tmp_path_factory):
    """A sim subnet with price miners on 127.0.0.1 at the task's path: two honest, one NaN, one wrong length."""
    root = tmp_path_factory.mktemp("price")
    state = root / "sim.json"
    sim = SimChain.open(f"sim:13@{state}")
    permitted = set(sim.snapshot(NETUID, sim.head_block(), parts=("neurons",)).neurons
                    .filter(pl.col("validator_permit"))["hotkey"])
    path, servers, kinds = PriceTask.path, [], {}
    try:
        for i, kind in enumerate(["last_value", "drift", "nan", "wrong_length"]):
            key = sim.keypair("priceminer", i)
            if kind in ("last_value", "drift"):
                app = create_app(key, LastValue() if kind == "last_value" else Drift(), lambda: permitted, path=path)
            else:
                app = create_hostile_app(kind, key, LastValue(), lambda: permitted, path=path)
            server = MinerServer(app).start()
            servers.append(server)
            sim.register(NETUID, key.ss58_address, sim.keypair("priceminer", i, coldkey=True).ss58_address)
            assert sim.serve_axon(NETUID, "127.0.0.1", server.port, key).ok
            kinds[key.ss58_address] = kind
        sim.close()
        pristine = root / "pristine.json"
        shutil.copy(state, pristine)
        yield {"pristine": pristine, "kinds": kinds, "root": root}
    finally:
        stop_servers(servers)


def epoch_args(state: Path, warehouse: Path) -> list[str]:
    return ["epoch", "--task", "price", "--chain", f"sim:13@{state}", "--netuid", str(NETUID), "--hotkey-uri",
            "//Alice", "--warehouse", str(warehouse), "--timeout", "3", "--deadline", "5", "--challenges", "6",
            "--context", "16", "--horizon", str(HORIZON), "--push"]


def next_epoch(state: Path) -> None:
    """Past the truth of the epoch just asked and into the next tempo (a new epoch id)."""
    sim = SimChain.load(state)
    tempo = int(sim.snapshot(NETUID, sim.head_block(), parts=("subnets",)).subnets["tempo"][0])
    sim.advance(tempo + 1)
    sim.save(state)


def test_price_epochs_settle_later_and_push_weights_from_the_settled_scores(subnet, prefect_api, tmp_path):
    state = tmp_path / "sim.json"
    shutil.copy(subnet["pristine"], state)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    wh_dir = tmp_path / "wh"
    first = subprocess.run([BIN, *epoch_args(state, wh_dir)], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    wh = Warehouse(wh_dir)
    asked = wh.read("challenges")
    assert asked.height == 6 and asked["truth"].null_count() == 6 and set(asked["task"]) == {"price"}
    assert wh.read("scores").height == 0  # the truth has not come yet
    assert "no settled scores yet" in wh.read("weight_submissions")["detail"][0]

    next_epoch(state)
    second = subprocess.run([BIN, *epoch_args(state, wh_dir)], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    settled = wh.read("challenges").filter(pl.col("epoch_id") == asked["epoch_id"][0])
    assert settled["truth"].null_count() == 0
    scores = wh.read("scores").with_columns(pl.col("hotkey").replace_strict(subnet["kinds"], default=None)
                                            .alias("kind"))
    assert set(scores["epoch_id"]) == {asked["epoch_id"][0]}  # only the settled epoch is scored
    by_kind = {kind: score for kind, score in scores.select("kind", "batch_score").iter_rows() if kind}
    assert by_kind["nan"] == by_kind["wrong_length"] == 0.0
    assert by_kind["last_value"] > 0 and by_kind["drift"] > 0
    pushed = wh.read("weight_submissions").filter(pl.col("status") == "included").row(0, named=True)
    sim = SimChain.load(state)
    stored = sim.stored_weights(NETUID, 0)
    assert stored == list(zip(pushed["uids"], chain_stored_row(pushed["weights"]), strict=True))


def test_killed_between_answers_and_settlement_loses_nothing(subnet, prefect_api, tmp_path):
    state = tmp_path / "sim.json"
    shutil.copy(subnet["pristine"], state)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    wh_dir = tmp_path / "wh"
    run = run_and_kill(epoch_args(state, wh_dir), env, wh_dir, KillPoint("seam", "after_answers"), tmp_path)
    assert run.reached, "the epoch never stored its answers"
    wh = Warehouse(wh_dir)
    answers = wh.read("responses")
    assert answers.height > 0 and wh.read("scores").height == 0

    next_epoch(state)
    out = subprocess.run([BIN, *epoch_args(state, wh_dir)], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    killed_epoch = answers["epoch_id"][0]
    again = wh.read("responses").filter(pl.col("epoch_id") == killed_epoch)
    assert again.sort("miner_uid", "query_id").equals(answers.sort("miner_uid", "query_id"))  # not asked twice
    assert set(wh.read("scores")["epoch_id"]) == {killed_epoch}  # settled from the recorded answers
    assert wh.read("weight_submissions").filter(pl.col("status") == "included").height == 1


def test_the_readmes_plug_in_example_runs_as_written(tmp_path):
    """The complete plug-in shown in the README, taken from it verbatim: its challenges, and its scorer on
    answers that are exact, wrong and NaN (NaN is invalid: 0, never a crash)."""
    import re
    import types

    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(# mytask\.py.*?)```", readme, re.S).group(1)
    module = types.ModuleType("mytask")
    exec(compile(code, "README.md:mytask.py", "exec"), module.__dict__)  # our own README's code
    task = module.NextValue()
    challenges = task.make_challenges("1:5", NETUID, 100, ChallengeOptions(n_challenges=3))
    assert challenges["truth"].to_list() == [[2.0], [3.0], [4.0]]
    responses = pl.DataFrame({
        "epoch_id": "1:5", "miner_uid": [0, 0, 0, 1, 1, 1], "query_id": [0, 1, 2] * 2, "hotkey": ["a"] * 3 + ["b"] * 3,
        "status": "ok", "latency_ms": [1.0] * 3 + [2.0] * 3, "payload_bytes": 10,
        "forecast": [[2.0], [3.0], [4.0], [2.0], [9.0], [float("nan")]], "detail": None,
    }, schema={"epoch_id": pl.String, "miner_uid": pl.UInt16, "query_id": pl.UInt32, "hotkey": pl.String,
               "status": pl.String, "latency_ms": pl.Float64, "payload_bytes": pl.UInt64,
               "forecast": pl.List(pl.Float64), "detail": pl.String})
    scores = task.score(task.validate(responses, challenges), challenges)
    assert scores.sort("miner_uid")["batch_score"].to_list() == [1.0, 1 / 3]
