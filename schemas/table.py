"""`Table`: a named Arrow schema with its key and row grain, and validation that names what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


class SchemaError(ValueError):
    """A frame does not match its table's contract. The message names table, column and problem."""


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    grain: str  # what one row means, in the domain's words
    # Value ranges checked by `validate_frame` beyond the type: column -> (min, max), inclusive.
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Columns a frame may leave out: column -> the value `validate_frame` fills in (None: null). A table
    # that gains a column later lists it here, so every frame valid before stays valid, meaning the same.
    optional: dict[str, object] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def polars_schema(self):
        """The same schema as a Polars schema (Arrow types mapped by Polars itself); built once per table
        (a copy each call, so a caller may change its own)."""
        import polars as pl

        if self.name not in _POLARS_SCHEMAS:
            _POLARS_SCHEMAS[self.name] = pl.DataFrame(pa.Table.from_batches([], schema=self.schema)).schema
        return pl.Schema(_POLARS_SCHEMAS[self.name])

    def empty(self):
        import polars as pl

        return pl.DataFrame(schema=self.polars_schema())


_REGISTRY: dict[str, Table] = {}
_POLARS_SCHEMAS: dict[str, object] = {}


def register(table: Table) -> Table:
    if table.name in _REGISTRY:
        raise RuntimeError(f"table {table.name!r} is defined twice")
    _REGISTRY[table.name] = table
    return table


def by_name(name: str) -> Table:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SchemaError(f"unknown table {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_tables() -> dict[str, Table]:
    return dict(_REGISTRY)


def validate_frame(frame, table: Table, *, where: str | None = None, check_key: bool = True):
    """Check a Polars frame against `table`; return it with columns in contract order.

    Raises SchemaError naming the table (and `where`, e.g. a file path), the column and the problem:
    a missing column (an `optional` one is filled with its default), a wrong type (no silent casts: a
    Float64 stake is an error, not a rounding), nulls in a non-nullable column, a value out of range, or a
    duplicate key.
    """
    import polars as pl

    label = f"{table.name}" + (f" ({where})" if where else "")
    expected = table.polars_schema()
    absent = {c: v for c, v in table.optional.items() if c not in frame.columns}
    if absent:
        frame = frame.with_columns(pl.lit(v, dtype=expected[c]).alias(c) for c, v in absent.items())
    schema = frame.schema  # built once: each `frame.schema` is a new object
    # A null in an optional column that may not be null means "not given" too (rows built from dicts).
    fills = {c: v for c, v in table.optional.items() if v is not None and c not in absent
             and schema.get(c) == expected[c] and frame[c].null_count()}
    if fills:
        frame = frame.with_columns(pl.col(c).fill_null(v) for c, v in fills.items())
    missing = [c for c in expected if c not in schema]
    if missing:
        raise SchemaError(f"{label}: missing column(s) {', '.join(missing)}; "
                          f"expected columns {', '.join(expected)}")
    for col, dtype in expected.items():
        got = schema[col]
        if got != dtype:
            raise SchemaError(f"{label}: column {col!r} has type {got}, expected {dtype}")
    out = frame if frame.columns == list(expected) else frame.select(list(expected))
    for f in table.schema:
        if not f.nullable:
            nulls = out[f.name].null_count()
            if nulls:
                raise SchemaError(f"{label}: column {f.name!r} has {nulls} null value(s); it may not be null")
    out_of_range = {col: (pl.col(col) < lo) | (pl.col(col) > hi) for col, (lo, hi) in table.ranges.items()}
    flags = out.select(cond.any().alias(col) for col, cond in out_of_range.items()).row(0) if out_of_range else ()
    for (col, (lo, hi)), failed in zip(table.ranges.items(), flags, strict=True):
        if failed:  # one pass checks every range; the offending row is looked up only on failure
            bad = out.filter(out_of_range[col])
            row = bad.row(0, named=True)
            key = {k: row[k] for k in table.key if k in row}
            raise SchemaError(f"{label}: column {col!r} value {row[col]} out of range [{lo}, {hi}] "
                              f"at key {key}")
    if check_key and table.key:
        dup = out.group_by(list(table.key)).len().filter(pl.col("len") > 1)
        if dup.height:
            row = dup.row(0, named=True)
            key = {k: row[k] for k in table.key}
            raise SchemaError(f"{label}: duplicate key {key} ({row['len']} rows); "
                              f"one row per ({', '.join(table.key)}) expected")
    return out
