"""Scoped stores: a handle that only sees, and only writes, one tenant's chats.

`scoped_store(db, userId="alice")` (or `store.scoped(userId="alice")` on the store `connect()`
returns) wraps any store. The scope is a set of chat columns and values:

- chat-level reads and writes are filtered by it: `get_chat` / `get_agent_session` answer None
  for a chat outside the scope, `list_chats` and `usage()` see only in-scope chats,
  `delete_chat` deletes nothing outside it, `create_chat` / `create_agent_session` stamp the
  scope columns (a row naming another value for one of them is refused);
- every message, tool-call, request and agent-session operation is checked against its chat:
  rows must name an in-scope chat (tool calls an in-scope chat's message), and operations by
  row id (`delete_message`, `set_tool_results`, `list_tool_calls`,
  `finish_turn`) first check whose rows the ids are. An id outside the scope raises
  `ScopeError` and nothing is written.
- scope columns cannot be changed through the handle (`update_chat` refuses them).

A scope naming a column the chat table lacks raises at the handle's first `bind` (create_chat,
load_chat...), before anything is read or written.

The library filters; the application authenticates: whoever builds the handle decides which
values it carries. Ids this handle has checked are remembered (bounded), so a turn costs the
same statements as on an unscoped store; a chat re-assigned to another tenant by an unscoped
handle stays reachable through a scoped handle that had already checked it, until that handle
is dropped (handles are cheap: make one per request).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import (
    AgentSessionRecord,
    ChatRecord,
    Cursor,
    MessageRecord,
    OwnedKind,
    RequestRecord,
    Row,
    RowCounts,
    TableNames,
    ToolCallRecord,
    UsageTotals,
)
from .base import Store, StoreError, TurnBegun, WriteMark, near_miss_note

if TYPE_CHECKING:
    from . import Database

__all__ = ["ScopeError", "ScopedStore", "scoped_store"]

# How many checked chat / message / tool-call ids a handle remembers (each kind).
_REMEMBERED = 4096


class ScopeError(StoreError):
    """An operation through a scoped handle named a row outside its scope."""


class _Seen:
    """A bounded set of ids known to be in scope (least recently used forgotten first)."""

    def __init__(self, limit: int = _REMEMBERED) -> None:
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def get(self, key: str) -> str | None:
        value = self._ids.get(key)
        if value is not None:
            self._ids.move_to_end(key)
        return value

    def add(self, key: str, value: str) -> None:
        self._ids[key] = value
        self._ids.move_to_end(key)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def discard(self, key: str) -> None:
        self._ids.pop(key, None)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ScopeError(f"{field} must be a string, not {type(value).__name__}")
    return value


def _check_scope(where: Mapping[str, Any]) -> dict[str, Any]:
    if not where:
        raise ValueError("a scope needs at least one COLUMN=value")
    for column, value in where.items():
        if column in ("id", "createdAt", "updatedAt"):
            raise ValueError(f"{column!r} cannot be a scope column")
        if value is None:
            raise ValueError(f"scope column {column!r} needs a value, not None")
        if not isinstance(value, str | int | float | bool):
            raise TypeError(
                f"scope column {column!r} must be a str, int, float or bool, "
                f"not {type(value).__name__}"
            )
    return dict(where)


def scoped_store(db: Database, **where: Any) -> ScopedStore:
    """A handle over `db` (a store, an AsyncEngine or a Prisma client) bound to `where`.

    `create_chat(scoped_store(db, userId="alice"), llm)` stamps `userId`, `load_chat` on it
    returns None for another user's chat. The columns are checked at the handle's first use.
    """
    from . import _base_store, is_prisma_client

    if isinstance(db, ScopedStore):
        raise TypeError("db is already scoped; build the handle from the unscoped db")
    scope = _check_scope(where)
    inner = db if isinstance(db, Store) and not is_prisma_client(db) else _base_store(db)
    return ScopedStore(inner, scope)


class ScopedStore:
    """A `Store` that reads and writes only the chats matching its scope (see module doc)."""

    def __init__(self, inner: Any, where: dict[str, Any], *, bound: bool = False) -> None:
        self._inner = inner
        self._where = where
        self._bound = bound
        self._children: dict[int, ScopedStore] = {}
        self._chats = _Seen()
        self._messages = _Seen()
        self._tool_calls = _Seen()

    @property
    def scope(self) -> dict[str, Any]:
        """The columns and values this handle is bound to."""
        return dict(self._where)

    @property
    def dialect(self) -> str:
        return str(self._inner.dialect)

    @property
    def absent(self) -> Mapping[str, str]:
        """Optional models whose table the bound store lacks (see `Store.absent`)."""
        found: Mapping[str, str] = self._inner.absent if self._bound else {}
        return found

    def _store(self) -> Store:
        if not self._bound:
            raise StoreError("a scoped store must be bound first (create_chat/load_chat do it)")
        store: Store = self._inner
        return store

    async def bind(self, table_names: TableNames) -> ScopedStore:
        inner = await self._inner.bind(table_names)
        child = self._children.get(id(inner))
        if child is None or child._inner is not inner:
            columns = await inner.chat_columns()
            missing = sorted(c for c in self._where if c not in columns)
            if missing:
                raise StoreError(
                    f"scope column(s) {', '.join(map(repr, missing))} not in the chat table; "
                    f"its columns: {', '.join(sorted(columns))}{near_miss_note(missing, columns)}"
                )
            child = ScopedStore(inner, self._where, bound=True)
            self._children[id(inner)] = child
        return child

    async def chat_columns(self) -> frozenset[str]:
        return await self._store().chat_columns()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._store().transaction():
            yield

    # -- checks

    def _matches(self, record: ChatRecord) -> bool:
        return all(record[k] == v for k, v in self._where.items())

    async def _chat_in_scope(self, chat_id: str) -> ChatRecord | None:
        record = await self._store().get_chat(chat_id)
        if record is None or not self._matches(record):
            return None
        self._chats.add(chat_id, chat_id)
        return record

    async def _require_chats(self, chat_ids: Iterable[Any]) -> None:
        for chat_id in dict.fromkeys(chat_ids):
            _text(chat_id, "chatId")
            if self._chats.get(chat_id) is None and await self._chat_in_scope(chat_id) is None:
                raise ScopeError(f"chat {chat_id!r} is not in this scope; nothing was written")

    async def _require_owned(self, kind: OwnedKind, ids: Sequence[str]) -> None:
        """Every id in `ids` (messages or tool calls) belongs to an in-scope chat."""
        seen = self._messages if kind == "message" else self._tool_calls
        unknown = [i for i in dict.fromkeys(ids) if seen.get(i) is None]
        if not unknown:
            return
        owners = await self._store().owner_chats(kind, unknown)
        what = "message" if kind == "message" else "tool call"
        for row_id in unknown:
            chat_id = owners.get(row_id)
            if chat_id is None:
                raise ScopeError(f"no {what} {row_id!r} in this scope; nothing was written")
            await self._require_chats([chat_id])
            seen.add(row_id, chat_id)

    def _refuse_scope_change(self, values: Row, what: str) -> None:
        changed = sorted(k for k in values if k in self._where and values[k] != self._where[k])
        if changed:
            raise ScopeError(
                f"{what} would move the row out of the scope ({', '.join(changed)}); "
                "nothing was written"
            )

    def _stamp(self, row: Row) -> Row:
        self._refuse_scope_change(row, "create")
        return {**row, **self._where}

    # -- chats

    async def create_chat(self, row: Row) -> ChatRecord:
        record = await self._store().create_chat(self._stamp(row))
        self._chats.add(record.id, record.id)
        return record

    async def get_chat(self, chat_id: str) -> ChatRecord | None:
        return await self._chat_in_scope(chat_id)

    async def update_chat(self, chat_id: str, values: Row) -> None:
        self._refuse_scope_change(values, "update_chat")
        await self._require_chats([chat_id])
        await self._store().update_chat(chat_id, values)

    async def delete_chat(self, chat_id: str) -> bool:
        if await self._chat_in_scope(chat_id) is None:
            return False
        self._chats.discard(chat_id)
        return await self._store().delete_chat(chat_id)

    async def list_chats(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        where: Mapping[str, Any] | None = None,
        before: datetime | None = None,
        oldest_first: bool = False,
    ) -> list[ChatRecord]:
        narrowed = {**(where or {})}
        self._refuse_scope_change(narrowed, "list_chats")
        return await self._store().list_chats(
            limit=limit,
            offset=offset,
            where={**narrowed, **self._where},
            before=before,
            oldest_first=oldest_first,
        )

    # -- messages

    async def begin_turn(
        self,
        chat_id: str,
        rows: Sequence[Row],
        *,
        after: Cursor | None = None,
        known: int | None = None,
        mark: WriteMark | None = None,
    ) -> TurnBegun:
        await self._require_chats([chat_id])
        begun = await self._store().begin_turn(chat_id, rows, after=after, known=known, mark=mark)
        for row in rows:
            if isinstance(row.get("id"), str):
                self._messages.add(row["id"], chat_id)
        return begun

    async def insert_messages(self, rows: Sequence[Row]) -> None:
        await self._require_chats(r.get("chatId") for r in rows)
        await self._store().insert_messages(rows)
        for row in rows:
            self._messages.add(row["id"], row["chatId"])

    async def list_messages(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        await self._require_chats([chat_id])
        records = await self._store().list_messages(chat_id, after=after, limit=limit)
        for record in records[-_REMEMBERED:]:
            self._messages.add(record.id, chat_id)
        return records

    async def count_messages(self, chat_id: str) -> int:
        await self._require_chats([chat_id])
        return await self._store().count_messages(chat_id)

    async def delete_message(self, message_id: str) -> None:
        await self._require_owned("message", [message_id])
        await self._store().delete_message(message_id)
        self._messages.discard(message_id)

    # -- tool calls

    async def create_tool_calls(
        self, rows: Sequence[Row], *, mark: WriteMark | None = None
    ) -> None:
        await self._require_owned("message", [_text(r.get("messageId"), "messageId") for r in rows])
        await self._store().create_tool_calls(rows, mark=mark)
        for row in rows:
            owner = self._messages.get(row["messageId"])
            if owner is not None:
                self._tool_calls.add(row["id"], owner)

    async def set_tool_results(
        self, results: Sequence[tuple[str, str]], *, mark: WriteMark | None = None
    ) -> None:
        await self._require_owned("tool_call", [row_id for row_id, _ in results])
        await self._store().set_tool_results(results, mark=mark)

    async def list_tool_calls(self, message_ids: Sequence[str]) -> list[ToolCallRecord]:
        await self._require_owned("message", message_ids)
        return await self._store().list_tool_calls(message_ids)

    # -- requests

    async def _check_requests(self, rows: Sequence[Row]) -> None:
        await self._require_chats(r.get("chatId") for r in rows)
        linked = [r["messageId"] for r in rows if r.get("messageId") is not None]
        if linked:
            await self._require_owned("message", linked)

    async def create_requests(self, rows: Sequence[Row]) -> None:
        await self._check_requests(rows)
        await self._store().create_requests(rows)

    async def finish_turn(
        self,
        message_id: str,
        values: Row,
        requests: Sequence[Row],
        *,
        mark: WriteMark | None = None,
    ) -> None:
        if "chatId" in values:
            raise ScopeError("finish_turn cannot move a message to another chat")
        await self._require_owned("message", [message_id])
        await self._check_requests(requests)
        await self._store().finish_turn(message_id, values, requests, mark=mark)

    async def list_requests(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[RequestRecord]:
        await self._require_chats([chat_id])
        return await self._store().list_requests(chat_id, after=after, limit=limit)

    async def usage(
        self, chat_id: str | None = None, *, where: Mapping[str, Any] | None = None
    ) -> UsageTotals:
        if chat_id is not None:
            await self._require_chats([chat_id])
            return await self._store().usage(chat_id)
        narrowed = {**(where or {})}
        self._refuse_scope_change(narrowed, "usage")
        return await self._store().usage(where={**narrowed, **self._where})

    # -- agent sessions

    async def create_agent_session(self, chat_row: Row, session_row: Row) -> AgentSessionRecord:
        if session_row.get("chatId", chat_row.get("id")) != chat_row.get("id"):
            raise ScopeError("an agent session must belong to the chat created with it")
        record = await self._store().create_agent_session(self._stamp(chat_row), session_row)
        self._chats.add(record.chatId, record.chatId)
        return record

    async def get_agent_session(self, session_id: str) -> AgentSessionRecord | None:
        record = await self._store().get_agent_session(session_id)
        if record is None:
            return None
        if self._chats.get(record.chatId) is None and (
            await self._chat_in_scope(record.chatId) is None
        ):
            return None
        return record

    async def agent_session_of(self, chat_id: str) -> AgentSessionRecord | None:
        await self._require_chats([chat_id])
        return await self._store().agent_session_of(chat_id)

    async def update_agent_session(self, session_id: str, values: Row) -> None:
        if "chatId" in values:
            raise ScopeError("update_agent_session cannot move a session to another chat")
        if await self.get_agent_session(session_id) is None:
            raise ScopeError(f"no agent session {session_id!r} in this scope; nothing was written")
        await self._store().update_agent_session(session_id, values)

    # -- administration

    async def owner_chats(self, kind: OwnedKind, ids: Sequence[str]) -> dict[str, str]:
        await self._require_owned(kind, ids)
        seen = self._messages if kind == "message" else self._tool_calls
        return {i: owner for i in ids if (owner := seen.get(i)) is not None}

    async def subtree_counts(self, chat_ids: Sequence[str]) -> RowCounts:
        await self._require_chats(chat_ids)
        return await self._store().subtree_counts(chat_ids)

    async def delete_chats(self, chat_ids: Sequence[str]) -> int:
        await self._require_chats(chat_ids)
        for chat_id in chat_ids:
            self._chats.discard(chat_id)
        return await self._store().delete_chats(chat_ids)

    async def close(self) -> None:
        """A scoped handle owns nothing: closing the underlying store is its owner's job."""


if TYPE_CHECKING:

    def _implements_both_ports(store: ScopedStore) -> Store:  # checked by mypy, never called
        return store
