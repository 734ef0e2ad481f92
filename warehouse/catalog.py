"""`catalog.duckdb`: every table of schemas/ as a view named after it, over the manifest's live files.

An analyst opens the file from anywhere (`duckdb data/warehouse/catalog.duckdb`, then
`select * from neurons`): the views name files by absolute path and cast every column to the
contract's type, and a table with no data yet is an empty view of the same types.

The catalog is *published* from the manifest after each write, as a whole new database file built
under a temporary name and renamed over `catalog.duckdb` (one atomic rename). The writer never opens
the live file, so an analyst's `duckdb` session beside a scheduled backfill never meets a lock: an open
session keeps reading the catalog it opened (its inode), a new open gets the new one, and no one ever
sees a catalog half built.

The catalog a session may still hold is kept as a *generation*: before the rename, the live file is
hard-linked to `.catalog-v<version>.duckdb` with its file list beside it (`.catalog-v<version>.json`).
Garbage collection keeps every Parquet file that a generation still open in another process names
(DuckDB's file lock on that inode says so), and drops a generation once no one holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from schemas.table import Table

CATALOG_NAME = "catalog.duckdb"
PUBLISHED_NAME = "_catalog.json"  # which manifest version, root, schemas and files the catalog shows
GENERATION_PREFIX = ".catalog-v"  # older catalogs a session may still hold (hard links), with their files

# Nothing may download at run time: never let DuckDB fetch an extension (parquet and json are built in).
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type DuckDB itself gives an Arrow column of this type."""
    simple = {
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.date32(): "DATE",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    raise TypeError(f"no DuckDB type chosen for Arrow type {arrow_type}")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_COLUMNS_OF_FILE: dict[str, frozenset[str]] = {}  # files are immutable: their footers are read once


def _columns_present(files: list[str]) -> set[str] | None:
    """The columns any of `files` holds (from their Parquet footers, cached per file); None when a footer
    cannot be read (a damaged or missing file: the view then names it when queried)."""
    import pyarrow.parquet as pq

    present: set[str] = set()
    for path in files:
        names = _COLUMNS_OF_FILE.get(path)
        if names is None:
            try:
                names = _COLUMNS_OF_FILE[path] = frozenset(pq.read_schema(path).names)
            except (OSError, pa.ArrowException):
                return None
        present |= names
    return present


def view_sql(table: Table, files: list[str]) -> str:
    """`create or replace view <table>` over `files` (absolute paths), with the contract's types; a column
    no file holds yet (files written before the table gained it) is null."""
    present = _columns_present(files) if files else set()
    if present is None:
        present = set(table.columns)
    casts = ", ".join(
        f"cast({_quote_ident(f.name) if f.name in present else 'null'} as {duckdb_type(f.type)}) as "
        f"{_quote_ident(f.name)}" for f in table.schema)
    if files:
        listed = ", ".join(_quote_str(p) for p in files)
        # union_by_name: files written before a table gained a column read it as null
        source = f"read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
    else:
        nulls = ", ".join(f"cast(null as {duckdb_type(f.type)}) as {_quote_ident(f.name)}"
                          for f in table.schema)
        source = f"(select {nulls} where false)"
    return f"create or replace view {_quote_ident(table.name)} as select {casts} from {source}"


def create_views(con: duckdb.DuckDBPyConnection, tables: dict[str, Table],
                 files_by_table: dict[str, list[str]]) -> None:
    for name, table in sorted(tables.items()):
        con.execute(view_sql(table, files_by_table.get(name, [])))


def publish(root: Path, tables: dict[str, Table], files_by_table: dict[str, list[str]],
            manifest_version: int, schema_fingerprint: str) -> None:
    """Build a new catalog of `files_by_table` and rename it over catalog.duckdb (module docstring).

    The record of what was published is written after the rename, so a crash in between leaves a
    catalog newer than its record, which the next publish simply replaces.
    """
    live = root / CATALOG_NAME
    tmp = root / f".{CATALOG_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config=DUCKDB_CONFIG)
    try:
        create_views(con, tables, files_by_table)
        con.execute("create or replace table _warehouse_info as select "
                    f"{manifest_version}::UBIGINT as manifest_version, {_quote_str(str(root))} as root, "
                    "current_timestamp as published_at")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    before = published(root)
    if live.exists() and before.get("root") == str(root):
        _keep_generation(root, live, before)
    os.replace(tmp, live)
    files = sorted(str(Path(p).relative_to(root)) for paths in files_by_table.values() for p in paths)
    record = {"manifest_version": manifest_version, "root": str(root), "schemas": schema_fingerprint,
              "views": {name: _fingerprint(files_by_table.get(name, [])) for name in tables}, "files": files}
    _write_json(root / PUBLISHED_NAME, record)


def _keep_generation(root: Path, live: Path, record: dict) -> None:
    """Hard-link the catalog about to be replaced, with the files it names, so a session holding it is seen."""
    version = record.get("manifest_version", 0)
    gen = root / f"{GENERATION_PREFIX}{version}.duckdb"
    if gen.exists():
        return
    _write_json(gen.with_suffix(".json"), {"files": record.get("files", [])})
    try:
        os.link(live, gen)
    except OSError:  # no hard links on this filesystem: the old catalog cannot be watched
        gen.with_suffix(".json").unlink(missing_ok=True)


def files_still_in_use(root: Path) -> set[str]:
    """Warehouse files named by an older catalog that some process still holds open; generations no
    one holds any more are removed."""
    kept: set[str] = set()
    for gen in sorted(root.glob(f"{GENERATION_PREFIX}*.duckdb")):
        if _held_elsewhere(gen):
            with contextlib.suppress(OSError, ValueError, KeyError):  # no list: nothing more to keep
                kept.update(json.loads(gen.with_suffix(".json").read_text())["files"])
        else:
            gen.unlink(missing_ok=True)
            gen.with_suffix(".json").unlink(missing_ok=True)
    return kept


def _held_elsewhere(path: Path) -> bool:
    """Whether another process has this DuckDB file open: an exclusive open is refused by its lock."""
    try:
        con = duckdb.connect(str(path), config=DUCKDB_CONFIG)
    except duckdb.IOException as err:
        return "lock" in str(err).lower()
    except duckdb.Error:
        return False
    con.close()
    return False


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def _fingerprint(files: list[str]) -> str:
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def published(root: Path) -> dict:
    """What the catalog last published: {manifest_version, root, schemas}, or {} if never."""
    try:
        return json.loads((root / PUBLISHED_NAME).read_text())
    except FileNotFoundError:
        return {}
