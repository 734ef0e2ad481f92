"""The validator's epoch end to end: the simulated subnet, real miner servers on 127.0.0.1 (honest and
hostile), a real Prefect flow run in a `yumaflow epoch` process, a real warehouse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from neurons.forecasters import Drift, LastValue, SeasonalNaive
from neurons.hostile import create_hostile_app
from neurons.miner import MinerServer, create_app, stop_servers
from tasks.simnet.chain import SimChain
from tasks.weights.convert import chain_stored_row
from tests.support.crashkit import KillPoint, run_and_kill
from warehouse import Warehouse

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")
NETUID = 1
HONEST = {"seasonal": SeasonalNaive(24), "last_value": LastValue(), "drift": Drift()}
HOSTILE = ("nan", "infinite", "wrong_length", "huge", "big_body", "invalid_json", "sleeper", "copier")


@pytest.fixture(scope="module")
def subnet(tmp_path_factory):
    """A sim subnet whose new miners serve real HTTP: three honest models and every hostile kind."""
    root = tmp_path_factory.mktemp("epoch")
    state = root / "sim.json"
    sim = SimChain.open(f"sim:11@{state}")
    head = sim.head_block()
    permitted = set(sim.snapshot(NETUID, head, parts=("neurons",)).neurons
                    .filter(pl.col("validator_permit"))["hotkey"])
    servers, kinds = [], {}
    try:
        for i, kind in enumerate([*HONEST, *HOSTILE]):
            key = sim.keypair("testminer", i)
            if kind in HONEST:
                app = create_app(key, HONEST[kind], lambda: permitted)
            elif kind == "copier":  # answers exactly what the best honest model answers, later
                app = create_hostile_app(kind, key, HONEST["seasonal"], lambda: permitted, delay_s=0.3)
            elif kind == "sleeper":
                app = create_hostile_app(kind, key, HONEST["seasonal"], lambda: permitted, delay_s=8.0)
            else:
                app = create_hostile_app(kind, key, HONEST["seasonal"], lambda: permitted)
            server = MinerServer(app).start()
            servers.append(server)
            sim.register(NETUID, key.ss58_address, sim.keypair("testminer", i, coldkey=True).ss58_address)
            assert sim.serve_axon(NETUID, "127.0.0.1", server.port, key).ok
            kinds[key.ss58_address] = kind
        sim.close()  # saves the state file the `yumaflow epoch` process loads
        pristine = root / "pristine.json"
        shutil.copy(state, pristine)
        yield {"state": state, "pristine": pristine, "kinds": kinds, "root": root}
    finally:
        stop_servers(servers)


def run_epoch(state: Path, warehouse: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    args = [BIN, "epoch", "--chain", f"sim:11@{state}", "--netuid", str(NETUID), "--hotkey-uri", "//Alice",
            "--warehouse", str(warehouse), "--timeout", "3", "--deadline", "5", "--challenges", "8", *extra]
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def pushed(subnet, prefect_api):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    wh_dir = subnet["root"] / "wh"
    out = run_epoch(subnet["state"], wh_dir, env, "--push")
    return Warehouse(wh_dir), out


def by_kind(frame: pl.DataFrame, kinds: dict) -> dict[str, pl.DataFrame]:
    frame = frame.with_columns(pl.col("hotkey").replace_strict(kinds, default=None).alias("kind"))
    return {k: g for (k,), g in frame.filter(pl.col("kind").is_not_null()).group_by("kind")}


def test_hostile_miners_get_zero_and_the_epoch_completes(subnet, pushed):
    wh, out = pushed
    scores = by_kind(wh.read("scores"), subnet["kinds"])
    for kind in HOSTILE:
        assert scores[kind]["batch_score"].item() == 0.0, kind
    responses = by_kind(wh.read("responses"), subnet["kinds"])
    assert set(responses["sleeper"]["status"]) == {"timeout"}
    assert set(responses["big_body"]["status"]) == {"invalid"}
    assert set(responses["invalid_json"]["status"]) == {"invalid"}
    for kind in HONEST:
        assert set(responses[kind]["status"]) == {"ok"}
        assert scores[kind]["batch_score"].item() > 0


def test_honest_miners_are_ranked_by_their_true_error(subnet, pushed):
    wh, _ = pushed
    challenges = wh.read("challenges").sort("query_id")
    truth = np.array(challenges["truth"].to_list())
    responses = by_kind(wh.read("responses"), subnet["kinds"])
    scores = by_kind(wh.read("scores"), subnet["kinds"])
    true_error = {}
    for kind in HONEST:
        forecasts = np.array(responses[kind].sort("query_id")["forecast"].to_list())
        true_error[kind] = float(np.mean(np.abs(forecasts - truth)))  # plain MAE, independent of the scorer
    by_error = sorted(HONEST, key=true_error.get)
    by_score = sorted(HONEST, key=lambda k: -scores[k]["batch_score"].item())
    assert by_score == by_error, (true_error, {k: scores[k]["batch_score"].item() for k in HONEST})


def test_weights_are_pushed_and_stored_as_the_chain_stores_them(subnet, pushed):
    wh, out = pushed
    submission = wh.read("weight_submissions").row(0, named=True)
    assert submission["status"] == "included" and not submission["dry_run"]
    assert submission["projected_dividends"] is not None
    sim = SimChain.load(subnet["state"])
    snap = sim.snapshot(NETUID, sim.head_block(), parts=("weights",))
    row = snap.weights.filter(pl.col("validator_uid") == 0)
    assert row["miner_uid"].to_list() == submission["uids"]
    assert row["weight"].to_list() == chain_stored_row(submission["weights"])
    hostile_uids = set(by_kind(wh.read("scores"), subnet["kinds"])["nan"]["miner_uid"])
    assert not hostile_uids & set(submission["uids"])


def test_killed_between_scoring_and_pushing_then_rerun_pushes_once(subnet, prefect_api, tmp_path):
    state = tmp_path / "sim.json"
    shutil.copy(subnet["pristine"], state)
    wh_dir = tmp_path / "wh"
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    args = ["epoch", "--chain", f"sim:11@{state}", "--netuid", str(NETUID), "--hotkey-uri", "//Alice",
            "--warehouse", str(wh_dir), "--timeout", "3", "--deadline", "5", "--challenges", "8", "--push"]
    run = run_and_kill(args, env, wh_dir, KillPoint("seam", "after_scores"), tmp_path)
    assert run.reached, "the epoch never reached the point between scoring and pushing"
    wh = Warehouse(wh_dir)
    scores_before = wh.read("scores").sort("miner_uid")
    assert wh.read("weight_submissions").height == 0

    run_epoch(state, wh_dir, env, "--push")
    run_epoch(state, wh_dir, env, "--push")  # a second rerun in the same tempo: nothing more is sent
    submissions = wh.read("weight_submissions")
    assert submissions.filter(pl.col("status") == "included").height == 1
    assert wh.read("scores").sort("miner_uid").equals(scores_before)  # not smoothed a second time
    sim = SimChain.load(state)
    our_row = sim.snapshot(NETUID, sim.head_block(), parts=("weights",)).weights.filter(
        pl.col("validator_uid") == 0)
    assert our_row["miner_uid"].to_list() == submissions.filter(pl.col("status") == "included")["uids"].item().to_list()


def test_no_answers_means_no_weights_pushed(prefect_api, tmp_path):
    # The default scenario's miners serve no axon: nothing to ask, an empty score vector, nothing sent.
    # The variable that once paused the flow after scoring, left set, changes nothing (the crash tests
    # install a hook instead: tests/support/hooked_cli.py).
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING",
           "YUMAFLOW_EPOCH_PAUSE_AFTER_SCORES": str(tmp_path / "never")}
    state = tmp_path / "sim.json"
    out = run_epoch(state, tmp_path / "wh", env, "--push")
    assert "weights: refused" in out.stdout and not (tmp_path / "never").exists()
    submission = Warehouse(tmp_path / "wh").read("weight_submissions").row(0, named=True)
    assert (submission["status"], submission["uids"], submission["dry_run"]) == ("refused", [], False)
    assert "empty" in submission["detail"]
    before = SimChain.open("sim:11")  # the same seed, never touched by the flow
    after = SimChain.load(state)
    assert after.head_block() == before.head_block()  # no extrinsic was included: the head did not move


def test_commit_reveal_subnet_commits_once_then_the_next_epoch_records_the_reveal(subnet, prefect_api, tmp_path):
    """On a commit-reveal subnet the push is a timelocked commit (never plain weights); a rerun in the same
    epoch commits nothing more; the next epoch finds the row revealed on chain and records what it holds."""
    state = tmp_path / "sim.json"
    shutil.copy(subnet["pristine"], state)
    sim = SimChain.load(state)
    sim.set_hyperparameter(NETUID, "commit_reveal_enabled", True)
    sim.advance(int(sim.snapshot(NETUID, sim.head_block(), parts=("subnets",)).subnets["weights_rate_limit"][0]))
    sim.save(state)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    wh_dir = tmp_path / "wh"
    run_epoch(state, wh_dir, env, "--push")
    run_epoch(state, wh_dir, env, "--push")  # same epoch: nothing more is sent
    wh = Warehouse(wh_dir)
    first = wh.read("weight_submissions").filter(pl.col("status") == "committed")
    assert first.height == 1
    first = first.row(0, named=True)
    assert (first["method"], first["reveal_status"]) == ("commit_timelocked", "pending")
    assert first["reveal_round"] > 0 and first["projected_dividends"] is not None
    sim = SimChain.load(state)
    assert sim.stored_weights(NETUID, 0) != list(zip(first["uids"], chain_stored_row(first["weights"]), strict=True))

    subnets = sim.snapshot(NETUID, sim.head_block(), parts=("subnets",)).subnets
    tempo, rate_limit = int(subnets["tempo"][0]), int(subnets["weights_rate_limit"][0])
    # into the reveal epoch, past the rate limit that the reveal (it sets our LastUpdate) starts again
    sim.advance(sim.last_epoch_block(NETUID) + tempo - sim.head_block() + rate_limit)
    sim.save(state)
    run_epoch(state, wh_dir, env, "--push")
    rows = wh.read("weight_submissions").sort("block")
    settled = rows.filter(pl.col("epoch_id") == first["epoch_id"]).row(0, named=True)
    assert settled["reveal_status"] == "revealed"
    assert settled["chain_weights"] == chain_stored_row(first["weights"])
    assert rows.filter(pl.col("status") == "committed").height == 2  # the new epoch committed its own row
