"""The five models by key, their default table names, and which tables a user may rename.

Every layer speaks of a model by its key (`chat`, `message`, `tool_call`, `request`,
`agent_session`); this module is the one place that says which table each key is by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "DEFAULT_DELEGATES",
    "DEFAULT_TABLE_NAMES",
    "MODEL_KEYS",
    "OPTIONAL_MODELS",
    "TableNames",
    "resolve_names",
]

# Model key -> the model (and table) name of schema.prisma. A test holds it equal to the schema.
DEFAULT_TABLE_NAMES: Mapping[str, str] = {
    "chat": "LlmChat",
    "message": "LlmMessage",
    "tool_call": "LlmToolCall",
    "request": "LlmRequest",
    "agent_session": "LlmAgentSession",
}
MODEL_KEYS: tuple[str, ...] = tuple(DEFAULT_TABLE_NAMES)
# prisma-client-py names a model's delegate after the model, lower-cased (`db.llmchat`).
DEFAULT_DELEGATES: Mapping[str, str] = {k: v.lower() for k, v in DEFAULT_TABLE_NAMES.items()}

# Chats and messages are always written; these tables back optional features (tool-call and
# request persistence, agent sessions) and may be left out of a minimal schema.
OPTIONAL_MODELS: tuple[str, ...] = ("tool_call", "request", "agent_session")


@dataclass(frozen=True, slots=True)
class TableNames:
    """Which tables (sql backend) or client delegates (prisma backend) hold each model.

    None means the default: `LlmChat`, `LlmMessage`, `LlmToolCall`, `LlmRequest`,
    `LlmAgentSession` for SQL tables; `llmchat`, ... for prisma-client-py delegates. Names are
    matched exactly (SQL identifiers are quoted). On the prisma backend a delegate is named by
    its model (`LlmChat`), its prisma-client-py attribute (`llmchat`) or its JS client name
    (`llmChat`). A name differing from an existing one in letter case only is reported, never
    used in its place.
    """

    chat: str | None = None
    message: str | None = None
    tool_call: str | None = None
    request: str | None = None
    agent_session: str | None = None

    @classmethod
    def coerce(cls, value: TableNames | Mapping[str, Any] | None) -> TableNames:
        """Accept a TableNames, a mapping in Python or JS spelling (`toolCall`), or None."""
        if value is None:
            return cls()
        if isinstance(value, TableNames):
            return value
        if not isinstance(value, Mapping):
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


def resolve_names(table_names: TableNames | None) -> dict[str, str]:
    """Physical table name per model key, defaults filled in."""
    names = dict(DEFAULT_TABLE_NAMES)
    if table_names is not None:
        for key in names:
            given = getattr(table_names, key)
            if given is not None:
                names[key] = given
    return names
