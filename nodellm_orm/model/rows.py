"""What goes into a store and what counts come out of it, beside the records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = ["Cursor", "OwnedKind", "Row", "RowCounts"]

# A row as written: the schema's field names (`chatId`, `createdAt`...) to Python values.
Row = dict[str, Any]
# (createdAt, id) of the last message the caller has seen.
Cursor = tuple[datetime, str]
# Which rows `owner_chats` looks up.
OwnedKind = Literal["message", "tool_call"]


@dataclass(frozen=True, slots=True)
class RowCounts:
    """How many rows hang under a set of chats, table by table (what deleting them removes)."""

    chats: int = 0
    messages: int = 0
    toolCalls: int = 0
    requests: int = 0
    agentSessions: int = 0

    def __add__(self, other: RowCounts) -> RowCounts:
        return RowCounts(
            self.chats + other.chats,
            self.messages + other.messages,
            self.toolCalls + other.toolCalls,
            self.requests + other.requests,
            self.agentSessions + other.agentSessions,
        )
