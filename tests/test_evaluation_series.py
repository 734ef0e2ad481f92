"""The series generator and the series-file loader (tasks/evaluation/series.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from schemas import validate_frame
from schemas.training import SERIES
from tasks.evaluation.series import SEASON_PERIODS_STEPS, SeriesError, generate_series, load_series

LENGTH = 1008  # a multiple of every seasonal period: each falls on an exact FFT bin


def test_same_seed_same_series_other_seed_other_series():
    first = generate_series(6, 300, seed=42)
    assert first.equals(generate_series(6, 300, seed=42))
    assert not first.equals(generate_series(6, 300, seed=43))
    validate_frame(first, SERIES)
    assert first.height == 6 * 300
    assert first.group_by("series_id").agg(pl.col("t").min().alias("lo"), pl.col("t").max().alias("hi"),
                                           pl.len()).select(pl.col("lo").max(), pl.col("hi").min(),
                                                            pl.col("len").min()).row(0) == (0, 299, 300)


def test_series_have_seasonality_scales_and_level_shifts():
    series = generate_series(30, LENGTH, seed=5)
    seasonal_peak, jump_ratio, std = [], [], []
    for _, rows in series.group_by("series_id", maintain_order=True):
        v = rows["value"].to_numpy()
        steps = np.arange(LENGTH)
        detrended = v - np.polyval(np.polyfit(steps, v, 1), steps)
        power = np.abs(np.fft.rfft(detrended)) ** 2
        seasonal_bins = [LENGTH // period for period in SEASON_PERIODS_STEPS]
        seasonal_peak.append(power[seasonal_bins].max() / np.median(power[1:]))
        diffs = np.abs(np.diff(v))
        jump_ratio.append(diffs.max() / np.median(diffs))
        std.append(v.std())
    assert min(seasonal_peak) > 50  # every series has a seasonal component well above the noise floor
    assert sum(r > 8 for r in jump_ratio) >= 3  # regime changes: some steps jump far beyond the noise
    assert max(std) / min(std) > 100  # magnitudes differ by orders: scoring must be scale-free


def write(tmp_path, frame: pl.DataFrame, name="series.parquet"):
    path = tmp_path / name
    frame.write_parquet(path)
    return path


def good_frame() -> pl.DataFrame:
    return pl.DataFrame({"series_id": ["a"] * 4 + ["b"] * 4, "t": [0, 1, 2, 3] * 2,
                         "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})


def test_load_series_reads_a_good_file_sorted_with_contract_types(tmp_path):
    frame = good_frame().with_columns(pl.col("t").cast(pl.Int32), pl.lit("x").alias("extra")).reverse()
    loaded = load_series(write(tmp_path, frame))
    assert loaded.schema == SERIES.polars_schema()
    assert loaded["series_id"].to_list() == ["a"] * 4 + ["b"] * 4
    assert loaded["value"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.with_columns(pl.when(pl.col("t") == 2).then(float("nan")).otherwise("value").alias("value")),
     "NaN or infinite value(s), first nan at series_id='a' t=2"),
    (lambda f: f.with_columns(pl.when((pl.col("t") == 1) & (pl.col("series_id") == "b")).then(float("inf"))
                              .otherwise("value").alias("value")),
     "NaN or infinite value(s), first inf at series_id='b' t=1"),
    (lambda f: f.drop("t"), "missing column(s) t"),
    (lambda f: f.rename({"value": "y"}), "missing column(s) value"),
    (lambda f: f.with_columns(pl.col("value").cast(pl.String)), "column 'value' has type String, expected a float"),
    (lambda f: f.with_columns(pl.col("t").cast(pl.Float64)), "column 't' has type Float64, expected an integer"),
    (lambda f: f.with_columns(pl.when(pl.col("t") == 3).then(None).otherwise("value").alias("value")),
     "column 'value' has 2 null value(s), first at series_id='a' t=3"),
    (lambda f: f.with_columns(pl.when(pl.col("t") == 3).then(2).otherwise("t").alias("t")),
     "duplicate (series_id, t): series_id='a' t=2 occurs 2 times"),
    (lambda f: f.filter((pl.col("series_id") == "a") | (pl.col("t") < 1)),
     "series 'b' has 1 step(s), fewer than the 2 required"),
])
def test_bad_series_files_are_rejected_naming_file_and_problem(tmp_path, damage, message):
    path = write(tmp_path, damage(good_frame()))
    with pytest.raises(SeriesError) as err:
        load_series(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unreadable_and_missing_files(tmp_path):
    not_parquet = tmp_path / "series.parquet"
    not_parquet.write_text("series_id,t,value\na,0,1.0\n")
    with pytest.raises(SeriesError, match="not a readable Parquet file"):
        load_series(not_parquet)
    with pytest.raises(SeriesError, match="no such file"):
        load_series(tmp_path / "absent.parquet")
    with pytest.raises(SeriesError, match="fewer than the 10 required"):
        load_series(write(tmp_path, good_frame(), "short.parquet"), min_length=10)
