"""`Warehouse`: hive-partitioned Parquet under one root, a manifest of live files, a DuckDB catalog.

    root/
      catalog.duckdb                       views named after every table of schemas/ (catalog.py)
      _manifest.parquet                    the live files; replaced atomically (manifest.py)
      .write.lock                          one writer at a time (lock.py)
      neurons/netuid=1/block_bucket=951/part-00000007-3f9c1a2b4d5e.parquet
      ...

A write (DESIGN.md §4) validates its frame against the contract, writes new files (temp name,
fsync, rename), retires the files whose scopes it replaces (layout.py), and swaps the manifest once:
readers see all of it or none of it, a crash anywhere leaves the previous state, and writing the
same frame twice leaves one copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl
import pyarrow.parquet as pq

from schemas.table import SchemaError, Table, all_tables, by_name, validate_frame
from warehouse import catalog
from warehouse.layout import DERIVED, layout_of, partition_dir, with_partition_columns
from warehouse.lock import WarehouseLockedError, WriterLock
from warehouse.manifest import (
    FILES_SCHEMA,
    MANIFEST_NAME,
    Manifest,
    WarehouseError,
    commit_point,
    fsync_path,
    load_manifest,
    save_manifest,
)

log = logging.getLogger("yumaflow.warehouse")

DEFAULT_ROOT = Path("data/warehouse")


class Completion(NamedTuple):
    """An ingest_log entry: `table_name` holds every snapshot of `netuid` in [block_start, block_end]."""

    table_name: str
    netuid: int
    block_start: int
    block_end: int
    rows: int
    source: str


@dataclass(frozen=True)
class WriteSummary:
    table_name: str
    manifest_version: int
    rows_written: int
    files_added: int
    files_retired: int


class Warehouse:
    """The warehouse at `root`. Cheap to construct; every call reads the current manifest."""

    def __init__(self, root: Path = DEFAULT_ROOT, *, lock_timeout_s: float = 30.0,
                 retire_grace_s: float = 300.0):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock_timeout_s = lock_timeout_s
        # A reader that has read the manifest may still open a file this long after it was retired.
        self.retire_grace_s = retire_grace_s
        self.tables = all_tables()
        self._schema_fingerprint = hashlib.sha256("\n".join(
            f"{name}:{t.schema}" for name, t in sorted(self.tables.items())).encode()).hexdigest()[:16]
        if self._catalog_is_stale():
            try:
                with WriterLock(self.root / ".write.lock", timeout_s=0):
                    self._publish_catalog(load_manifest(self.root))
            except WarehouseLockedError:
                pass  # a writer is at work and publishes when it finishes

    # ---------------------------------------------------------------- reading

    def manifest(self) -> Manifest:
        return load_manifest(self.root)

    def files(self, table_name: str, *, netuid: int | None = None, block_start: int | None = None,
              block_end: int | None = None, manifest: Manifest | None = None) -> list[Path]:
        """Live files of a table, pruned by the manifest's netuid and block ranges of each file."""
        by_name(table_name)
        live = (manifest if manifest is not None else self.manifest()).live(table_name)
        if netuid is not None:
            live = live.filter(pl.col("netuid_min").is_null()
                               | pl.col("netuid_min").le(netuid) & pl.col("netuid_max").ge(netuid))
        if block_start is not None:
            live = live.filter(pl.col("block_max").is_null() | pl.col("block_max").ge(block_start))
        if block_end is not None:
            live = live.filter(pl.col("block_min").is_null() | pl.col("block_min").le(block_end))
        return [self.root / p for p in live["path"].sort()]

    def scan(self, table_name: str, *, netuid: int | None = None, block_start: int | None = None,
             block_end: int | None = None) -> pl.LazyFrame:
        """A lazy frame over one manifest version, with the contract's exact types.

        `netuid` selects one subnet and `block_start`/`block_end` an inclusive block range; both also
        prune files by the manifest. Files stay readable for `retire_grace_s` after a later write
        retires them, so collect within that time.
        """
        table = by_name(table_name)
        manifest = self.manifest()
        files = self.files(table_name, netuid=netuid, block_start=block_start, block_end=block_end,
                           manifest=manifest)
        _check_digests(table, _digests(self.root, manifest, files))
        return _filtered(self._scan_files(table, files), table, netuid, block_start, block_end)

    def read(self, table_name: str, *predicates: pl.Expr, netuid: int | None = None,
             block_start: int | None = None, block_end: int | None = None,
             columns: list[str] | None = None) -> pl.DataFrame:
        """Rows of a table as a Polars frame with the contract's types; `predicates` are Polars filters."""
        table = by_name(table_name)
        for _attempt in range(3):
            manifest = self.manifest()
            files = self.files(table_name, netuid=netuid, block_start=block_start, block_end=block_end,
                               manifest=manifest)
            try:
                _check_digests(table, _digests(self.root, manifest, files))
            except FileNotFoundError:
                if self.manifest().version != manifest.version:
                    continue  # a writer moved on and collected a retired file: read the new version
                raise WarehouseError(_file_problem(table, files) or f"table {table_name!r}: a file vanished") from None
            query = _filtered(self._scan_files(table, files), table, netuid, block_start, block_end)
            for predicate in predicates:
                query = query.filter(predicate)
            if columns is not None:
                query = query.select(columns)
            try:
                return query.collect()
            except (pl.exceptions.PolarsError, OSError) as err:
                problem = _file_problem(table, files)
                if problem is None:
                    raise
                if self.manifest().version != manifest.version:
                    continue  # a writer moved on and collected a retired file: read the new version
                raise WarehouseError(problem) from err
        raise WarehouseError(f"table {table_name!r}: files kept changing under three reads in a row")

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per table over the current manifest.

        Flows query through this rather than catalog.duckdb, so they never contend for its file lock.
        The views are a snapshot: connect again to see later writes.
        """
        con = duckdb.connect(config=catalog.DUCKDB_CONFIG)
        catalog.create_views(con, self.tables, self._files_by_table(self.manifest()))
        return con

    def latest_blocks(self, table_name: str = "neurons", *, at_or_before: int | None = None) -> pl.DataFrame:
        """One row per netuid: the latest block with a snapshot in `table_name` (at or before a block)."""
        if not {"netuid", "block"} <= set(by_name(table_name).columns):
            raise SchemaError(f"{table_name}: has no netuid and block columns, so no snapshots per subnet")
        return (self.scan(table_name, block_end=at_or_before)
                .group_by("netuid").agg(pl.col("block").max()).sort("netuid").collect())

    def snapshot(self, table_name: str, netuid: int, block: int | None = None) -> pl.DataFrame:
        """The rows of the latest snapshot of a subnet at or before `block` (the latest if None)."""
        latest = self.latest_blocks(table_name, at_or_before=block).filter(pl.col("netuid") == netuid)
        if latest.height == 0:
            return by_name(table_name).empty()
        at = latest["block"][0]
        return self.read(table_name, netuid=netuid, block_start=at, block_end=at)

    def stats(self) -> pl.DataFrame:
        """One row per table: live files, rows and bytes (plus bytes of retired files not yet deleted)."""
        files = self.manifest().files
        live = (files.filter(pl.col("retired_version").is_null()).group_by("table_name")
                .agg(pl.len().cast(pl.UInt64).alias("files"), pl.col("rows").sum(), pl.col("bytes").sum()))
        retired = (files.filter(pl.col("retired_version").is_not_null()).group_by("table_name")
                   .agg(pl.col("bytes").sum().alias("retired_bytes")))
        names = pl.DataFrame({"table_name": sorted(self.tables)})
        return (names.join(live, on="table_name", how="left").join(retired, on="table_name", how="left")
                .fill_null(0).with_columns(pl.col("files", "rows", "bytes", "retired_bytes").cast(pl.UInt64)))

    def verify(self) -> list[str]:
        """Every problem with the live files: missing, unreadable, wrong schema, wrong row count."""
        problems = []
        for row in self.manifest().live().iter_rows(named=True):  # one iteration per file
            table = self.tables.get(row["table_name"])
            if table is None:
                problems.append(f"table {row['table_name']!r} is in the manifest but not in schemas/")
                continue
            problem = _file_problem(table, [self.root / row["path"]], expected_rows=row["rows"])
            if problem is None and row["sha256"] is not None:
                try:
                    _check_digests(table, {self.root / row["path"]: row["sha256"]})
                except WarehouseError as err:
                    problem = str(err)
            if problem:
                problems.append(problem)
        return problems

    # ---------------------------------------------------------------- writing

    def write(self, table_name: str, frame: pl.DataFrame) -> WriteSummary:
        """Validate `frame` against the contract and replace the scopes it covers (layout.py), atomically."""
        return self.write_many({table_name: frame})[table_name]

    def write_many(self, frames: dict[str, pl.DataFrame], replace: dict[str, pl.DataFrame] | None = None,
                   complete: list[Completion] | None = None) -> dict[str, WriteSummary]:
        """Write several tables as ONE commit: readers see all of them or none of them.

        `complete` adds ingest_log ranges in the same commit, so a range is logged complete exactly
        when its data is visible (a crash in between cannot leave one without the other).

        `replace[table]` names scopes to empty even where `frames` has no row for them, by any subset
        of the table's scope columns: a snapshot of block B whose validators have no weights must still
        retire the weights an earlier read of B stored (`{"weights": frame of (netuid, block)}`).
        """
        replace = replace or {}
        unknown = [name for name in replace if name not in frames]
        if unknown:
            raise ValueError(f"replace names table(s) {unknown} that are not written in this commit")
        checked = {name: (by_name(name), validate_frame(frame, by_name(name))) for name, frame in frames.items()}
        if "ingest_log" in frames and complete:
            raise ValueError("write ingest_log rows either as a frame or through `complete`, not both")
        with self._writer_lock():
            manifest = load_manifest(self.root)
            version = manifest.version + 1
            known = set(manifest.files["path"])
            if complete:
                log_table = by_name("ingest_log")
                checked["ingest_log"] = (log_table, validate_frame(self._ingest_log_with(complete, manifest),
                                                                   log_table))
            added: list[dict] = []
            retired: list[str] = []
            summaries = {}
            self._staged_paths: list[Path] = []
            try:
                for name, (table, frame) in checked.items():
                    a, r = self._stage(table, frame, replace.get(name), manifest, version, known)
                    added += a
                    retired += r
                    summaries[name] = WriteSummary(name, version, frame.height, len(a), len(r))
            except BaseException:
                # A write that fails before its commit leaves none of its files behind (no manifest
                # names them, but the directory must read as it did before the attempt).
                for path in self._staged_paths:
                    path.unlink(missing_ok=True)
                raise
            finally:
                self._staged_paths = None
            if not added and not retired:
                return {name: WriteSummary(name, manifest.version, 0, 0, 0) for name in frames}
            commit_point("files_written")
            self._commit(manifest, version, added, retired)
            return summaries

    def compact(self, table_name: str, *, min_files: int = 2) -> pl.DataFrame:
        """Merge the live files of each partition holding at least `min_files` into one; rows unchanged.

        Returns one row per merged partition: files and bytes before and after.
        """
        table = by_name(table_name)
        with self._writer_lock():
            manifest = load_manifest(self.root)
            version = manifest.version + 1
            groups = (manifest.live(table_name).group_by("partition")
                      .agg(pl.col("path").sort(), pl.col("bytes").sum().alias("bytes_before"))
                      .filter(pl.col("path").list.len() >= min_files).sort("partition"))
            added, retired, report = [], [], []
            for part in groups.iter_rows(named=True):  # one iteration per partition
                merged = pl.concat([self._read_file(table, p) for p in part["path"]])
                merged = validate_frame(merged, table, where=f"compaction of {part['partition']}")
                new = self._write_file(table, part["partition"], merged, version)
                added.append(new)
                retired.extend(part["path"])
                report.append({"partition": part["partition"], "files_before": len(part["path"]),
                               "rows": merged.height, "bytes_before": part["bytes_before"],
                               "bytes_after": new["bytes"]})
            if added:
                self._commit(manifest, version, added, retired)
        return pl.DataFrame(report, schema={"partition": pl.String, "files_before": pl.UInt64,
                                            "rows": pl.UInt64, "bytes_before": pl.UInt64,
                                            "bytes_after": pl.UInt64})

    def vacuum(self) -> int:
        """Delete retired files nothing can read any more and leftovers of crashed writes; count them."""
        with self._writer_lock():
            manifest = load_manifest(self.root)
            known = set(manifest.files["path"])
            removed = 0
            for name in self.tables:
                table_dir = self.root / name
                if table_dir.is_dir():
                    removed += _remove_orphans(self.root, table_dir, known, recursive=True)
            return removed + self._collect_garbage(manifest)

    def publish_catalog(self) -> None:
        """Publish catalog.duckdb now (a new file swapped in atomically; open sessions keep theirs)."""
        with self._writer_lock():
            manifest = load_manifest(self.root)
            catalog.publish(self.root, self.tables, self._files_by_table(manifest), manifest.version,
                            self._schema_fingerprint)

    # ---------------------------------------------------------------- ingest_log

    def mark_complete(self, table_name: str, netuid: int, block_start: int, block_end: int, rows: int,
                      source: str) -> None:
        """Record that `table_name` holds every snapshot of `netuid` in [block_start, block_end]."""
        self.write_many({}, complete=[Completion(table_name, netuid, block_start, block_end, rows, source)])

    def _ingest_log_with(self, completions: list[Completion], manifest: Manifest) -> pl.DataFrame:
        """The ingest_log rows of every (table, netuid) in `completions`, with the new ranges added."""
        log_table = by_name("ingest_log")
        for c in completions:
            by_name(c.table_name)
            if c.block_end < c.block_start:
                raise ValueError(f"ingest_log {c.table_name} netuid {c.netuid}: block_end {c.block_end} is "
                                 f"before block_start {c.block_start}")
        entries = pl.DataFrame([c._asdict() | {"completed_at": datetime.now(UTC)} for c in completions]
                               ).cast(log_table.polars_schema()).select(log_table.columns)
        key = list(log_table.key)
        pairs = entries.select("table_name", "netuid").unique()
        existing = (self._scan_files(log_table, self.files("ingest_log", manifest=manifest)).collect()
                    .join(pairs, on=["table_name", "netuid"], how="semi"))
        return pl.concat([existing.join(entries.select(key), on=key, how="anti"), entries])

    def completed_ranges(self, table_name: str, netuid: int) -> list[tuple[int, int]]:
        """The inclusive block ranges marked complete, overlapping and adjacent ranges merged."""
        ranges = (self.read("ingest_log", pl.col("table_name") == table_name, netuid=netuid,
                            columns=["block_start", "block_end"]).sort("block_start"))
        merged: list[tuple[int, int]] = []
        for start, end in ranges.iter_rows():  # one iteration per recorded range, not per row of data
            if merged and start <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def missing_ranges(self, table_name: str, netuid: int, block_start: int,
                       block_end: int) -> list[tuple[int, int]]:
        """The inclusive sub-ranges of [block_start, block_end] not marked complete: what to backfill."""
        gaps, cursor = [], block_start
        for start, end in self.completed_ranges(table_name, netuid):
            if end < cursor or start > block_end:
                continue
            if start > cursor:
                gaps.append((cursor, start - 1))
            cursor = end + 1
        if cursor <= block_end:
            gaps.append((cursor, block_end))
        return gaps

    def missing_blocks(self, table_name: str, netuid: int, blocks: Iterable[int]) -> list[int]:
        """The blocks of `blocks` that no complete range covers, ascending."""
        wanted = pl.DataFrame({"block": sorted(set(blocks))}, schema={"block": pl.UInt64})
        ranges = pl.DataFrame(self.completed_ranges(table_name, netuid), orient="row",
                              schema={"block_start": pl.UInt64, "block_end": pl.UInt64})
        covered = wanted.join_asof(ranges, left_on="block", right_on="block_start", strategy="backward")
        return covered.filter(pl.col("block_end").is_null() | (pl.col("block") > pl.col("block_end")))[
            "block"].to_list()

    # ---------------------------------------------------------------- internals

    def _writer_lock(self) -> WriterLock:
        return WriterLock(self.root / ".write.lock", timeout_s=self.lock_timeout_s)

    def _stage(self, table: Table, frame: pl.DataFrame, replace: pl.DataFrame | None, manifest: Manifest,
               version: int, known: set[str]) -> tuple[list[dict], list[str]]:
        """Write `frame`'s new files and pick the files it retires; nothing is visible until _commit."""
        layout = layout_of(table)
        live = manifest.live(table.name)
        added, retired = [], []
        if replace is not None and replace.height:
            # Scopes emptied by this write although `frame` may hold no row of them (see write_many).
            on = [c for c in replace.columns if c in layout.scope]
            if sorted(on) != sorted(replace.columns) or not on:
                raise ValueError(f"replace[{table.name!r}]: columns {replace.columns} must be scope columns "
                                 f"of {table.name} ({', '.join(layout.scope)})")
            keys = replace.unique()
            for old in live.iter_rows(named=True):  # one iteration per live file
                if not _may_share_scopes(old, keys):
                    continue
                old_rows = self._read_file(table, old["path"], sha256=old["sha256"])
                if old_rows.join(keys, on=on, how="semi").height == 0:
                    continue
                kept = old_rows.join(keys, on=on, how="anti")
                retired.append(old["path"])
                if kept.height:
                    added.append(self._write_file(table, old["partition"], kept, version))
            live = live.filter(~pl.col("path").is_in(retired))
            # Files rewritten above now stand for the old ones in the scope replacement below.
            live = pl.concat([live, pl.DataFrame(added, schema=FILES_SCHEMA)]) if added else live
        if frame.height == 0:
            return added, retired
        derived = [c for c in layout.partition_by if c in DERIVED]
        framed = with_partition_columns(frame, layout)
        groups = (framed.partition_by(list(layout.partition_by), as_dict=True) if layout.partition_by
                  else {(): framed})
        rewritten = {row["path"] for row in added}
        for values, rows in groups.items():  # one iteration per partition touched
            part = partition_dir(layout, values)
            rows = rows.drop(derived)
            _remove_orphans(self.root, self.root / table.name / part, known | rewritten, recursive=False)
            scopes = rows.select(layout.scope).unique()
            for old in live.filter(pl.col("partition") == part).iter_rows(named=True):  # per file
                if not _may_share_scopes(old, rows):
                    continue
                old_scopes = self._read_file(table, old["path"], columns=list(layout.scope), sha256=old["sha256"])
                if old_scopes.join(scopes, on=list(layout.scope), how="semi").height == 0:
                    continue
                kept = (self._read_file(table, old["path"], sha256=old["sha256"])
                        .join(scopes, on=list(layout.scope), how="anti"))
                if old["path"] in rewritten:
                    added = [a for a in added if a["path"] != old["path"]]
                    (self.root / old["path"]).unlink(missing_ok=True)
                else:
                    retired.append(old["path"])
                if kept.height:
                    added.append(self._write_file(table, part, kept, version))
            added.append(self._write_file(table, part, rows, version))
        return added, retired

    def _commit(self, manifest: Manifest, version: int, added: list[dict], retired: list[str]) -> None:
        """Swap in the manifest with `added` live and `retired` retired: the moment a write happens."""
        now_ms = int(time.time() * 1000)
        is_retired = pl.col("path").is_in(retired) & pl.col("retired_version").is_null()
        files = pl.concat([
            manifest.files.with_columns(
                pl.when(is_retired).then(pl.lit(version, pl.UInt64)).otherwise("retired_version")
                .alias("retired_version"),
                pl.when(is_retired).then(pl.lit(now_ms, pl.UInt64)).otherwise("retired_at_ms")
                .alias("retired_at_ms")),
            pl.DataFrame(added, schema=FILES_SCHEMA),
        ])
        new = Manifest(version, files)
        save_manifest(self.root, new)
        commit_point("manifest_swapped")
        self._publish_catalog(new)
        self._collect_garbage(new)

    def _write_file(self, table: Table, part: str, frame: pl.DataFrame, version: int) -> dict:
        """Write one Parquet file under its final name (temp name, fsync, rename); return its manifest row."""
        directory = self.root / table.name / part if part else self.root / table.name
        directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{version:08d}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = directory / f".{name}.tmp"
        frame = frame.sort(list(table.key))
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        fsync_path(tmp)
        commit_point("temp_written")
        os.replace(tmp, directory / name)
        fsync_path(directory)
        if getattr(self, "_staged_paths", None) is not None:
            self._staged_paths.append(directory / name)
        has = set(frame.columns)
        netuids = frame["netuid"] if "netuid" in has else None
        blocks = frame["block"] if "block" in has else None
        return {"table_name": table.name, "partition": part,
                "path": str((directory / name).relative_to(self.root)),
                "netuid_min": None if netuids is None else netuids.min(),
                "netuid_max": None if netuids is None else netuids.max(),
                "block_min": None if blocks is None else blocks.min(),
                "block_max": None if blocks is None else blocks.max(),
                "rows": frame.height, "bytes": (directory / name).stat().st_size,
                "added_version": version, "retired_version": None, "retired_at_ms": None, "sha256": digest}

    def _read_file(self, table: Table, path: str, columns: list[str] | None = None,
                   sha256: str | None = None) -> pl.DataFrame:
        full = self.root / path
        if sha256 is not None:
            _check_digests(table, {full: sha256})
        try:
            return pl.read_parquet(full, columns=columns, hive_partitioning=False)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise WarehouseError(_file_problem(table, [full]) or f"table {table.name!r}: reading file "
                                 f"{full} failed: {err}") from err

    def _scan_files(self, table: Table, files: list[Path]) -> pl.LazyFrame:
        if not files:
            return table.empty().lazy()
        # Files written before a table gained a (nullable) column read it as null: a warehouse written by
        # an earlier version stays readable after an upgrade.
        return (pl.scan_parquet([str(f) for f in files], hive_partitioning=False, missing_columns="insert",
                                schema=table.polars_schema())
                .select(table.columns))

    def _files_by_table(self, manifest: Manifest) -> dict[str, list[str]]:
        live = manifest.live().group_by("table_name").agg(pl.col("path").sort())
        return {name: [str(self.root / p) for p in paths] for name, paths in live.iter_rows()}

    def _catalog_is_stale(self) -> bool:
        published = catalog.published(self.root)
        return (not (self.root / catalog.CATALOG_NAME).exists()
                or published.get("root") != str(self.root)
                or published.get("schemas") != self._schema_fingerprint
                or published.get("manifest_version") != load_manifest(self.root).version)

    def _publish_catalog(self, manifest: Manifest) -> None:
        try:
            catalog.publish(self.root, self.tables, self._files_by_table(manifest), manifest.version,
                            self._schema_fingerprint)
        except duckdb.Error as err:
            # The write has committed (the manifest is the truth); the catalog is derived from it.
            log.error("could not publish %s (%s); the data is written. Delete the file and the next "
                      "Warehouse(%s) rebuilds it", self.root / catalog.CATALOG_NAME, err, self.root)

    def _collect_garbage(self, manifest: Manifest) -> int:
        """Delete retired files that neither the published catalog nor a recent reader can still read."""
        published = catalog.published(self.root)
        published_version = published.get("manifest_version", 0) if published.get("root") == str(
            self.root) else 0
        cutoff_ms = int((time.time() - self.retire_grace_s) * 1000)
        in_use = catalog.files_still_in_use(self.root)  # named by an older catalog a session still holds
        doomed = manifest.files.filter(pl.col("retired_version").le(published_version)
                                       & pl.col("retired_at_ms").le(cutoff_ms) & ~pl.col("path").is_in(list(in_use)))
        if doomed.height == 0:
            return 0
        for path in doomed["path"]:
            (self.root / path).unlink(missing_ok=True)
        save_manifest(self.root, Manifest(manifest.version,
                                          manifest.files.join(doomed.select("path"), on="path", how="anti")))
        return doomed.height


def _filtered(query: pl.LazyFrame, table: Table, netuid, block_start, block_end) -> pl.LazyFrame:
    if netuid is not None:
        if "netuid" not in table.columns:
            raise SchemaError(f"{table.name}: has no netuid column to filter on")
        query = query.filter(pl.col("netuid") == netuid)
    if block_start is not None or block_end is not None:
        if "block" not in table.columns:
            raise SchemaError(f"{table.name}: has no block column to filter on")
        if block_start is not None:
            query = query.filter(pl.col("block") >= block_start)
        if block_end is not None:
            query = query.filter(pl.col("block") <= block_end)
    return query


def _may_share_scopes(old: dict, rows: pl.DataFrame) -> bool:
    """False when the manifest's block range of an old file proves it holds none of `rows`' blocks."""
    if old["block_min"] is None or "block" not in rows.columns:
        return True
    return not (rows["block"].max() < old["block_min"] or rows["block"].min() > old["block_max"])


def _digests(root: Path, manifest: Manifest, files: list[Path]) -> dict[Path, str]:
    """The recorded sha256 of each of `files` (files written before checksums existed have none)."""
    wanted = {str(f.relative_to(root)) for f in files}
    rows = manifest.live().filter(pl.col("path").is_in(list(wanted)) & pl.col("sha256").is_not_null())
    return {root / path: digest for path, digest in rows.select("path", "sha256").iter_rows()}


def _check_digests(table: Table, digests: dict[Path, str]) -> None:
    """Raise WarehouseError naming the first file whose bytes are not the ones written.

    One sha256 pass over each file (about 1 GB/s; warehouse files are compressed Parquet, so this is
    a small part of decoding them). FileNotFoundError propagates: the caller knows whether a writer
    may have collected the file in the meantime.
    """
    for path, digest in digests.items():  # one per file, not per row
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            # name what is wrong as precisely as possible (truncated, not Parquet, wrong schema…)
            raise WarehouseError(_file_problem(table, [path]) or
                                 f"table {table.name!r}: file {path} is damaged: its content does not match the "
                                 "sha256 the manifest recorded when it was written (restore it from a backup or "
                                 "re-ingest the blocks it holds)")


def _file_problem(table: Table, files: list[Path], expected_rows: int | None = None) -> str | None:
    """The first thing wrong with these files of `table`, named, or None if they all read fine."""
    expected = table.polars_schema()
    for path in files:
        if not path.exists():
            return f"table {table.name!r}: file {path} is in the manifest but missing on disk"
        try:
            meta = pq.read_metadata(path)
            schema = pl.read_parquet_schema(path)
        except Exception as err:  # any failure to parse the footer means the file is damaged
            return f"table {table.name!r}: file {path} is not readable Parquet ({err})"
        if dict(schema) != dict(expected):
            return f"table {table.name!r}: file {path} has schema {dict(schema)}, expected {dict(expected)}"
        if expected_rows is not None and meta.num_rows != expected_rows:
            return (f"table {table.name!r}: file {path} has {meta.num_rows} rows, the manifest says "
                    f"{expected_rows}")
        try:
            pl.read_parquet(path, hive_partitioning=False)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # Polars may also panic on a damaged page (PanicException, a BaseException)
            return f"table {table.name!r}: file {path} is damaged ({type(err).__name__}: {str(err)[:200]})"
    return None


def _remove_orphans(root: Path, directory: Path, known: set[str], *, recursive: bool) -> int:
    """Delete files a crashed write left (temp files, renamed files the manifest never listed).

    Only called with the write lock held, so no write in progress owns them.
    """
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.rglob("*") if recursive else directory.iterdir():
        if path.is_file() and (path.name.endswith(".tmp") or str(path.relative_to(root)) not in known):
            path.unlink()
            removed += 1
    return removed


__all__ = ["DEFAULT_ROOT", "MANIFEST_NAME", "Warehouse", "WarehouseError", "WarehouseLockedError",
           "WriteSummary"]
