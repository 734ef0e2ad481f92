"""The contracts: one Arrow schema per table, the single source of truth for names and types.

Imported by everyone; imports nothing of ours. See DESIGN.md §4 (warehouse) and §5 (consensus files).
"""

from schemas import chain, consensus, deployments, evaluation, ops, training
from schemas.table import SchemaError, Table, by_name, validate_frame

__all__ = ["Table", "SchemaError", "validate_frame", "by_name", "chain", "consensus", "evaluation",
           "training", "ops", "deployments"]
