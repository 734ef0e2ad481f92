"""The task plug-in interface: what a subnet's task gives the validator's epoch flow.

The epoch flow (flows/epoch.py) knows no task by name. A task is a class with these members, found by
its name in the Python entry-point group `yumaflow.tasks` (pyproject.toml of the package that ships it):

    [project.entry-points."yumaflow.tasks"]
    forecast = "tasks.evaluation.forecast_task:ForecastTask"

- `name`, `path`: the task's name and the HTTP path its miners serve (POST, btauth/1-signed).
- `make_challenges(epoch_id, netuid, block, options) -> challenges` (CHALLENGES rows): seeded, so an
  epoch's challenges can be made again; the flow records them. `truth` may be null and `truth_block` set:
  the truth of that challenge arrives at that block (prediction subnets).
- `request_body(challenges) -> bytes`: how a challenge batch is sent (without the truth). The answer's
  wire format is the forecasting protocol's {"forecasts": [{"query_id", "values"}]} (tasks/evaluation/
  query.py parses and records it, keeping malformed answers as such).
- `settle(challenges, head_block) -> challenges`: the challenges whose truth has arrived by
  `head_block`, with `truth` filled (others left out). A task whose truth is known at once returns them
  unchanged.
- `validate(responses, challenges, miners) -> ForecastBatch`: every (miner, challenge) answer judged;
  anything malformed is invalid (scores 0), nothing raises on a miner's input.
- `score(batch, challenges) -> frame`: one row per miner (miner_uid, hotkey, batch_score in [0, 1]),
  computed over miners × challenges as one tensor.

The flow stores challenges, answers and scores in the warehouse exactly as for any task, scores a task
whose truth is known in the epoch that asked, and settles a delayed task's epochs when their truth has
come (`settle`, then `validate` and `score` on the answers recorded then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

import polars as pl

from tasks.evaluation.challenges import request_body as forecast_request_body
from tasks.evaluation.validate import ForecastBatch, validate_forecasts

ENTRY_POINT_GROUP = "yumaflow.tasks"
DEFAULT_TASK = "forecast"


@dataclass(frozen=True)
class ChallengeOptions:
    """What an epoch asks of a task's challenge maker (every task reads what applies to it)."""

    seed: int = 0
    n_challenges: int = 16
    context_len: int = 96
    horizon: int = 24
    series_path: str | None = None
    extra: dict = field(default_factory=dict)


class Task:
    """The base of task plug-ins: the defaults of the members above (a task overrides what differs)."""

    name = "task"
    path = "/forecast"

    def make_challenges(self, epoch_id: str, netuid: int, block: int, options: ChallengeOptions) -> pl.DataFrame:
        raise NotImplementedError(f"task {self.name!r} makes no challenges")

    def request_body(self, challenges: pl.DataFrame) -> bytes:
        return forecast_request_body(challenges)

    def settle(self, challenges: pl.DataFrame, head_block: int) -> pl.DataFrame:
        return challenges

    def validate(self, responses: pl.DataFrame, challenges: pl.DataFrame,
                 miners: pl.DataFrame | None = None) -> ForecastBatch:
        return validate_forecasts(responses, challenges, miners=miners)

    def score(self, batch: ForecastBatch, challenges: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError(f"task {self.name!r} has no scorer")


def available_tasks() -> dict[str, str]:
    """{name: "module:Class"} of every task plug-in installed in this environment."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_task(name: str) -> Task:
    """The task plug-in `name`, from the `yumaflow.tasks` entry points; LookupError naming the installed ones."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(sorted(available_tasks())) or "none"
        raise LookupError(f"no task plug-in named {name!r} (entry-point group {ENTRY_POINT_GROUP}); installed: "
                          f"{known}")
    task = found[0].load()()
    if not isinstance(task, Task):
        raise TypeError(f"task plug-in {name!r} ({found[0].value}) is not a tasks.evaluation.plugin.Task")
    return task
