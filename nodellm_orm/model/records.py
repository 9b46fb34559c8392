"""Rows as the ORM hands them to users, with the schema's field names.

They mirror the models prisma-client-py generates from `schema.prisma` (`chatId`,
`inputTokens`, `createdAt`...), so code reads the same whichever backend stored them. They are
plain slotted dataclasses because a 10,000-message chat is loaded into them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class ChatRecord:
    id: str
    model: str | None = None
    provider: str | None = None
    instructions: str | None = None
    metadata: Any = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None
    # Custom columns of the user's chat table (userId, projectId...), by column name.
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        """`record["userId"]` reads a custom column (or any field) by name."""
        if name in self.extra:
            return self.extra[name]
        return getattr(self, name)


@dataclass(slots=True)
class MessageRecord:
    id: str
    chatId: str
    role: str
    content: str | None = None
    contentRaw: str | None = None
    reasoning: str | None = None
    thinkingText: str | None = None
    thinkingSignature: str | None = None
    thinkingTokens: int | None = None
    inputTokens: int | None = None
    outputTokens: int | None = None
    modelId: str | None = None
    provider: str | None = None
    createdAt: datetime | None = None


@dataclass(slots=True)
class ToolCallRecord:
    id: str
    messageId: str
    toolCallId: str
    name: str
    arguments: str
    thought: str | None = None
    thoughtSignature: str | None = None
    result: str | None = None
    createdAt: datetime | None = None


@dataclass(slots=True)
class RequestRecord:
    id: str
    chatId: str
    provider: str
    model: str
    statusCode: int
    duration: int
    inputTokens: int
    outputTokens: int
    messageId: str | None = None
    cost: float | None = None
    correctionRounds: int | None = None
    createdAt: datetime | None = None


@dataclass(slots=True)
class AgentSessionRecord:
    id: str
    agentClass: str
    chatId: str
    metadata: Any = None
    createdAt: datetime | None = None
    updatedAt: datetime | None = None


@dataclass(slots=True)
class UsageTotals:
    """Sums over a chat's request rows."""

    requests: int = 0
    inputTokens: int = 0
    outputTokens: int = 0
    cost: float | None = None


def columns(record: type[Any]) -> tuple[str, ...]:
    """A record's schema fields in declaration order: what a store selects, and in which
    order (the stores build records positionally from these)."""
    return tuple(f.name for f in fields(record) if f.name != "extra")
