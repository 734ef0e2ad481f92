"""Series that miners train on and validators challenge with (DESIGN.md §7)."""

import pyarrow as pa

from schemas.table import Table, register

SERIES = register(Table(
    name="series",
    grain="one observation of one time series",
    key=("series_id", "t"),
    schema=pa.schema([
        pa.field("series_id", pa.string(), nullable=False),
        pa.field("t", pa.int64(), nullable=False),  # step index, increasing within a series
        pa.field("value", pa.float64(), nullable=False),
    ]),
))
