"""What the ORM is told: table names and persistence switches."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class TableNames:
    """Which tables (sql backend) or client delegates (prisma backend) hold each model.

    None means the default: `LlmChat`, `LlmMessage`, `LlmToolCall`, `LlmRequest`,
    `LlmAgentSession` for SQL tables; `llmchat`, ... for prisma-client-py delegates. Names are
    matched case-insensitively, so the JS spellings (`llmChat`) work too.
    """

    chat: str | None = None
    message: str | None = None
    tool_call: str | None = None
    request: str | None = None
    agent_session: str | None = None

    @classmethod
    def coerce(cls, value: TableNames | dict[str, Any] | None) -> TableNames:
        """Accept a TableNames, a mapping in Python or JS spelling (`toolCall`), or None."""
        if value is None:
            return cls()
        if isinstance(value, TableNames):
            return value
        if not isinstance(value, dict):
            raise TypeError(
                f"table_names must be a TableNames or a dict, not {type(value).__name__}"
            )
        aliases = {"toolCall": "tool_call", "agentSession": "agent_session"}
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, str | None] = {}
        for key, name in value.items():
            attr = aliases.get(key, key)
            if attr not in known:
                raise ValueError(
                    f"unknown table_names key {key!r}; expected one of {sorted(known)}"
                )
            if name is not None and not isinstance(name, str):
                raise TypeError(f"table_names[{key!r}] must be a string")
            kwargs[attr] = name
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Persistence:
    """Which optional rows are written. Messages are always written."""

    tool_calls: bool = True
    requests: bool = True

    @classmethod
    def coerce(cls, value: Persistence | dict[str, Any] | None) -> Persistence:
        if value is None:
            return cls()
        if isinstance(value, Persistence):
            return value
        if not isinstance(value, dict):
            raise TypeError(
                f"persistence must be a Persistence or a dict, not {type(value).__name__}"
            )
        aliases = {"toolCalls": "tool_calls"}
        kwargs: dict[str, bool] = {}
        for key, flag in value.items():
            attr = aliases.get(key, key)
            if attr not in ("tool_calls", "requests"):
                raise ValueError(
                    f"unknown persistence key {key!r}; expected 'tool_calls' or 'requests'"
                )
            if not isinstance(flag, bool):
                raise TypeError(f"persistence[{key!r}] must be True or False")
            kwargs[attr] = flag
        return cls(**kwargs)
