"""What the ORM is told: persistence switches and its options (table names: `model.names`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ..core.options import CHAT_OPTIONS, ChatOptions
from ..model import TableNames


@dataclass(frozen=True, slots=True)
class Persistence:
    """Which optional rows are written. Messages are always written."""

    tool_calls: bool = True
    requests: bool = True

    def needs(self) -> tuple[str, ...]:
        """The optional tables these switches write to (the others may be absent)."""
        needed = []
        if self.tool_calls:
            needed.append("tool_call")
        if self.requests:
            needed.append("request")
        return tuple(needed)

    @classmethod
    def coerce(cls, value: Persistence | Mapping[str, Any] | None) -> Persistence:
        if value is None:
            return cls()
        if isinstance(value, Persistence):
            return value
        if not isinstance(value, Mapping):
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


class PersistenceOptions(TypedDict, total=False):
    tool_calls: bool
    toolCalls: bool
    requests: bool


class TableNameOptions(TypedDict, total=False):
    chat: str | None
    message: str | None
    tool_call: str | None
    toolCall: str | None
    request: str | None
    agent_session: str | None
    agentSession: str | None


TableNamesLike = TableNames | TableNameOptions | Mapping[str, str | None]


class LoadChatOptions(ChatOptions, total=False):
    """`load_chat`'s options: the chat options, and what the ORM adds (JS spelling too)."""

    model: str | None
    provider: str | None
    # Replaces the stored instructions for this chat (saved at its next turn).
    instructions: str | None
    persistence: Persistence | PersistenceOptions | None
    tableNames: TableNamesLike | None


class CreateChatOptions(LoadChatOptions, total=False):
    """`create_chat`'s options. Custom columns (`userId`...) go in the options mapping."""

    metadata: Any


# Options that configure the in-memory chat or the ORM and are never written to the database.
RUNTIME_OPTIONS: frozenset[str] = CHAT_OPTIONS | {"persistence", "tableNames"}
LOAD_CHAT_OPTIONS: frozenset[str] = frozenset(LoadChatOptions.__optional_keys__)
CREATE_CHAT_OPTIONS: frozenset[str] = frozenset(CreateChatOptions.__optional_keys__)
TABLE_KEYS: frozenset[str] = frozenset(TableNameOptions.__optional_keys__)


def options_or_table_names(
    value: Any, *, where: str, option_keys: frozenset[str] | None
) -> tuple[Mapping[str, Any] | None, TableNames | None]:
    """A positional mapping is either options or table names (both JS call shapes).

    Only table-name keys (`chat`, `message`, `toolCall`...): table names, as in the seed
    README's `loadChat(prisma, llm, chatId, tableNames)`. Otherwise options; with
    `option_keys`, a key that is neither raises instead of being dropped.
    """
    if value is None:
        return None, None
    if isinstance(value, TableNames):
        return None, value
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: options must be a mapping, not {type(value).__name__}")
    keys = set(value)
    if keys and keys <= TABLE_KEYS:
        return None, TableNames.coerce(dict(value))
    if option_keys is not None:
        unknown = sorted(keys - option_keys)
        if unknown:
            raise TypeError(
                f"{where}: {', '.join(map(repr, unknown))} is neither an option nor a table "
                f"name; the options are {sorted(option_keys)} and the table names "
                f"{sorted(TABLE_KEYS)}"
            )
    return value, None
