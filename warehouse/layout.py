"""Where each table's rows live on disk, and which rows a write replaces (DESIGN.md §4).

Two choices per table:

- `partition_by`: the hive directories under `root/<table>/`. Chain and epoch tables go by `netuid`
  and `block_bucket = block // 7200` (7200 blocks of 12 s = one day, 20 tempos of 360 blocks), so a
  partition holds about a day of one subnet and compaction leaves one file per subnet-day. The
  validator's evaluation tables go by `epoch_id` (every one of them carries it; `responses` has no
  netuid), `ingest_log` by the table it describes, `series` is one flat directory.
- `scope`: the unit of replacement. A write replaces, in full, every scope (e.g. one `(netuid, block)`
  snapshot of `neurons`) that occurs in its frame, and touches nothing else. A re-run backfill chunk
  therefore replaces exactly its own earlier output, and two chunks with different blocks never delete
  each other's rows. A scope is a whole snapshot, not a row: a re-read snapshot with fewer weight
  edges (a validator cleared its weights) must not keep the old edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import polars as pl

from schemas.table import Table

BLOCKS_PER_BUCKET = 7200  # one day of 12 s blocks

# Derived partition columns: name -> expression over the table's own columns.
DERIVED = {"block_bucket": pl.col("block") // BLOCKS_PER_BUCKET}


@dataclass(frozen=True)
class Layout:
    partition_by: tuple[str, ...]
    scope: tuple[str, ...]


_CHAIN_SNAPSHOT = Layout(("netuid", "block_bucket"), ("netuid", "block"))
_PER_MECHANISM = Layout(("netuid", "block_bucket"), ("netuid", "mechid", "block"))
_VARIANT = Layout(("variant", "netuid", "block_bucket"), ("variant", "netuid", "mechid", "block"))
_PER_EPOCH = Layout(("epoch_id",), ("epoch_id",))

LAYOUTS: dict[str, Layout] = {
    "blocks": Layout(("block_bucket",), ("block",)),
    "subnets": _CHAIN_SNAPSHOT,
    "neurons": _CHAIN_SNAPSHOT,
    "weights": _PER_MECHANISM,
    "bonds": _PER_MECHANISM,
    "epochs": _PER_MECHANISM,
    "epoch_neurons": _PER_MECHANISM,
    "epoch_weights": _PER_MECHANISM,
    "epoch_bonds": _PER_MECHANISM,
    "epoch_neurons_out": _PER_MECHANISM,
    "epoch_bonds_out": _PER_MECHANISM,
    "epoch_results": _VARIANT,
    "epoch_result_bonds": _VARIANT,
    "challenges": _PER_EPOCH,
    "responses": _PER_EPOCH,
    "scores": _PER_EPOCH,
    "weight_submissions": Layout(("netuid",), ("netuid", "block", "validator_hotkey")),
    "series": Layout((), ("series_id",)),
    # mark_complete rewrites the whole log of one (table, netuid): one small file each.
    "ingest_log": Layout(("table_name",), ("table_name", "netuid")),
}


def layout_of(table: Table) -> Layout:
    """The table's layout; a table added to schemas/ without one is unpartitioned, replaced by key."""
    layout = LAYOUTS.get(table.name, Layout((), table.key))
    for col in layout.scope:
        if col not in table.columns:
            raise RuntimeError(f"warehouse layout of {table.name!r}: scope column {col!r} is not in "
                               f"its schema")
    for col in layout.partition_by:
        # A scope must fall in one partition, so that replacing it touches one directory.
        if col not in layout.scope and not (col == "block_bucket" and "block" in layout.scope):
            raise RuntimeError(f"warehouse layout of {table.name!r}: partition column {col!r} is not "
                               f"determined by its scope {layout.scope}")
    return layout


def with_partition_columns(frame: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    derived = [DERIVED[c].alias(c) for c in layout.partition_by if c in DERIVED]
    return frame.with_columns(derived) if derived else frame


def partition_dir(layout: Layout, values: tuple) -> str:
    """`netuid=1/block_bucket=952`: hive style, values percent-escaped so any string is one segment."""
    return "/".join(f"{col}={quote(str(v), safe='')}" for col, v in zip(layout.partition_by, values,
                                                                           strict=True))
