"""Storage only (DESIGN.md §2): hive-partitioned Parquet, a manifest of live files, a DuckDB catalog.

The only module that touches files of the warehouse. See warehouse/README.md for the design.
"""

from warehouse.layout import BLOCKS_PER_BUCKET, LAYOUTS, Layout, layout_of
from warehouse.lock import WarehouseLockedError
from warehouse.store import DEFAULT_ROOT, Completion, Warehouse, WarehouseError, WriteSummary

__all__ = ["BLOCKS_PER_BUCKET", "DEFAULT_ROOT", "LAYOUTS", "Completion", "Layout", "Warehouse",
           "WarehouseError", "WarehouseLockedError", "WriteSummary", "layout_of"]
