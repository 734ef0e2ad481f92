"""`yumaflow demo` end to end, as `make run` runs it (shortened to two tempos): a real process, real
Prefect flow runs, a real MLflow store, real HTTP miners on 127.0.0.1, a real warehouse, the simulated
subnet's state file. Each claim the demo prints is checked here against the stores themselves.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tasks.demo import cast
from tasks.simnet.chain import SimChain
from tasks.weights.convert import chain_stored_row
from warehouse import Warehouse

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent / "yumaflow")
NETUID = 1
TEMPO = 20  # the simulated subnet's tempo (tasks/simnet/chain.py); its epochs run at multiples of it
OUTPUTS = ["consensus", "incentive", "dividends", "validator_trust", "emission", "validator_permit", "active"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, prefect_api):
    import os

    root = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUMAFLOW_")}
    env.update(PREFECT_API_URL=prefect_api, PREFECT_LOGGING_LEVEL="WARNING", OMP_NUM_THREADS="1")
    args = [BIN, "demo", "--tempos", "2", "--fresh", "--state", str(root / "sim.json"),
            "--warehouse", str(root / "wh"), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--reports-dir", str(root / "reports")]
    res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=900)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    sim = SimChain.load(root / "sim.json")
    return {"root": root, "out": res.stdout, "wh": Warehouse(root / "wh"), "sim": sim,
            "uri": f"sqlite:///{root / 'mlflow.db'}"}


def test_it_prints_where_everything_is(demo):
    out, root = demo["out"], demo["root"]
    assert "Recompute parity: exact on every column" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{root / 'mlflow.db'}" in out
    assert str((root / "wh").resolve() / "catalog.duckdb") in out
    report = Path(re.search(r"report +(\S+\.html)", out).group(1))
    assert report.parent == (root / "reports").resolve() and report.exists()
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 5  # the plots are inline: the file opens offline
    assert "http://" not in html and "https://" not in html


def test_our_validator_pushed_once_per_epoch_and_the_chain_stored_it(demo):
    wh, sim = demo["wh"], demo["sim"]
    sent = wh.read("weight_submissions").filter(pl.col("status") == "included").sort("included_block")
    assert sent.height == 2 and sent["epoch_id"].n_unique() == 2 and not sent["dry_run"].any()
    for row in sent.iter_rows(named=True):
        stored = sim.snapshot(NETUID, row["included_block"], parts=("weights",)).weights.filter(
            pl.col("validator_uid") == 0).sort("miner_uid")
        assert stored["miner_uid"].to_list() == row["uids"]
        assert stored["weight"].to_list() == chain_stored_row(row["weights"])


def test_hostile_miners_score_zero_and_honest_ones_above(demo):
    wh, sim = demo["wh"], demo["sim"]
    role_of = {cast.miner_key(sim, i).ss58_address: role for i, role in enumerate(cast.MINERS)}
    scores = wh.read("scores").filter(pl.col("hotkey").is_in(list(role_of)))
    assert scores["epoch_id"].n_unique() == 3  # two tempos and the commit-reveal tempo
    for row in scores.iter_rows(named=True):
        role = role_of[row["hotkey"]]
        if role.kind == "hostile":
            assert row["batch_score"] == 0.0, role.name
        else:
            assert row["batch_score"] > 0.0, role.name
    sleeper = cast.miner_key(sim, [r.spec for r in cast.MINERS].index("sleeper")).ss58_address
    assert set(wh.read("responses").filter(pl.col("hotkey") == sleeper)["status"]) == {"timeout"}


def test_the_copier_set_last_epochs_consensus(demo):
    wh, sim = demo["wh"], demo["sim"]
    head = sim.head_block()
    neurons = sim.snapshot(NETUID, head, parts=("neurons",)).neurons
    copier = neurons.filter(pl.col("hotkey") == cast.copier_key(sim).ss58_address).row(0, named=True)
    set_at = copier["last_update"]  # the block its last weights were included in
    before = wh.read("neurons", (pl.col("block") == set_at - 1), netuid=NETUID)
    assert before.height > 0, "the warehouse holds every block of the demo's tempos"
    public = before.filter((pl.col("consensus") > 0) & (pl.col("uid") != copier["uid"])).sort("uid")
    top = max(public["consensus"].to_list())
    expected = [round(c * 65535 / top) for c in public["consensus"].to_list()]
    row = sim.snapshot(NETUID, set_at, parts=("weights",)).weights.filter(
        pl.col("validator_uid") == copier["uid"]).sort("miner_uid")
    assert row["miner_uid"].to_list() == [u for u, v in zip(public["uid"], expected, strict=True) if v > 0]
    assert row["weight"].to_list() == [v for v in expected if v > 0]


def test_every_chain_epoch_recomputed_exactly(demo):
    wh = demo["wh"]
    results = wh.read("epoch_results").filter(pl.col("variant") == "chain")
    epoch_blocks = sorted(b for b in results["block"].unique().to_list() if b % TEMPO == 0)
    assert len(epoch_blocks) >= 7  # five tempos of history and the demo's own
    chain = wh.read("neurons").filter(pl.col("block").is_in(epoch_blocks))
    joined = results.filter(pl.col("block").is_in(epoch_blocks)).join(
        chain, on=["netuid", "block", "uid"], how="full", suffix="_chain")
    assert joined.filter(pl.col("uid").is_null() | pl.col("uid_chain").is_null()).height == 0
    for column in OUTPUTS:
        differ = joined.filter(pl.col(column) != pl.col(f"{column}_chain"))
        assert differ.height == 0, (column, differ.head())


def test_whatif_variants_and_the_champion(demo):
    from mlflow import MlflowClient

    wh, out = demo["wh"], demo["out"]
    variants = set(wh.read("epoch_results")["variant"].unique())
    assert {"chain", "baseline", "classic", "liquid_alpha", "liquid_alpha_previous", "kappa_0.6"} <= variants
    client = MlflowClient(tracking_uri=demo["uri"], registry_uri=demo["uri"])
    versions = {int(v.version) for v in client.search_model_versions("name='demo-forecaster'")}
    assert versions == {1, 2}
    champion = int(client.get_model_version_by_alias("demo-forecaster", "champion").version)
    moved = re.search(r"alias moved: (True|False)", out).group(1) == "True"
    assert champion == (2 if moved else 1)  # version 1 was crowned first; the comparison moves it or not
    served = wh.read("model_deployments").sort("model_version")
    assert served["model_version"].to_list() == [1, 2]


def test_the_commit_reveal_tempo_committed_and_the_reveal_landed(demo):
    wh, sim = demo["wh"], demo["sim"]
    committed = wh.read("weight_submissions").filter(pl.col("status") == "committed")
    assert committed.height == 1
    row = committed.row(0, named=True)
    assert (row["method"], row["reveal_status"]) == ("commit_timelocked", "revealed")
    assert row["chain_weights"] == chain_stored_row(row["weights"])
    stored = sim.snapshot(NETUID, row["revealed_block"], parts=("weights",)).weights.filter(
        pl.col("validator_uid") == 0).sort("miner_uid")
    assert stored["weight"].to_list() == chain_stored_row(row["weights"])
    before = sim.snapshot(NETUID, row["revealed_block"] - 1, parts=("weights",)).weights.filter(
        pl.col("validator_uid") == 0).sort("miner_uid")
    assert before["weight"].to_list() != stored["weight"].to_list() or before["miner_uid"].to_list() != row["uids"]
    assert "commit-reveal tempo: our weights committed (commit_timelocked)" in demo["out"]
