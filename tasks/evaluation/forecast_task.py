"""The built-in task plug-in `forecast` (DESIGN.md §7): time-series forecasting with the truth held back.

Challenges are windows of seeded series (or a Parquet file of series): a context, a horizon and the
truth that follows, known at once; scoring is the MASE-like batch score of tasks/evaluation/scoring.py.
"""

from __future__ import annotations

import polars as pl

from tasks.evaluation.challenges import make_challenges
from tasks.evaluation.plugin import ChallengeOptions, Task
from tasks.evaluation.protocol import FORECAST_PATH
from tasks.evaluation.scoring import score_miners
from tasks.evaluation.series import generate_series, load_series

SERIES_COUNT, SERIES_LENGTH = 32, 2048


class ForecastTask(Task):
    name = "forecast"
    path = FORECAST_PATH

    def make_challenges(self, epoch_id: str, netuid: int, block: int, options: ChallengeOptions) -> pl.DataFrame:
        series = (load_series(options.series_path) if options.series_path
                  else generate_series(SERIES_COUNT, SERIES_LENGTH, options.seed))
        return make_challenges(series, epoch_id, netuid, block, options.n_challenges, options.context_len,
                               options.horizon, options.seed)

    def score(self, batch, challenges: pl.DataFrame) -> pl.DataFrame:
        return score_miners(batch, challenges)
