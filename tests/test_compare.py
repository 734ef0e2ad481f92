"""Comparing registered model versions (tasks/training/compare.py) against a real MLflow sqlite store, a
real warehouse and a real miner server on 127.0.0.1.

Registered versions of model "tiny" (pyfunc models written here, not the project's models/):
  v1  constant 0               (deliberately bad: far from every series)
  v2  seasonal naive, period 24 (good on the generator's series, whose main season is 24 steps)
  v3  the same seasonal naive   (a challenger exactly as good: gain 0, within any margin)
  v4  raises on every call      (a broken version: scores 0, never stops the comparison)
Expected scores are computed by a hand-written numpy oracle of the validator's formula
(tasks/evaluation/scoring.py docstring), not by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import mlflow.pyfunc
import numpy as np
import polars as pl
import pytest
from substrateinterface import Keypair

from neurons.forecasters import ForecasterHolder, ForecasterNotFound
from neurons.miner import MinerServer, create_app
from schemas.chain import NEURONS
from tasks.evaluation import protocol
from tasks.evaluation.challenges import make_challenges
from tasks.evaluation.series import generate_series
from tasks.training.compare import (
    Decision,
    compare_versions,
    decide,
    deployments_frame,
    incentive_by_version,
    mlflow_client,
    record_deployment,
    resolve_versions,
    seeded_challenges,
)
from warehouse import Warehouse

CONTEXT_LEN, HORIZON, PERIOD = 48, 12, 24
SMALL = {"n_challenges": 48, "context_len": CONTEXT_LEN, "horizon": HORIZON, "seed": 11}
ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")
pytestmark = [  # MLflow's own advice on the test models' logging, and its pandas use in log_table
    pytest.mark.filterwarnings("ignore:.*Add type hints to the `predict` method:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*An input example was not provided:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*select_dtypes:DeprecationWarning"),
]


class SeasonalNaiveModel(mlflow.pyfunc.PythonModel):
    """(batch, 48) → (batch, 12): value at t+h is the value one 24-step season earlier."""

    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input, dtype=np.float64)
        return x[:, x.shape[1] - PERIOD + np.arange(HORIZON) % PERIOD]


class BrokenModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("weights file corrupted")


class ConstantZeroModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.zeros((np.asarray(model_input).shape[0], HORIZON))


def seasonal_naive(x: np.ndarray, horizon: int) -> np.ndarray:
    return x[len(x) - PERIOD + np.arange(horizon) % PERIOD]


def oracle_mean_score(challenges: pl.DataFrame, forecast) -> float:
    """The validator's score by hand: scale = in-sample MAE of the 24-step seasonal naive on the context,
    score = 1 / (1 + mean |f − y| / scale), averaged over challenges."""
    scores = []
    for row in challenges.iter_rows(named=True):  # the oracle: one challenge at a time, plain numpy
        x, y = np.array(row["context"]), np.array(row["truth"])
        scale = np.mean(np.abs(x[PERIOD:] - x[:-PERIOD]))
        scores.append(1.0 / (1.0 + np.mean(np.abs(forecast(x, len(y)) - y)) / scale))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """The tracking URI of a sqlite store holding tiny v1 (bad), v2 (good), v3 (good again), v4 (broken)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    signature = mlflow.models.infer_signature(np.zeros((2, CONTEXT_LEN)), np.zeros((2, HORIZON)))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment_id = mlflow_client(uri).create_experiment(  # artifacts inside the temp dir, not ./mlruns
            "tiny-models", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment_id)
        for model in (ConstantZeroModel(), SeasonalNaiveModel(), SeasonalNaiveModel(), BrokenModel()):
            with mlflow.start_run():
                mlflow.pyfunc.log_model(name="model", python_model=model, signature=signature,
                                        pip_requirements=["numpy"], registered_model_name="tiny")
    finally:
        mlflow.set_tracking_uri(previous)  # the code under test must use its explicit tracking URI
    return uri


def set_aliases(uri: str, **aliases: int | None) -> None:
    client = mlflow_client(uri)
    for alias, version in aliases.items():
        if version is None:
            client.delete_registered_model_alias("tiny", alias)
        else:
            client.set_registered_model_alias("tiny", alias, str(version))


def champion_of(uri: str) -> int:
    return int(mlflow_client(uri).get_model_version_by_alias("tiny", "champion").version)


# -- deciding ------------------------------------------------------------------------------------


def test_good_model_beats_bad_and_the_champion_alias_moves_only_past_the_margin(registry):
    set_aliases(registry, champion=None, challenger=None)
    # no champion yet: the best of the versions named becomes champion
    first = compare_versions("tiny", ["1", "2"], tracking_uri=registry, margin=0.01, **SMALL)
    assert first.challenge_source == "seeded" and first.decision.champion is None
    assert first.decision.winner == 2 and first.promoted and champion_of(registry) == 2

    # the scores are the validator's, on the seeded set cut by the validator's own generator
    challenges = seeded_challenges(**SMALL)
    scores = dict(zip(first.table["model_version"], first.table["mean_score"], strict=True))
    assert scores[2] == pytest.approx(oracle_mean_score(challenges, seasonal_naive), rel=1e-12)
    assert scores[1] == pytest.approx(oracle_mean_score(challenges, lambda x, h: np.zeros(h)), rel=1e-12)
    assert first.table["valid_challenges"].to_list() == [48, 48]
    assert first.by_step.height == 2 * HORIZON and first.by_step["step"].max() == HORIZON

    # a worse challenger: the champion stays
    set_aliases(registry, champion=1, challenger=2)
    assert champion_of(registry) == 1
    better = compare_versions("tiny", tracking_uri=registry, margin=0.01, **SMALL)
    assert (better.decision.champion, better.decision.challenger, better.decision.winner) == (1, 2, 2)
    assert better.decision.score_gain == pytest.approx(scores[2] - scores[1], rel=1e-12)
    assert better.promoted and champion_of(registry) == 2

    set_aliases(registry, challenger=1)
    worse = compare_versions("tiny", tracking_uri=registry, margin=0.0, **SMALL)
    assert not worse.decision.promote and not worse.promoted and champion_of(registry) == 2
    assert worse.decision.score_gain == pytest.approx(scores[1] - scores[2], rel=1e-12)

    # an equally good challenger (gain exactly 0, identical answers both scored): within the margin
    set_aliases(registry, challenger=3)
    tie = compare_versions("tiny", tracking_uri=registry, margin=0.01, **SMALL)
    tie_scores = dict(zip(tie.table["model_version"], tie.table["mean_score"], strict=True))
    assert tie_scores[3] == tie_scores[2] == scores[2]
    assert tie.decision == Decision("tiny", 2, 3, 2, False, 0.01, 0.0, tie.decision.reason)
    assert champion_of(registry) == 2

    # the comparison run: params, metrics per version, the table and the plots
    client = mlflow_client(registry)
    run = client.get_run(better.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["challenge_source"] == "seeded" and run.data.params["versions"] == "1,2"
    assert run.data.params["challenge_count"] == "48" and run.data.params["margin"] == "0.01"
    assert run.data.metrics["v2.mean_score"] == pytest.approx(scores[2], rel=1e-12)
    assert run.data.tags["champion_moved"] == "True" and run.data.tags["winner"] == "2"
    steps = client.get_metric_history(better.run_id, "v2.scaled_error_by_step")
    assert sorted(m.step for m in steps) == list(range(1, HORIZON + 1))
    files = {f.path for f in client.list_artifacts(better.run_id)} | {
        f.path for f in client.list_artifacts(better.run_id, "plots")}
    assert {"comparison.json", "comparison.csv", "scores_per_challenge.csv", "plots/error_by_horizon.png",
            "plots/score_distribution.png"} <= files
    png = mlflow.artifacts.download_artifacts(run_id=better.run_id, artifact_path="plots/error_by_horizon.png",
                                              tracking_uri=registry)
    with open(png, "rb") as image:
        assert image.read(8) == b"\x89PNG\r\n\x1a\n"
    table = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=better.run_id, artifact_path="comparison.json", tracking_uri=registry)).read_text())
    assert table["columns"][:2] == ["model_name", "model_version"] and len(table["data"]) == 2


def test_decide_by_hand():
    # scores exact in binary, so the margin comparison is exact: challenger v2 gains 0.25 over v1
    table = pl.DataFrame({"model_name": ["m"] * 3, "model_version": pl.Series([1, 2, 3], dtype=pl.UInt32),
                          "is_champion": [True, False, False], "mean_score": [0.5, 0.75, 0.625]})
    assert decide(table, 0.25) == Decision("m", 1, 2, 1, False, 0.25, 0.25, decide(table, 0.25).reason)
    assert decide(table, 0.125).winner == 2 and decide(table, 0.125).promote
    assert decide(table, 0.0).promote  # any strict gain wins with margin 0
    no_champion = table.with_columns(pl.lit(False).alias("is_champion"))
    assert (decide(no_champion, 0.9).winner, decide(no_champion, 0.9).promote) == (2, True)
    only_champion = table.head(1)
    assert (decide(only_champion).winner, decide(only_champion).promote) == (1, False)
    with pytest.raises(ValueError, match="versions of one model expected"):
        decide(table.with_columns(pl.Series("model_name", ["m", "n", "m"])))


def test_unknown_model_version_or_alias_is_a_clear_error(registry):
    client = mlflow_client(registry)
    with pytest.raises(ForecasterNotFound, match=r"'no-such-model' is not registered .*registered models: tiny"):
        resolve_versions(client, "no-such-model", ["champion"])
    with pytest.raises(ForecasterNotFound, match=r"'tiny' has no version 9; versions: 1, 2, 3, 4"):
        resolve_versions(client, "tiny", ["1", "9"])
    with pytest.raises(ForecasterNotFound, match=r"'tiny' has no alias 'nightly'"):
        compare_versions("tiny", ["nightly"], tracking_uri=registry, **SMALL)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        compare_versions("tiny", ["1", "2"], tracking_uri=registry, margin=-0.1, **SMALL)
    # refs naming one version twice give it once, with both refs
    set_aliases(registry, challenger=3)
    (version,) = resolve_versions(client, "tiny", ["challenger", "3"])
    assert (version.version, version.refs) == (3, ("challenger", "3"))


def test_a_broken_version_scores_zero_and_the_comparison_goes_on(registry):
    set_aliases(registry, champion=None)
    result = compare_versions("tiny", ["4", "2"], tracking_uri=registry, move_alias=False, **SMALL)
    broken = result.table.filter(pl.col("model_version") == 4).row(0, named=True)
    assert (broken["mean_score"], broken["valid_challenges"], broken["mean_scaled_error"]) == (0.0, 0, None)
    verdicts = result.per_challenge.filter(pl.col("model_version") == 4)["verdict"].unique().to_list()
    assert verdicts == ["status:error"]
    assert result.decision.winner == 2 and result.decision.champion is None  # v4 named first, v2 best


# -- recorded challenges and on-chain incentive ---------------------------------------------------


def neurons_at(netuid: int, block: int, hotkeys: list[str], incentive: list[int]) -> pl.DataFrame:
    n = len(hotkeys)
    return pl.DataFrame({
        "netuid": [netuid] * n, "block": [block] * n, "uid": list(range(n)), "hotkey": hotkeys,
        "coldkey": [f"cold-{h}" for h in hotkeys], "alpha_stake": [1] * n, "tao_stake": [0] * n,
        "total_stake": [1] * n, "emission": [1_000 * i for i in incentive], "consensus": [0] * n,
        "incentive": incentive, "dividends": [0] * n, "validator_trust": [0] * n, "active": [True] * n,
        "validator_permit": [False] * n, "last_update": [block] * n, "block_at_registration": [1] * n,
        "axon_ip": [None] * n, "axon_port": [None] * n, "axon_protocol": [None] * n, "commit_block": [None] * n,
    }).cast(NEURONS.polars_schema())


def test_recorded_challenges_and_incentive_of_the_miners_that_served_each_version(registry, tmp_path):
    wh = Warehouse(tmp_path / "wh")
    series = generate_series(8, 400, seed=5)
    # two recorded epochs of subnet 1 with different horizons (each is scored as the validator did)
    epoch_a = make_challenges(series, "1:7", 1, 2_520, 20, CONTEXT_LEN, HORIZON, seed=3)
    epoch_b = make_challenges(series, "1:8", 1, 2_880, 10, CONTEXT_LEN, 24, seed=3)
    wh.write("challenges", pl.concat([epoch_a, epoch_b]))

    # hotA serves v1 from block 100 and v2 from block 250; hotB serves v2 from 150; hotC nothing.
    # The same hotkeys on subnet 2 serve nothing there.
    record_deployment(wh, 1, "hotA", "tiny", 1, 100)
    wh.write("model_deployments", deployments_frame([
        {"netuid": 1, "hotkey": "hotA", "block": 250, "model_name": "tiny", "model_version": 2},
        {"netuid": 1, "hotkey": "hotB", "block": 150, "model_name": "tiny", "model_version": 2},
    ]))
    hotkeys = ["hotA", "hotB", "hotC"]
    wh.write("neurons", pl.concat([neurons_at(1, 100, hotkeys, [100, 200, 300]),
                                   neurons_at(1, 200, hotkeys, [1_000, 3_000, 5]),
                                   neurons_at(1, 300, hotkeys, [65_535, 7, 9]),
                                   neurons_at(2, 300, hotkeys, [11, 11, 11])]))

    over_time = incentive_by_version(wh, netuid=1)
    assert over_time.select("model_version", "block", "miners", "incentive_sum_u16", "emission_rao").rows() == [
        (1, 100, 1, 100, 100_000),  # hotB has no deployment yet at block 100
        (1, 200, 1, 1_000, 1_000_000),
        (2, 200, 1, 3_000, 3_000_000),
        (2, 300, 2, 65_542, 65_542_000),  # hotA switched to v2 at block 250
    ]
    assert over_time.schema["incentive_sum_u16"] == pl.UInt64 and over_time.schema["emission_rao"] == pl.UInt64
    assert incentive_by_version(wh, netuid=2).height == 0

    set_aliases(registry, champion=1, challenger=2)
    result = compare_versions("tiny", ["champion", "challenger", "3"], tracking_uri=registry, warehouse=wh,
                              netuid=1, margin=0.01, move_alias=False)
    assert result.challenge_source == "warehouse" and result.challenge_count == 30 and result.epoch_count == 2
    assert sorted(result.query_ids.rows()) == sorted(
        pl.concat([epoch_a, epoch_b]).select("epoch_id", "query_id").rows())
    assert sorted(set(result.per_challenge.select("epoch_id", "query_id").rows())) == sorted(result.query_ids.rows())
    recorded = pl.concat([epoch_a, epoch_b])
    scores = dict(zip(result.table["model_version"], result.table["mean_score"], strict=True))
    assert scores[2] == pytest.approx(oracle_mean_score(recorded, seasonal_naive), rel=1e-12)
    incentive = result.table.select("model_version", "served_snapshots", "first_served_block",
                                    "last_served_block", "mean_incentive_u16").rows()
    assert incentive == [(1, 2, 100, 200, 550.0), (2, 2, 200, 300, (3_000 + 65_542) / 3), (3, None, None, None, None)]
    assert result.decision.promote and not result.promoted and champion_of(registry) == 1  # move_alias=False
    plots = {f.path for f in mlflow_client(registry).list_artifacts(result.run_id, "plots")}
    assert "plots/incentive_over_time.png" in plots

    # no recorded challenge matches subnet 2: the seeded set instead
    seeded = compare_versions("tiny", ["1", "2"], tracking_uri=registry, warehouse=wh, netuid=2, move_alias=False,
                              **SMALL)
    assert seeded.challenge_source == "seeded" and seeded.query_ids["epoch_id"].unique().to_list() == [
        "compare:seed=11"]


# -- the miner serves the new champion -----------------------------------------------------------


def test_miner_server_switches_to_the_new_champion_without_a_restart(registry):
    set_aliases(registry, champion=1, challenger=2)
    holder = ForecasterHolder("mlflow:models:/tiny@champion", tracking_uri=registry)
    context = [float(2 * (t % 24)) for t in range(CONTEXT_LEN)]  # seasonal naive: 0, 2, 4, ... by hand
    body = json.dumps({"epoch_id": "e", "challenges": [{"query_id": 5, "context": context, "horizon": 6}]}).encode()

    def ask(server: MinerServer) -> dict:
        headers = protocol.sign_request(body, ALICE, BOB.ss58_address)
        response = httpx.post(server.url + protocol.FORECAST_PATH, content=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    with MinerServer(create_app(BOB, holder, lambda: {ALICE.ss58_address})) as server:
        assert ask(server) == {"forecasts": [{"query_id": 5, "values": [0.0] * 6}]}
        decision = compare_versions("tiny", tracking_uri=registry, margin=0.01, **SMALL).decision
        assert decision.promote and decision.winner == 2
        assert holder.reload() is True and holder.version == "2"
        assert ask(server) == {"forecasts": [{"query_id": 5, "values": [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]}]}
        assert httpx.get(server.url + protocol.HEALTH_PATH).json()["model_version"] == "2"


# -- the Prefect flow ----------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_flow_returns_the_decision_and_the_table(registry, prefect_api):
    from flows.compare import compare_flow

    set_aliases(registry, champion=1, challenger=2)
    state = compare_flow(model_name="tiny", tracking_uri=registry, margin=0.01, return_state=True, **SMALL)
    assert state.is_completed()
    comparison = state.result()
    assert comparison.decision.winner == 2 and comparison.promoted and champion_of(registry) == 2
    assert comparison.table["model_version"].to_list() == [1, 2]
    assert comparison.table["refs"].to_list() == ["champion", "challenger"]
