"""Flow `compare`: score registered versions of a model, join on-chain incentive, log a comparison run,
move the `champion` alias (DESIGN.md §8). The work is tasks/training/compare.py; this file orchestrates.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.training.compare import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_CONTEXT_LEN,
    DEFAULT_HORIZON,
    DEFAULT_MARGIN,
    DEFAULT_N_CHALLENGES,
    DEFAULT_SEED,
    Comparison,
    compare_versions,
)


@task(name="compare-versions", cache_policy=NO_CACHE)
def run_comparison(**options) -> Comparison:
    return compare_versions(**options)


def summary_markdown(comparison: Comparison) -> str:
    columns = ["model_version", "refs", "aliases", "mean_score", "mean_scaled_error", "valid_challenges",
               "mean_incentive_u16"]
    rows = comparison.table.select(columns).rows()  # a handful of versions

    def cell(value) -> str:
        return "–" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)

    lines = [f"# compare {comparison.decision.model_name}", "",
             f"{comparison.challenge_count} challenges ({comparison.challenge_source}), "
             f"{comparison.epoch_count} epoch(s); MLflow run `{comparison.run_id}`", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    lines += ["", f"**Decision:** {comparison.decision.reason}. Champion alias moved: {comparison.promoted}."]
    return "\n".join(lines)


@flow(name="compare", log_prints=True)
def compare_flow(model_name: str, refs: list[str] | None = None, margin: float = DEFAULT_MARGIN,
                 tracking_uri: str | None = None, warehouse: str | None = None, netuid: int | None = None,
                 block_start: int | None = None, block_end: int | None = None, epoch_ids: list[str] | None = None,
                 seed: int = DEFAULT_SEED, n_challenges: int = DEFAULT_N_CHALLENGES,
                 context_len: int = DEFAULT_CONTEXT_LEN, horizon: int = DEFAULT_HORIZON,
                 move_alias: bool = True) -> Comparison:
    """Compare `refs` (aliases or version numbers; default champion and challenger) of `model_name`.

    Challenges: the validator's recorded ones in `warehouse` (path; None: no warehouse) for `netuid`,
    blocks and epochs, else a seeded set (`seed`, `n_challenges`, `context_len`, `horizon`). `margin`:
    absolute, in score units. `tracking_uri`: default $MLFLOW_TRACKING_URI, else the yumaflow setting.
    Returns the Comparison: `.decision`, `.table` (one row per version), `.run_id`, `.promoted`.
    """
    from warehouse import Warehouse

    comparison = run_comparison(
        model_name=model_name, refs=list(refs or [CHAMPION, CHALLENGER]), margin=margin, tracking_uri=tracking_uri,
        warehouse=Warehouse(Path(warehouse)) if warehouse else None, netuid=netuid, block_start=block_start,
        block_end=block_end, epoch_ids=epoch_ids, seed=seed, n_challenges=n_challenges, context_len=context_len,
        horizon=horizon, move_alias=move_alias)
    create_markdown_artifact(key="compare-" + re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-"),
                             markdown=summary_markdown(comparison), description=f"compare {model_name}")
    print(comparison.decision.reason)
    return comparison


compare = compare_flow  # the flow's name in prefect.yaml and the CLI
