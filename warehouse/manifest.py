"""The manifest: the one list of the warehouse's live Parquet files, replaced atomically.

`root/_manifest.parquet` has one row per data file. A file is *live* while `retired_version` is null;
a write adds its new files and retires the files it replaces in one manifest, then `os.replace`s it
over the old one (an atomic rename on POSIX), so a reader sees either all of a write or none of it,
however many files the write touched. Retired files stay on disk until nothing can still read them
(see `Warehouse._collect_garbage`). Writers hold `root/.write.lock` for the whole read-modify-swap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
    # hex sha256 of the file's bytes, taken when it was written: Parquet pages carry no checksum a
    # reader checks, so a flipped bit would otherwise read back as other values (null: written before
    # the column existed, not checked)
    "sha256": pl.String,
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


class WarehouseError(RuntimeError):
    """A warehouse file is missing or unreadable; the message names the table and the file."""


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST_NAME
    try:
        # One open and one read: parsing by path would open the file again for the data pages, and a
        # writer's rename in between would hand the reader the footer of one version, pages of another.
        data = path.read_bytes()
    except FileNotFoundError:
        return Manifest(0, empty_files())
    try:
        arrow = pq.read_table(pa.BufferReader(data))
        version = int((arrow.schema.metadata or {}).get(_VERSION_KEY, b"0"))
        files = pl.from_arrow(arrow)
        if "sha256" not in files.columns:  # a manifest from before content checksums
            files = files.with_columns(pl.lit(None, pl.String).alias("sha256"))
        return Manifest(version, files.select(list(FILES_SCHEMA)).cast(FILES_SCHEMA))
    except (pa.ArrowException, pl.exceptions.PolarsError, ValueError) as err:
        # Never taken for an empty manifest: the next write would forget every file it lists.
        raise WarehouseError(f"warehouse manifest {path} is damaged ({err}); it lists the live files, so nothing "
                             f"is read or written until it is restored") from err


def save_manifest(root: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically: temp file in the same directory, fsync, rename, fsync dir."""
    arrow = manifest.files.cast(FILES_SCHEMA).to_arrow()
    arrow = arrow.replace_schema_metadata({_VERSION_KEY: str(manifest.version).encode()})
    final = root / MANIFEST_NAME
    tmp = root / f".{MANIFEST_NAME}.tmp"
    pq.write_table(arrow, tmp)
    fsync_path(tmp)
    commit_point("manifest_temp_written")
    os.replace(tmp, final)
    fsync_path(root)


#: Called with the name of each commit point a write passes (temp_written, files_written,
#: manifest_temp_written, manifest_swapped). None here: nothing a user sets can reach it. The crash tests
#: install one in the process they start (tests/support/hooked_cli.py) to stop a writer exactly there.
commit_point_hook: Callable[[str], None] | None = None


def commit_point(point: str) -> None:
    if commit_point_hook is not None:
        commit_point_hook(point)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
