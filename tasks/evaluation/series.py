"""Series the forecasting task challenges with (DESIGN.md §7): a seeded generator and a Parquet loader.

Both return the `series` table (schemas/training.py SERIES): one row per (series_id, t), sorted by
series then step, `t` increasing within a series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from schemas import SchemaError, validate_frame
from schemas.training import SERIES

# Seasonal periods in steps a generated series draws from (hourly data: a day, half a day, a week).
SEASON_PERIODS_STEPS = (24, 12, 168, 7)
MAX_REGIME_CHANGES = 3


class SeriesError(SchemaError):
    """A series file (or frame) is unusable; the message names the file, the series and the problem."""


def generate_series(n_series: int, length: int, seed: int) -> pl.DataFrame:
    """`n_series` synthetic series of `length` steps; the same arguments give the identical frame.

    value = level + trend + seasonalities + level shifts + noise, all drawn per series from `seed`:
    - level ~ U(−50, 50) and a scale ~ logU(0.1, 100), so series differ by orders of magnitude
      (scoring must be scale-robust, §7);
    - a linear trend of up to ±0.5 % of the scale per step;
    - 1 to 3 seasonalities with periods from SEASON_PERIODS_STEPS, amplitudes up to the scale;
    - 0 to MAX_REGIME_CHANGES regime changes at random steps: a level shift of up to ±2 scales and a
      new trend slope from that step on;
    - Gaussian noise of 5–30 % of the scale.
    One row per (series_id, t); series_id is "series-00000", ... in generation order.
    """
    if n_series < 1 or length < 1:
        raise ValueError(f"generate_series: n_series ({n_series}) and length ({length}) must be >= 1")
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)[None, :]  # [1, L]
    shape = (n_series, 1)
    scale = 10 ** rng.uniform(-1, 2, shape)
    level = rng.uniform(-50, 50, shape)
    slope = rng.uniform(-0.005, 0.005, shape) * scale
    values = level + slope * t

    n_seasons = rng.integers(1, 4, n_series)  # 1..3 per series
    for k in range(3):  # at most three seasonal components; columnar over all series
        period = rng.choice(SEASON_PERIODS_STEPS, shape)
        amplitude = rng.uniform(0.1, 1.0, shape) * scale * (n_seasons[:, None] > k)
        phase = rng.uniform(0, 2 * np.pi, shape)
        values = values + amplitude * np.sin(2 * np.pi * t / period + phase)

    for k in range(MAX_REGIME_CHANGES):
        present = rng.random(shape) < 0.5 if k else rng.random(shape) < 0.7
        at_step = rng.integers(0, length, shape)
        shift = rng.uniform(-2, 2, shape) * scale
        new_slope = rng.uniform(-0.005, 0.005, shape) * scale
        after = (t >= at_step) & present
        values = values + after * (shift + new_slope * (t - at_step))

    values = values + rng.normal(0.0, 1.0, (n_series, length)) * rng.uniform(0.05, 0.3, shape) * scale
    ids = np.array([f"series-{i:05d}" for i in range(n_series)])
    frame = pl.DataFrame({
        "series_id": np.repeat(ids, length),
        "t": np.tile(np.arange(length, dtype=np.int64), n_series),
        "value": values.reshape(-1),
    })
    return validate_frame(frame, SERIES)


def load_series(path: str | Path, *, min_length: int = 2) -> pl.DataFrame:
    """The series of a Parquet file, checked: columns `series_id` (string), `t` (any integer type,
    read as Int64), `value` (any float or integer type, read as Float64); no nulls, NaNs or
    infinities; one row per (series_id, t); every series at least `min_length` steps long.
    Extra columns are dropped. Raises SeriesError naming the file, the series and the problem."""
    path = Path(path)
    where = f"series file {path}"
    try:
        raw = pl.read_parquet(path)
    except FileNotFoundError:
        raise SeriesError(f"{where}: no such file") from None
    except Exception as err:  # a truncated or non-Parquet file
        raise SeriesError(f"{where}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    return check_series(raw, where=where, min_length=min_length)


def check_series(raw: pl.DataFrame, *, where: str = "series frame", min_length: int = 2) -> pl.DataFrame:
    """`load_series`'s checks on a frame already in memory; returns it as the SERIES table, sorted."""
    missing = [c for c in SERIES.columns if c not in raw.columns]
    if missing:
        raise SeriesError(f"{where}: missing column(s) {', '.join(missing)}; expected series_id (string), "
                          f"t (integer step), value (float); found {', '.join(raw.columns) or 'none'}")
    types = raw.schema
    if types["series_id"] not in (pl.String, pl.Categorical):
        raise SeriesError(f"{where}: column 'series_id' has type {types['series_id']}, expected a string")
    if not types["t"].is_integer():
        raise SeriesError(f"{where}: column 't' has type {types['t']}, expected an integer step index")
    if not types["value"].is_numeric():
        raise SeriesError(f"{where}: column 'value' has type {types['value']}, expected a float")
    frame = raw.select(pl.col("series_id").cast(pl.String), pl.col("t").cast(pl.Int64),
                       pl.col("value").cast(pl.Float64))
    for col in SERIES.columns:
        nulls = frame[col].null_count()
        if nulls:
            first = frame.filter(pl.col(col).is_null()).row(0, named=True)
            raise SeriesError(f"{where}: column {col!r} has {nulls} null value(s), first at series_id="
                              f"{first['series_id']!r} t={first['t']}")
    bad = frame.filter(~pl.col("value").is_finite())
    if bad.height:
        first = bad.row(0, named=True)
        raise SeriesError(f"{where}: column 'value' has {bad.height} NaN or infinite value(s), first "
                          f"{first['value']} at series_id={first['series_id']!r} t={first['t']}")
    dup = frame.group_by("series_id", "t").len().filter(pl.col("len") > 1).sort("series_id", "t")
    if dup.height:
        first = dup.row(0, named=True)
        raise SeriesError(f"{where}: duplicate (series_id, t): series_id={first['series_id']!r} "
                          f"t={first['t']} occurs {first['len']} times ({dup.height} duplicated keys)")
    lengths = frame.group_by("series_id").len().filter(pl.col("len") < min_length).sort("series_id")
    if lengths.height:
        first = lengths.row(0, named=True)
        raise SeriesError(f"{where}: series {first['series_id']!r} has {first['len']} step(s), fewer than "
                          f"the {min_length} required ({lengths.height} series too short)")
    if frame.height == 0:
        raise SeriesError(f"{where}: no rows")
    return validate_frame(frame.sort("series_id", "t"), SERIES, where=where)
