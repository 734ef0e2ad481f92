"""The manifest: the one list of the warehouse's live Parquet files, replaced atomically.

`root/_manifest.parquet` has one row per data file. A file is *live* while `retired_version` is null;
a write adds its new files and retires the files it replaces in one manifest, then `os.replace`s it
over the old one (an atomic rename on POSIX), so a reader sees either all of a write or none of it,
however many files the write touched. Retired files stay on disk until nothing can still read them
(see `Warehouse._collect_garbage`). Writers hold `root/.write.lock` for the whole read-modify-swap.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_NAME = "_manifest.parquet"
_VERSION_KEY = b"yumaflow.manifest_version"

FILES_SCHEMA = {
    "table_name": pl.String,
    "partition": pl.String,       # hive directory under root/<table_name>/, "" when unpartitioned
    "path": pl.String,            # relative to root
    "netuid_min": pl.UInt16,      # null when the table has no netuid
    "netuid_max": pl.UInt16,
    "block_min": pl.UInt64,       # null when the table has no block
    "block_max": pl.UInt64,
    "rows": pl.UInt64,
    "bytes": pl.UInt64,
    "added_version": pl.UInt64,
    "retired_version": pl.UInt64,  # null while live
    "retired_at_ms": pl.UInt64,
}


@dataclass(frozen=True)
class Manifest:
    version: int
    files: pl.DataFrame

    def live(self, table_name: str | None = None) -> pl.DataFrame:
        live = self.files.filter(pl.col("retired_version").is_null())
        return live if table_name is None else live.filter(pl.col("table_name") == table_name)


def empty_files() -> pl.DataFrame:
    return pl.DataFrame(schema=FILES_SCHEMA)


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST_NAME
    try:
        # One open and one read: parsing by path would open the file again for the data pages, and a
        # writer's rename in between would hand the reader the footer of one version, pages of another.
        data = path.read_bytes()
    except FileNotFoundError:
        return Manifest(0, empty_files())
    arrow = pq.read_table(pa.BufferReader(data))
    version = int((arrow.schema.metadata or {}).get(_VERSION_KEY, b"0"))
    return Manifest(version, pl.from_arrow(arrow).cast(FILES_SCHEMA))


def save_manifest(root: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically: temp file in the same directory, fsync, rename, fsync dir."""
    arrow = manifest.files.cast(FILES_SCHEMA).to_arrow()
    arrow = arrow.replace_schema_metadata({_VERSION_KEY: str(manifest.version).encode()})
    final = root / MANIFEST_NAME
    tmp = root / f".{MANIFEST_NAME}.tmp"
    pq.write_table(arrow, tmp)
    fsync_path(tmp)
    pause_at("manifest_temp_written")
    os.replace(tmp, final)
    fsync_path(root)


# Test seam for the crash tests: "point=marker_path" makes a writer create marker_path and sleep at
# that point of a write (temp_written, files_written, manifest_temp_written, manifest_swapped), so a
# test can SIGKILL it there.
PAUSE_ENV = "YUMAFLOW_WAREHOUSE_PAUSE"


def pause_at(point: str) -> None:
    spec = os.environ.get(PAUSE_ENV)
    if spec and spec.split("=", 1)[0] == point:
        Path(spec.split("=", 1)[1]).write_text(str(os.getpid()))
        time.sleep(60)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
