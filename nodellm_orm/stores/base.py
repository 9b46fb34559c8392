"""The storage ports: what a turn needs (`TurnStore`) and what administration needs
(`AdminStore`: listing, bulk insert, request paging, scoping checks, retention); a `Store` is
both, and nothing more.

The ORM is written once against `TurnStore`; the CLI, export/import and retention against
`Store`. `SqlStore` (SQLAlchemy Core: SQLite,
PostgreSQL) and `PrismaStore` (a prisma-client-py client) implement it over the same physical
schema.

Conventions every backend follows:
- Rows go in as dicts keyed by the schema's field names (`chatId`, `createdAt`...), with Python
  values: `datetime` (UTC, naive or aware) for DateTime fields, any JSON-serialisable value for
  Json fields (`metadata`), which the backend encodes (JSONB on PostgreSQL, text on SQLite).
  The ORM always supplies `id`, `createdAt` (and `updatedAt`) itself; backends do not default
  them.
- Records come out as the dataclasses of `nodellm_orm.model.records` (the prisma backend may hand
  out its generated models, which have the same attribute names).
- Messages are ordered by (`createdAt`, `id`). The ORM's ids are time-ordered (UUIDv7), so rows
  written in the same millisecond keep their order. On SQLite, DateTime may be stored as
  INTEGER epoch milliseconds (Prisma's native engine; what we write) or ISO-8601 text (Prisma's
  JS driver adapters): backends read both and order both correctly in one table.
- Each method is one round trip (one SQL statement, or one transaction where it says so), so
  the ORM's statement count per turn is what it calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..model import (
    OPTIONAL_MODELS,
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

# The port's vocabulary lives in `nodellm_orm.model`; re-exported for the store modules.
__all__ = [
    "OPTIONAL_MODELS",
    "Cursor",
    "OwnedKind",
    "Row",
    "RowCounts",
    "Store",
    "StoreError",
    "check_turn_rows",
    "turn_rows",
]


class StoreError(Exception):
    """A store was asked for something its database does not have (table, column)."""


class SchemaDriftError(StoreError):
    """The tables lack a column the store writes, or have one of an unusable type (a newer or
    foreign migration changed them); raised when a store binds, before anything is written."""


def near_misses(name: str, existing: Iterable[str]) -> list[str]:
    """The names in `existing` that differ from `name` in letter case only.

    Table and column names are looked up exactly (they are quoted identifiers: on PostgreSQL
    `"LlmChat"` and `llmchat` are two tables). A near miss is never picked, only named in the
    error, so a user who meant it can pass it exactly.
    """
    folded = name.casefold()
    return sorted(n for n in existing if n != name and n.casefold() == folded)


def near_miss_note(wanted: Iterable[str], existing: Iterable[str]) -> str:
    """`; 'userid' differs from 'userId' only in letter case ...`, or "" when none does."""
    names = set(existing)
    pairs = [(w, n) for w in wanted for n in near_misses(w, names)]
    if not pairs:
        return ""
    found = ", ".join(f"{n!r} differs from {w!r}" for w, n in pairs)
    return f"; {found} only in letter case, and names are matched exactly (never one for another)"


def missing_name_error(kind: str, name: str, existing: Iterable[str], *, what: str = "") -> str:
    """`<kind> 'name' (for what) does not exist`, with its near misses and what exists."""
    names = sorted(set(existing))
    where = f" (for {what})" if what else ""
    return (
        f"{kind} {name!r}{where} does not exist{near_miss_note([name], names)}; "
        f"available {kind}s: {', '.join(names) or '(none)'}"
    )


def check_turn_rows(chat_id: str, rows: Sequence[Row]) -> None:
    """Refuse a turn's message row that names a chat other than `chat_id`."""
    for row in rows:
        if row.get("chatId", chat_id) != chat_id:
            raise ValueError("begin_turn rows must belong to the chat they are written to")


def turn_rows(chat_id: str, rows: Sequence[Row]) -> list[Row]:
    """A turn's message rows, each stamped with `chat_id` (one not of that chat is refused)."""
    check_turn_rows(chat_id, rows)
    return [{**row, "chatId": chat_id} for row in rows]


@dataclass(frozen=True, slots=True)
class TurnBegun:
    """What `begin_turn` learned while it wrote a turn's first rows."""

    # How many messages others wrote to the chat after the cursor (all the chat's other
    # messages without a cursor).
    others: int
    # The chat holds fewer rows than the caller accounts for: some were deleted elsewhere, so
    # what the caller holds is out of date and must be read again.
    read_again: bool = False

    @classmethod
    def from_count(cls, count: int, known: int | None = None) -> TurnBegun:
        """From a count of others' rows, less the `known` ones the caller holds already."""
        others = count if known is None else count - known
        if others == 0:
            return _NOTHING_NEW  # most turns: one shared instance, not a new frozen one
        return cls(0, read_again=True) if others < 0 else cls(others)


_NOTHING_NEW = TurnBegun(0)


class StaleMarkError(Exception):
    """A WriteMark was taken on a connection the store has since replaced: the store runs
    the operation again, counting (never seen by callers)."""


class WriteMark:
    """One writer's account of its own writes (an ORM chat's turns), kept by the store.

    `begin_turn` counts the chat's rows to learn what others wrote; where a store can prove
    nothing was written since the writer's last marked write (SqlStore on SQLite: the
    connection's change counter moved only by the writer's own statements, and no other
    connection committed), that count is unchanged and is answered from here instead of
    read, so a long chat's turn does not pay for its length. The writer creates one, passes
    it to each write of its turns, and calls `forget` before writing without it (a failed
    turn's clean-up). Stores that cannot tell ignore it.
    """

    __slots__ = ("_held", "changes", "chat_id", "conn", "rows", "version")

    def __init__(self) -> None:
        # The chat whose count `rows` is, and the connection that proves it (None: unknown).
        self.chat_id: str | None = None
        self.conn: Any = None
        # The connection's total_changes after the writer's last marked write.
        self.changes = -1
        # The connection's data_version at the last begin_turn (moves when another commits).
        self.version: Any = None
        # The chat's message count after the last begin_turn.
        self.rows = 0
        self._held = False

    def forget(self) -> None:
        self.conn = None

    # Run by the store on the connection itself, around the writer's statements: nothing
    # else uses the connection in between, so the counter read here is exact.

    def enter(self, conn: Any) -> None:
        """Before a marked write: the account holds if nothing changed since the last one."""
        self._held = self.conn is conn and conn.total_changes == self.changes
        self.conn = None  # until the write is done: a write that fails leaves it unknown

    def leave(self, conn: Any) -> None:
        if self._held:
            self.conn, self.changes = conn, conn.total_changes

    def proven(self, conn: Any) -> None:
        """Before a begin_turn answered from the mark (its statement checks the counters):
        the mark must be this connection's, whose counters those are."""
        taken_on, self.conn = self.conn, None
        if taken_on is not conn:
            raise StaleMarkError("the write mark was taken on another connection")

    def counted(self, conn: Any) -> None:
        """After a begin_turn that counted (or proved its count): the account is exact."""
        self.conn, self.changes = conn, conn.total_changes


@runtime_checkable
class TurnStore(Protocol):
    """What a chat's turns need (the ORM's Chat, its recorder and agent sessions)."""

    @property
    def absent(self) -> Mapping[str, str]:
        """Optional models whose table (or delegate) does not exist, with the name looked for:
        reads of them see no rows."""
        ...

    async def bind(self, table_names: TableNames) -> Store:
        """A store over the given tables (defaults where None), checked to exist.

        Only the chat and message tables must exist; absent optional ones are in `absent`.

        Raises StoreError naming the missing table/delegate and listing the available ones.
        Cheap to call repeatedly: what it learns about the database is cached.
        """
        ...

    async def chat_columns(self) -> frozenset[str]:
        """Every column of the chat table, custom ones (userId...) included."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Run every call made inside the block in one transaction (nested calls join it)."""
        ...

    # chats
    async def create_chat(self, row: Row) -> ChatRecord: ...
    async def get_chat(self, chat_id: str) -> ChatRecord | None: ...
    async def update_chat(self, chat_id: str, values: Row) -> None: ...
    async def delete_chat(self, chat_id: str) -> bool:
        """Delete the chat and, by cascade, everything under it. False if it did not exist."""
        ...

    # messages
    async def begin_turn(
        self,
        chat_id: str,
        rows: Sequence[Row],
        *,
        after: Cursor | None = None,
        known: int | None = None,
        mark: WriteMark | None = None,
    ) -> TurnBegun:
        """Insert `rows` (a turn's user message and assistant placeholder) in ONE statement.

        Reports how many messages others wrote to the chat after the cursor `after` (all the
        chat's other messages when `after` is None), read in that same statement, so the
        caller learns about another writer without an extra round trip. `known` is how many
        messages the caller holds up to the cursor: a store may answer from the chat's count
        instead (count - known) when that is cheaper, and then tells rows deleted elsewhere
        (`read_again`). `mark`: the writer's WriteMark, which this and its other turn writes
        keep up to date.
        """
        ...

    async def list_messages(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        """The chat's messages in (createdAt, id) order; only those after `after` if given,
        at most `limit` (a page) if given."""
        ...

    async def delete_message(self, message_id: str) -> None: ...

    # tool calls
    async def create_tool_calls(
        self, rows: Sequence[Row], *, mark: WriteMark | None = None
    ) -> None:
        """Insert tool-call rows in one statement."""
        ...

    async def set_tool_results(
        self, results: Sequence[tuple[str, str]], *, mark: WriteMark | None = None
    ) -> None:
        """Set `result` of tool-call rows, given (row id, result) pairs, in one statement."""
        ...

    async def list_tool_calls(self, message_ids: Sequence[str]) -> list[ToolCallRecord]:
        """Tool calls of the given messages in (createdAt, id) order."""
        ...

    # requests
    async def create_requests(self, rows: Sequence[Row]) -> None:
        """Insert request rows in one statement."""
        ...

    async def finish_turn(
        self,
        message_id: str,
        values: Row,
        requests: Sequence[Row],
        *,
        mark: WriteMark | None = None,
    ) -> None:
        """In one transaction: update the assistant message, insert the turn's request rows.

        Two statements (one when `requests` is empty).
        """
        ...

    async def usage(
        self, chat_id: str | None = None, *, where: Mapping[str, Any] | None = None
    ) -> UsageTotals:
        """Sums over request rows: one chat's (`Chat.stats`), or (chat_id None, for
        administration) those of every chat whose columns equal `where` (the whole
        database's without it)."""
        ...

    # agent sessions
    async def create_agent_session(self, chat_row: Row, session_row: Row) -> AgentSessionRecord:
        """Create the session's chat and the session in one transaction."""
        ...

    async def get_agent_session(self, session_id: str) -> AgentSessionRecord | None: ...

    async def update_agent_session(self, session_id: str, values: Row) -> None: ...

    async def close(self) -> None:
        """Release connections this store opened itself (never a user-supplied client)."""
        ...


@runtime_checkable
class AdminStore(Protocol):
    """What administration needs beyond turns: listing, bulk insert (import), paging the
    request rows, scoping checks and retention (the CLI, export/import, purge, scoped
    handles over an inner store)."""

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql' (or 'mysql' where a backend supports it)."""
        ...

    async def list_chats(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        where: Mapping[str, Any] | None = None,
        before: datetime | None = None,
        oldest_first: bool = False,
    ) -> list[ChatRecord]:
        """Newest first (oldest first if asked); only chats whose columns equal `where` and,
        given `before`, created before it."""
        ...

    async def insert_messages(self, rows: Sequence[Row]) -> None:
        """Insert message rows in one statement (import, seeding)."""
        ...

    async def count_messages(self, chat_id: str) -> int: ...

    async def list_requests(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[RequestRecord]:
        """The chat's request rows in (createdAt, id) order, paged like `list_messages`."""
        ...

    async def agent_session_of(self, chat_id: str) -> AgentSessionRecord | None:
        """The agent session whose chat is `chat_id`, if any (export)."""
        ...

    async def owner_chats(self, kind: OwnedKind, ids: Sequence[str]) -> dict[str, str]:
        """The chat id of each message (or tool call) in `ids` that exists (scoping)."""
        ...

    async def subtree_counts(self, chat_ids: Sequence[str]) -> RowCounts:
        """How many rows of each table belong to these chats (the chats themselves included)."""
        ...

    async def delete_chats(self, chat_ids: Sequence[str]) -> int:
        """Delete these chats (and by cascade everything under them); how many existed."""
        ...


@runtime_checkable
class Store(TurnStore, AdminStore, Protocol):
    """One database, bound to one set of table names: both ports. Every backend (SqlStore,
    PrismaStore) and every scoped handle implements it."""
