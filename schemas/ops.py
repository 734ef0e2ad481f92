"""Operational tables: what the pipelines have completed."""

import pyarrow as pa

from schemas.table import Table, register

INGEST_LOG = register(Table(
    name="ingest_log",
    grain="one completed (table, netuid, block range) write; backfills resume from it",
    key=("table_name", "netuid", "block_start", "block_end"),
    schema=pa.schema([
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("netuid", pa.uint16(), nullable=False),
        pa.field("block_start", pa.uint64(), nullable=False),
        pa.field("block_end", pa.uint64(), nullable=False),  # inclusive
        pa.field("rows", pa.uint64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("completed_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    ]),
))
