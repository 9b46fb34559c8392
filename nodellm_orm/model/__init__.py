"""The vocabulary every layer above the core speaks: the five models' records, their table
names, and the rows and counts that pass through the storage port.

Layers depend one way: core <- model <- stores <- orm <- cli (tests/test_layering.py holds
it). Nothing here imports a store, a database driver or the ORM.
"""

from __future__ import annotations

from .names import (
    DEFAULT_DELEGATES,
    DEFAULT_TABLE_NAMES,
    MODEL_KEYS,
    OPTIONAL_MODELS,
    TableNames,
    resolve_names,
)
from .records import (
    AgentSessionRecord,
    ChatRecord,
    MessageRecord,
    RequestRecord,
    ToolCallRecord,
    UsageTotals,
    columns,
)
from .rows import Cursor, OwnedKind, Row, RowCounts

__all__ = [
    "DEFAULT_DELEGATES",
    "DEFAULT_TABLE_NAMES",
    "MODEL_KEYS",
    "OPTIONAL_MODELS",
    "AgentSessionRecord",
    "ChatRecord",
    "Cursor",
    "MessageRecord",
    "OwnedKind",
    "RequestRecord",
    "Row",
    "RowCounts",
    "TableNames",
    "ToolCallRecord",
    "UsageTotals",
    "columns",
    "resolve_names",
]
