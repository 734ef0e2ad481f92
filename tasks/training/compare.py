"""Compare registered model versions the way the network judges them (DESIGN.md §1 miner, §8 `compare`).

    resolve_versions  refs ("champion", "challenger", "3") → registry versions of one model
    held_out_challenges  the validator's recorded challenges (warehouse table `challenges`), else a
                      seeded set from the same generator and cutter the validator uses
    score_versions    every version answers every challenge; the answers go through the validator's
                      own validate_forecasts and score_batch (tasks/evaluation), so a version's score
                      here is the score a validator would have given a miner serving it
    incentive_by_version  the on-chain incentive of the miners that served each version (neurons ⋈
                      model_deployments, as of each snapshot block)
    decide / promote  move the `champion` alias when the challenger wins by more than the margin
    log_comparison    an MLflow run in experiment "yumaflow-compare": params, metrics, table, plots

`compare_versions` runs them in that order; flows/compare.py is its Prefect flow.

The margin is ABSOLUTE, in score units: scores are 1/(1+scaled error) ∈ (0, 1], so margin 0.01 means
the challenger's mean score must exceed the champion's by more than 0.01 (a relative margin would make
the same improvement count more for a weak champion than for a strong one).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from neurons.forecasters import ForecasterNotFound, load_forecaster, resolve_tracking_uri
from schemas import validate_frame
from schemas.deployments import MODEL_DEPLOYMENTS
from schemas.evaluation import CHALLENGES, RESPONSES

log = logging.getLogger(__name__)

COMPARE_EXPERIMENT = "yumaflow-compare"
CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MARGIN = 0.01  # absolute, in score units (see the module docstring)
# The seeded held-out set: the epoch flow's series sizes and challenge shape (flows/epoch.py), and a
# seed of its own so the set is not the series a model was trained on with a small seed.
DEFAULT_SEED = 1_000_003
DEFAULT_N_CHALLENGES, DEFAULT_CONTEXT_LEN, DEFAULT_HORIZON = 256, 96, 24
SEEDED_SERIES_COUNT, SEEDED_SERIES_LENGTH = 32, 2048


# -- versions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """One registry version of `name`, with the refs that named it and the aliases it holds now."""

    name: str
    version: int
    refs: tuple[str, ...]
    aliases: tuple[str, ...]
    run_id: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def mlflow_client(tracking_uri: str | None = None):
    """A client bound to an explicit tracking URI: never the process-wide `mlflow.set_tracking_uri`."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _registered_model(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ForecasterNotFound(f"MLflow model {name!r} is not registered at {client.tracking_uri}; "
                                 f"registered models: {', '.join(known) or 'none'}") from None


def resolve_versions(client, name: str, refs: list[str] | tuple[str, ...]) -> list[ModelVersion]:
    """The versions `refs` name (an alias like "champion", or a version number like "3"), in the order
    first named; a version named twice appears once with both refs. ForecasterNotFound names the model,
    the ref and what the registry has."""
    if not refs:
        raise ValueError(f"resolve_versions: no versions of {name!r} to compare (refs is empty)")
    model = _registered_model(client, name)
    aliases_of: dict[int, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases_of.setdefault(int(version), []).append(alias)
    known_versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    resolved: dict[int, tuple[list[str], str | None]] = {}
    for ref in refs:
        ref = str(ref)
        if ref.isdigit():
            if int(ref) not in known_versions:
                raise ForecasterNotFound(f"MLflow model {name!r} has no version {ref}; versions: "
                                         f"{', '.join(map(str, known_versions)) or 'none'}")
            version = int(ref)
        elif ref in model.aliases:
            version = int(model.aliases[ref])
        else:
            raise ForecasterNotFound(f"MLflow model {name!r} has no alias {ref!r}; aliases: "
                                     f"{', '.join(f'{a}→{v}' for a, v in sorted(model.aliases.items())) or 'none'}")
        if version not in resolved:
            resolved[version] = ([], client.get_model_version(name, str(version)).run_id)
        resolved[version][0].append(ref)
    return [ModelVersion(name, version, tuple(named), tuple(sorted(aliases_of.get(version, []))), run_id)
            for version, (named, run_id) in resolved.items()]


# -- held-out challenges -------------------------------------------------------------------------


def recorded_challenges(warehouse, *, netuid: int | None = None, block_start: int | None = None,
                        block_end: int | None = None, epoch_ids: list[str] | None = None) -> pl.DataFrame:
    """The validator's recorded challenges (CHALLENGES rows), optionally of one subnet, a block range
    and some epochs; empty when none match."""
    predicates = [pl.col("epoch_id").is_in(epoch_ids)] if epoch_ids else []
    return warehouse.read("challenges", *predicates, netuid=netuid, block_start=block_start,
                          block_end=block_end).sort("epoch_id", "query_id")


def seeded_challenges(*, seed: int = DEFAULT_SEED, n_challenges: int = DEFAULT_N_CHALLENGES,
                      context_len: int = DEFAULT_CONTEXT_LEN, horizon: int = DEFAULT_HORIZON) -> pl.DataFrame:
    """A held-out set cut by the validator's own generator and cutter (one epoch "compare:seed=<seed>")."""
    from tasks.evaluation.challenges import make_challenges
    from tasks.evaluation.series import generate_series

    series = generate_series(SEEDED_SERIES_COUNT, SEEDED_SERIES_LENGTH, seed)
    return make_challenges(series, f"compare:seed={seed}", 0, 0, n_challenges, context_len, horizon, seed)


def held_out_challenges(warehouse=None, *, netuid: int | None = None, block_start: int | None = None,
                        block_end: int | None = None, epoch_ids: list[str] | None = None,
                        seed: int = DEFAULT_SEED, n_challenges: int = DEFAULT_N_CHALLENGES,
                        context_len: int = DEFAULT_CONTEXT_LEN, horizon: int = DEFAULT_HORIZON
                        ) -> tuple[pl.DataFrame, str]:
    """(challenges, source): the recorded ones where the warehouse has any ("warehouse"), else the
    seeded set ("seeded")."""
    if warehouse is not None:
        recorded = recorded_challenges(warehouse, netuid=netuid, block_start=block_start, block_end=block_end,
                                       epoch_ids=epoch_ids)
        if recorded.height:
            return recorded, "warehouse"
        log.info("no recorded challenges match (netuid=%s, blocks %s..%s, epochs=%s): using the seeded set",
                 netuid, block_start, block_end, epoch_ids)
    return seeded_challenges(seed=seed, n_challenges=n_challenges, context_len=context_len, horizon=horizon), "seeded"


# -- scoring -------------------------------------------------------------------------------------


def answer_challenges(forecaster, challenges: pl.DataFrame, miner_uid: int, hotkey: str) -> pl.DataFrame:
    """A forecaster's answers as RESPONSES rows, one batched call per (epoch, context length, horizon)
    as the miner server makes them. A call that raises answers status "error" for its whole group (what
    a validator sees from a miner whose model fails), so a broken version scores 0 instead of stopping
    the comparison."""
    groups = challenges.with_columns(pl.col("context").list.len().alias("context_len"))
    answers = []
    for (_, context_len, horizon), group in groups.group_by("epoch_id", "context_len", "horizon",
                                                            maintain_order=True):
        contexts = group["context"].list.to_array(int(context_len)).to_numpy()
        started = time.perf_counter()
        try:
            values = np.asarray(forecaster.forecast(contexts, int(horizon)), dtype=np.float64)
            if values.ndim != 2 or values.shape[0] != group.height:
                raise ValueError(f"forecast shape {values.shape} for {group.height} challenges")
            forecast, status, detail = pl.Series(values.tolist(), dtype=pl.List(pl.Float64)), "ok", None
        except Exception as exc:
            log.warning("%s failed on %d challenges: %s: %s", hotkey, group.height, type(exc).__name__, exc)
            forecast = pl.Series([None] * group.height, dtype=pl.List(pl.Float64))
            status, detail = "error", f"{type(exc).__name__}: {exc}"[:500]
        latency_ms = (time.perf_counter() - started) * 1000
        answers.append(group.select(
            "epoch_id",
            pl.lit(miner_uid, pl.UInt16).alias("miner_uid"),
            "query_id",
            pl.lit(hotkey).alias("hotkey"),
            pl.lit(status).alias("status"),
            pl.lit(latency_ms, pl.Float64).alias("latency_ms"),
            pl.lit(0, pl.UInt64).alias("payload_bytes"),  # never on the wire here
            forecast.alias("forecast"),
            pl.lit(detail, pl.String).alias("detail"),
        ))
    return validate_frame(pl.concat(answers), RESPONSES, where=f"answers of {hotkey}")


@dataclass
class VersionScores:
    """summary: one row per version (mean score, mean scaled error, score quantiles, forecast time).
    per_challenge: one row per (version, epoch_id, query_id): verdict, score, scaled error.
    by_step: one row per (version, horizon step): mean scaled absolute error at that step."""

    summary: pl.DataFrame
    per_challenge: pl.DataFrame
    by_step: pl.DataFrame


def score_versions(versions: list[ModelVersion], challenges: pl.DataFrame, *, tracking_uri: str | None = None,
                   season_length: int | None = None) -> VersionScores:
    """Score every version on the same challenges with the validator's code (module docstring).

    Each version plays a miner (miner_uid = its position in `versions`). Per epoch of challenges:
    validate_forecasts → score_batch, exactly as the epoch flow scores miners, with one exception:
    the copier rule is not applied — versions are not rivals, and two versions with identical answers
    must both keep their score. A version's mean_score is the mean of its per-challenge scores over
    all challenges (= the validator's batch score when there is one epoch); mean_scaled_error and the
    error by step are over its valid answers only.
    """
    import torch

    from tasks.evaluation.scoring import DEFAULT_SEASON_LENGTH, challenge_tensors, score_batch
    from tasks.evaluation.validate import validate_forecasts

    if not versions:
        raise ValueError("score_versions: no versions to score")
    if challenges.height == 0:
        raise ValueError("score_versions: no challenges to score on")
    challenges = validate_frame(challenges, CHALLENGES, where="held-out challenges")
    season_length = season_length or DEFAULT_SEASON_LENGTH
    responses, forecast_ms = [], []
    for uid, version in enumerate(versions):
        forecaster = load_forecaster(f"mlflow:{version.uri}", tracking_uri=tracking_uri)
        started = time.perf_counter()
        responses.append(answer_challenges(forecaster, challenges, uid, f"{version.name}/v{version.version}"))
        forecast_ms.append((time.perf_counter() - started) * 1000)
    responses = pl.concat(responses)

    per_challenge, by_step = [], []
    for (epoch_id,), epoch in challenges.group_by("epoch_id", maintain_order=True):
        epoch = epoch.sort("query_id")
        batch = validate_forecasts(responses.filter(pl.col("epoch_id") == epoch_id), epoch)
        truth, scale = challenge_tensors(epoch, season_length)
        error, challenge_score, _ = score_batch(batch.forecasts, batch.valid, truth, scale)
        step_error = (batch.forecasts - truth[None]).abs() / scale[None, :, None]  # [M, C, H]
        step_error = torch.where(batch.valid[:, :, None], step_error, float("nan"))
        n_versions, n_challenges, horizon = step_error.shape
        per_challenge.append(pl.DataFrame({
            "miner_uid": np.repeat(np.asarray(batch.miner_uids, dtype=np.uint16), n_challenges),
            "epoch_id": [epoch_id] * (n_versions * n_challenges),
            "query_id": np.tile(np.asarray(batch.query_ids, dtype=np.uint32), n_versions),
            "score": challenge_score.reshape(-1).numpy(),
            "scaled_error": error.reshape(-1).numpy(),
        }).join(batch.verdicts, on=["miner_uid", "query_id"], how="left"))
        by_step.append(pl.DataFrame({
            "miner_uid": np.repeat(np.asarray(batch.miner_uids, dtype=np.uint16), horizon),
            "step": np.tile(np.arange(1, horizon + 1, dtype=np.uint16), n_versions),
            "error_sum": torch.nansum(step_error, dim=1).reshape(-1).numpy(),
            "answers": batch.valid.sum(dim=1, keepdim=True).expand(n_versions, horizon).reshape(-1).numpy()
                .astype(np.uint32),
        }))

    identity = pl.DataFrame({
        "miner_uid": pl.Series(range(len(versions)), dtype=pl.UInt16),
        "model_name": [v.name for v in versions],
        "model_version": pl.Series([v.version for v in versions], dtype=pl.UInt32),
    })
    per_challenge = (pl.concat(per_challenge).with_columns(pl.col("scaled_error").fill_nan(None))
                     .join(identity, on="miner_uid").drop("miner_uid")
                     .select("model_name", "model_version", "epoch_id", "query_id", "verdict", "score",
                             "scaled_error"))
    by_step = (pl.concat(by_step).group_by("miner_uid", "step")
               .agg((pl.col("error_sum").sum() / pl.col("answers").sum()).alias("mean_scaled_error"),
                    pl.col("answers").sum())
               .join(identity, on="miner_uid").sort("miner_uid", "step")
               .select("model_name", "model_version", "step", "mean_scaled_error", "answers"))
    summary = (per_challenge.group_by("model_name", "model_version", maintain_order=True).agg(
        pl.len().cast(pl.UInt32).alias("challenges"),
        (pl.col("verdict") == "ok").sum().cast(pl.UInt32).alias("valid_challenges"),
        pl.col("score").mean().alias("mean_score"),
        pl.col("scaled_error").mean().alias("mean_scaled_error"),
        pl.col("score").quantile(0.1, "linear").alias("score_p10"),
        pl.col("score").median().alias("score_median"),
        pl.col("score").quantile(0.9, "linear").alias("score_p90"),
    ).with_columns(pl.Series("forecast_ms", forecast_ms, dtype=pl.Float64)))
    return VersionScores(summary, per_challenge, by_step)


# -- on-chain incentive --------------------------------------------------------------------------


def deployments_frame(rows: list[dict]) -> pl.DataFrame:
    """MODEL_DEPLOYMENTS rows from dicts (netuid, hotkey, block, model_name, model_version), checked."""
    frame = pl.DataFrame(rows, schema=MODEL_DEPLOYMENTS.polars_schema())
    return validate_frame(frame, MODEL_DEPLOYMENTS)


def record_deployment(warehouse, netuid: int, hotkey: str, model_name: str, model_version: int, block: int):
    """Record that miner `hotkey` serves `model_name` version `model_version` from `block` on."""
    frame = deployments_frame([{"netuid": netuid, "hotkey": hotkey, "block": block, "model_name": model_name,
                                "model_version": model_version}])
    return warehouse.write(MODEL_DEPLOYMENTS.name, frame)


def incentive_by_version(warehouse, deployments: pl.DataFrame | None = None, *, netuid: int | None = None,
                         block_start: int | None = None, block_end: int | None = None) -> pl.DataFrame:
    """One row per (model_name, model_version, netuid, block) of a neurons snapshot where some miner
    served that version: miners (count), incentive_sum_u16 (UInt64, the sum of the miners' on-chain
    u16 incentive), incentive_mean_u16 (Float64, derived), emission_rao (UInt64, summed over them).

    A miner serves, at a snapshot block, the version of its latest deployment at or before that block
    (`deployments` as MODEL_DEPLOYMENTS rows; default: the warehouse's table). Snapshots before a
    hotkey's first deployment count for no version.
    """
    if deployments is None:
        deployments = warehouse.read(MODEL_DEPLOYMENTS.name, netuid=netuid)
    deployments = validate_frame(deployments, MODEL_DEPLOYMENTS, where="incentive_by_version")
    neurons = warehouse.read("neurons", netuid=netuid, block_start=block_start, block_end=block_end,
                             columns=["netuid", "block", "hotkey", "incentive", "emission"])
    served = (neurons.sort("block")
              .join_asof(deployments.rename({"block": "deployed_at_block"}).sort("deployed_at_block"),
                         left_on="block", right_on="deployed_at_block", by=["netuid", "hotkey"],
                         strategy="backward", check_sortedness=False)  # both sorted by block just above
              .filter(pl.col("model_name").is_not_null()))
    return (served.group_by("model_name", "model_version", "netuid", "block")
            .agg(pl.len().cast(pl.UInt32).alias("miners"),
                 pl.col("incentive").cast(pl.UInt64).sum().alias("incentive_sum_u16"),
                 pl.col("emission").sum().alias("emission_rao"))
            .with_columns((pl.col("incentive_sum_u16") / pl.col("miners")).alias("incentive_mean_u16"))
            .sort("model_name", "model_version", "netuid", "block"))


def incentive_summary(over_time: pl.DataFrame) -> pl.DataFrame:
    """One row per served version: snapshots served, first and last block, mean incentive per miner (u16 units)."""
    return over_time.group_by("model_name", "model_version").agg(
        pl.len().cast(pl.UInt32).alias("served_snapshots"),
        pl.col("block").min().alias("first_served_block"),
        pl.col("block").max().alias("last_served_block"),
        (pl.col("incentive_sum_u16").sum() / pl.col("miners").sum()).alias("mean_incentive_u16"),
    )


# -- the decision --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the comparison concluded. `promote`: move the champion alias to `winner`."""

    model_name: str
    champion: int | None  # the version holding the alias before
    challenger: int | None  # the best-scoring other version
    winner: int
    promote: bool
    margin: float
    score_gain: float | None  # challenger mean score − champion mean score
    reason: str


def decide(table: pl.DataFrame, margin: float = DEFAULT_MARGIN) -> Decision:
    """The champion (the row with is_champion) against the best other version by mean_score.

    The challenger wins when challenger − champion > margin (absolute, module docstring); a tie of
    scores, or a gain within the margin, keeps the champion. With no champion among the rows, the best
    version (highest mean score, then highest version) becomes champion without a margin."""
    if margin < 0:
        raise ValueError(f"decide: margin must be >= 0, got {margin}")
    if table.height == 0:
        raise ValueError("decide: the comparison table has no versions")
    names = table["model_name"].unique().to_list()
    if len(names) != 1:
        raise ValueError(f"decide: versions of one model expected, got {sorted(names)}")
    ranked = table.sort(["mean_score", "model_version"], descending=True)
    champions = ranked.filter(pl.col("is_champion"))
    others = ranked.filter(~pl.col("is_champion"))
    name = names[0]
    if champions.height == 0:
        best = ranked.row(0, named=True)
        return Decision(name, None, best["model_version"], best["model_version"], True, margin, None,
                        f"no champion yet: version {best['model_version']} scores best "
                        f"({best['mean_score']:.6f}) and becomes champion")
    champion = champions.row(0, named=True)
    if others.height == 0:
        return Decision(name, champion["model_version"], None, champion["model_version"], False, margin, None,
                        "no other version to compare with the champion")
    challenger = others.row(0, named=True)
    gain = challenger["mean_score"] - champion["mean_score"]
    wins = gain > margin
    verdict = "beats" if wins else "does not beat"
    return Decision(name, champion["model_version"], challenger["model_version"],
                    challenger["model_version"] if wins else champion["model_version"], wins, margin, gain,
                    f"challenger version {challenger['model_version']} ({challenger['mean_score']:.6f}) {verdict} "
                    f"champion version {champion['model_version']} ({champion['mean_score']:.6f}) by more than "
                    f"{margin} (gain {gain:+.6f})")


def promote(client, decision: Decision) -> bool:
    """Move the champion alias to the winner when the decision says so; True when it moved."""
    if not decision.promote:
        return False
    client.set_registered_model_alias(decision.model_name, CHAMPION, str(decision.winner))
    log.info("model %s: champion alias now on version %d (was %s)", decision.model_name, decision.winner,
             decision.champion)
    return True


# -- the MLflow run ------------------------------------------------------------------------------


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # a sqlite store keeps its artifacts beside the database, wherever the process runs (MLflow's own
    # default is ./mlruns under the working directory of whoever created the experiment)
    uri = client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _plot_error_by_step(by_step: pl.DataFrame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for (version,), rows in by_step.group_by("model_version", maintain_order=True):
        axes.plot(rows["step"].to_numpy(), rows["mean_scaled_error"].to_numpy(), marker=".", label=f"v{version}")
    axes.set(xlabel="horizon step", ylabel="mean scaled absolute error", title="Error by horizon step")
    if (by_step["mean_scaled_error"] > 0).all():  # versions' errors can differ by orders of magnitude
        axes.set_yscale("log")
    axes.legend()
    figure.savefig(path, dpi=100)


def _plot_score_distribution(per_challenge: pl.DataFrame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    groups = per_challenge.group_by("model_version", maintain_order=True).agg("score")
    axes.boxplot([s.to_numpy() for s in groups["score"]], tick_labels=[f"v{v}" for v in groups["model_version"]])
    axes.set(xlabel="model version", ylabel="challenge score 1/(1+error)", title="Score distribution")
    figure.savefig(path, dpi=100)


def _plot_incentive(over_time: pl.DataFrame, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    per_block = (over_time.group_by("model_version", "block")
                 .agg((pl.col("incentive_sum_u16").sum() / pl.col("miners").sum()).alias("incentive"))
                 .sort("model_version", "block"))
    for (version,), rows in per_block.group_by("model_version", maintain_order=True):
        axes.plot(rows["block"].to_numpy(), rows["incentive"].to_numpy(), marker=".", label=f"v{version}")
    axes.set(xlabel="block", ylabel="mean incentive of its miners (u16)", title="On-chain incentive by version")
    axes.legend()
    figure.savefig(path, dpi=100)


def log_comparison(client, comparison: Comparison, *, experiment: str = COMPARE_EXPERIMENT,
                   params: dict | None = None) -> str:
    """Record the comparison as a finished run: params, per-version metrics, the table (comparison.json,
    shown by the MLflow UI; plus CSVs) and PNG plots under plots/. Returns the run id."""
    from mlflow.entities import Metric, Param, RunTag

    decision = comparison.decision
    table = comparison.table
    run = client.create_run(_experiment_id(client, experiment), run_name=f"{decision.model_name} compare",
                            tags={"model_name": decision.model_name})
    run_id = run.info.run_id
    now_ms = int(time.time() * 1000)
    all_params = {"model_name": decision.model_name, "margin": decision.margin,
                  "versions": ",".join(str(v) for v in table["model_version"]),
                  "refs": ";".join(table["refs"]), "challenge_source": comparison.challenge_source,
                  "challenge_count": comparison.challenge_count, "epochs": comparison.epoch_count,
                  **(params or {})}
    metrics = []
    for row in table.iter_rows(named=True):  # a handful of versions
        prefix = f"v{row['model_version']}"
        for column in ("mean_score", "mean_scaled_error", "score_median", "valid_challenges", "mean_incentive_u16"):
            if row.get(column) is not None:
                metrics.append(Metric(f"{prefix}.{column}", float(row[column]), now_ms, 0))
    for row in comparison.by_step.drop_nulls("mean_scaled_error").iter_rows(named=True):
        metrics.append(Metric(f"v{row['model_version']}.scaled_error_by_step", float(row["mean_scaled_error"]),
                              now_ms, int(row["step"])))
    tags = [RunTag(k, str(v)) for k, v in asdict(decision).items()]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in all_params.items()], tags=tags)
    client.log_table(run_id, data=table.to_pandas(), artifact_file="comparison.json")
    with tempfile.TemporaryDirectory(prefix="yumaflow-compare-") as tmp:
        out = Path(tmp)
        table.write_csv(out / "comparison.csv")
        comparison.per_challenge.write_csv(out / "scores_per_challenge.csv")
        client.log_artifact(run_id, str(out / "comparison.csv"))
        client.log_artifact(run_id, str(out / "scores_per_challenge.csv"))
        plots = out / "plots"
        plots.mkdir()
        _plot_error_by_step(comparison.by_step, plots / "error_by_horizon.png")
        _plot_score_distribution(comparison.per_challenge, plots / "score_distribution.png")
        if comparison.incentive.height:
            comparison.incentive.write_csv(out / "incentive_over_time.csv")
            client.log_artifact(run_id, str(out / "incentive_over_time.csv"))
            _plot_incentive(comparison.incentive, plots / "incentive_over_time.png")
        client.log_artifacts(run_id, str(plots), artifact_path="plots")
    client.set_terminated(run_id)
    return run_id


# -- everything in order -------------------------------------------------------------------------


@dataclass
class Comparison:
    """table: one row per version — identity, refs and aliases, offline scores, on-chain incentive
    (null for versions no miner served). per_challenge, by_step: see VersionScores. incentive: see
    incentive_by_version."""

    decision: Decision
    table: pl.DataFrame
    per_challenge: pl.DataFrame
    by_step: pl.DataFrame
    incentive: pl.DataFrame
    challenge_source: str
    challenge_count: int
    epoch_count: int
    query_ids: pl.DataFrame = field(repr=False)  # (epoch_id, query_id) of the challenges used
    run_id: str | None = None
    promoted: bool = False


def compare_versions(model_name: str, refs: list[str] | tuple[str, ...] = (CHAMPION, CHALLENGER), *,
                     margin: float = DEFAULT_MARGIN, tracking_uri: str | None = None, warehouse=None,
                     netuid: int | None = None, block_start: int | None = None, block_end: int | None = None,
                     epoch_ids: list[str] | None = None, seed: int = DEFAULT_SEED,
                     n_challenges: int = DEFAULT_N_CHALLENGES, context_len: int = DEFAULT_CONTEXT_LEN,
                     horizon: int = DEFAULT_HORIZON, move_alias: bool = True,
                     experiment: str = COMPARE_EXPERIMENT) -> Comparison:
    """Resolve → challenges → score → incentive → decide → log the run → move the alias.

    "champion" among `refs` is skipped while the model has no champion alias (the first comparison);
    every other ref must resolve. With `move_alias=False` the decision is logged but not applied."""
    if margin < 0:
        raise ValueError(f"compare: margin must be >= 0, got {margin}")
    client = mlflow_client(tracking_uri)
    uri = client.tracking_uri
    if CHAMPION in refs and CHAMPION not in _registered_model(client, model_name).aliases:
        log.info("model %s has no champion alias yet: comparing %s only", model_name, refs)
        refs = [r for r in refs if r != CHAMPION]
    versions = resolve_versions(client, model_name, refs)
    challenges, source = held_out_challenges(warehouse, netuid=netuid, block_start=block_start,
                                             block_end=block_end, epoch_ids=epoch_ids, seed=seed,
                                             n_challenges=n_challenges, context_len=context_len, horizon=horizon)
    scores = score_versions(versions, challenges, tracking_uri=uri)

    incentive = pl.DataFrame(schema={"model_name": pl.String, "model_version": pl.UInt32, "netuid": pl.UInt16,
                                     "block": pl.UInt64, "miners": pl.UInt32, "incentive_sum_u16": pl.UInt64,
                                     "emission_rao": pl.UInt64, "incentive_mean_u16": pl.Float64})
    if warehouse is not None:
        incentive = incentive_by_version(warehouse, netuid=netuid, block_start=block_start, block_end=block_end)
    identity = pl.DataFrame({
        "model_name": [v.name for v in versions],
        "model_version": pl.Series([v.version for v in versions], dtype=pl.UInt32),
        "refs": [",".join(v.refs) for v in versions],
        "aliases": [",".join(v.aliases) for v in versions],
        "is_champion": [CHAMPION in v.aliases for v in versions],
        "run_id": [v.run_id for v in versions],
    })
    table = (identity.join(scores.summary, on=["model_name", "model_version"], how="left")
             .join(incentive_summary(incentive), on=["model_name", "model_version"], how="left"))
    decision = decide(table, margin)
    comparison = Comparison(decision, table, scores.per_challenge, scores.by_step, incentive, source,
                            challenges.height, challenges["epoch_id"].n_unique(),
                            challenges.select("epoch_id", "query_id"))
    params = {"seed": seed} if source == "seeded" else {"netuid": netuid, "block_start": block_start,
                                                        "block_end": block_end}
    comparison.run_id = log_comparison(client, comparison, experiment=experiment, params=params)
    if move_alias:
        comparison.promoted = promote(client, decision)
        client.set_tag(comparison.run_id, "champion_moved", str(comparison.promoted))
    log.info("compare %s: %s", model_name, decision.reason)
    return comparison


__all__ = ["CHALLENGER", "CHAMPION", "COMPARE_EXPERIMENT", "DEFAULT_MARGIN", "Comparison", "Decision",
           "ModelVersion", "VersionScores", "answer_challenges", "compare_versions", "decide", "deployments_frame",
           "held_out_challenges", "incentive_by_version", "incentive_summary", "log_comparison", "mlflow_client",
           "promote", "record_deployment", "recorded_challenges", "resolve_versions", "score_versions",
           "seeded_challenges"]
