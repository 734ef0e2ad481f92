"""`catalog.duckdb`: every table of schemas/ as a view named after it, over the manifest's live files.

An analyst opens the file from anywhere (`duckdb data/warehouse/catalog.duckdb`, then
`select * from neurons`): the views name files by absolute path and cast every column to the
contract's type, and a table with no data yet is an empty view of the same types.

The catalog is *published* from the manifest after each write. DuckDB lets one process hold a
database file read-write, or many read-only (stack.md §10), so while an analyst has the catalog open
a writer cannot replace its views; the write still commits (the manifest is the source of truth) and
the catalog is republished by the next write that finds it free. Files a published catalog still
names are kept on disk until a newer catalog is published.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from schemas.table import Table

CATALOG_NAME = "catalog.duckdb"
PUBLISHED_NAME = "_catalog.json"  # which manifest version, root and schemas the catalog shows

# Nothing may download at run time: never let DuckDB fetch an extension (parquet and json are built in).
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class CatalogBusy(Exception):
    """Another process has catalog.duckdb open (DuckDB's file lock)."""


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


def view_sql(table: Table, files: list[str]) -> str:
    """`create or replace view <table>` over `files` (absolute paths), with the contract's types."""
    casts = ", ".join(f"cast({_quote_ident(f.name)} as {duckdb_type(f.type)}) as {_quote_ident(f.name)}"
                      for f in table.schema)
    if files:
        listed = ", ".join(_quote_str(p) for p in files)
        source = f"read_parquet([{listed}], hive_partitioning = false)"
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
    """Bring catalog.duckdb's views to `files_by_table` in one transaction; CatalogBusy if it is open.

    Only views whose file list changed since the last publish are replaced (a write touches one
    table); the record of what was published is written after the commit, so a crash in between
    only makes the next publish replace more views.
    """
    before = published(root)
    fingerprints = {name: _fingerprint(files_by_table.get(name, [])) for name in tables}
    current = (before.get("root") == str(root) and before.get("schemas") == schema_fingerprint
               and (root / CATALOG_NAME).exists())
    stale = {name: t for name, t in tables.items()
             if not current or before.get("views", {}).get(name) != fingerprints[name]}
    try:
        con = duckdb.connect(str(root / CATALOG_NAME), config=DUCKDB_CONFIG)
    except duckdb.IOException as err:
        if "Could not set lock" in str(err):
            raise CatalogBusy(str(err)) from None
        raise
    try:
        con.execute("begin transaction")
        if not current:  # a table may have left schemas/: drop its view
            existing = {r[0] for r in con.sql("select view_name from duckdb_views() where not internal "
                                              "and database_name = current_database()").fetchall()}
            for gone in sorted(existing - set(tables)):
                con.execute(f"drop view {_quote_ident(gone)}")
        create_views(con, stale, files_by_table)
        con.execute("create or replace table _warehouse_info as select "
                    f"{manifest_version}::UBIGINT as manifest_version, {_quote_str(str(root))} as root, "
                    "current_timestamp as published_at")
        con.execute("commit")
    finally:
        con.close()
    record = {"manifest_version": manifest_version, "root": str(root), "schemas": schema_fingerprint,
              "views": fingerprints}
    tmp = root / f".{PUBLISHED_NAME}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, root / PUBLISHED_NAME)


def _fingerprint(files: list[str]) -> str:
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def published(root: Path) -> dict:
    """What the catalog last published: {manifest_version, root, schemas}, or {} if never."""
    try:
        return json.loads((root / PUBLISHED_NAME).read_text())
    except FileNotFoundError:
        return {}
