"""`SqlStore`: the engine-free backend, on SQLAlchemy 2 async Core (SQLite, PostgreSQL).

How it stays fast (figures in benchmarks/store_bench.py):
- SQL is built with SQLAlchemy Core over the `tables.py` Table objects and compiled once per
  statement shape (table names, columns, row count); afterwards an operation only binds a
  tuple of values.
- Each operation is one trip to the driver. On SQLite, aiosqlite runs sqlite3 in a worker
  thread and SQLAlchemy's adapter pays four thread hops per statement (cursor, execute, fetch,
  close) plus one per commit (about 0.8 ms per write measured); the store instead runs an
  operation's statements and its commit as one function in that worker thread, one hop.
  On PostgreSQL the held connection is in autocommit mode, so a one-statement operation is
  one round trip, and `finish_turn` is a single statement (a data-modifying CTE).
- The store holds its connections (its own bounded pool, `connection.py`) instead of paying
  a pool checkout and reset per operation. SQLite gets one connection, operations taking
  turns, since SQLite has one writer anyway; PostgreSQL up to pool_size + max_overflow.
- SQLite group commit: operations of many chats that queue for the connection together run
  in one transaction with one commit (a turn's statements are unchanged; each caller returns
  once its writes are committed). With 50 chats at once this cut the CPU per turn by about a
  third (benchmarks/peers.py): the commit, and SQLite's per-transaction work (lock, WAL index
  and page-cache checks), are paid once per group.
- What differs between the databases is asked of one dialect object (`dialects.py`).

SQLite runs with journal_mode=WAL and synchronous=NORMAL: a commit survives a crash of the
process (the WAL is written before commit returns); a power loss or OS crash may lose the last
commits before a checkpoint but never corrupts the database.

DateTime values come back as aware UTC datetimes; naive datetimes given are taken as UTC.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import NullType

from ..core.clock import to_datetime, utc_now
from ..core.jsoncodec import encode as encode_json
from ..model import (
    DEFAULT_TABLE_NAMES,
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
    columns,
    resolve_names,
)
from ..model.definition import JSON_FIELDS, MODELS
from .base import (
    StaleMarkError,
    Store,
    StoreError,
    TurnBegun,
    WriteMark,
    check_turn_rows,
    missing_name_error,
    near_miss_note,
    near_misses,
)
from .connection import Lease, Pool, Step
from .dialects import SqlDialect, dialect_for_url, dialect_of
from .drift import MIGRATIONS_SQL, drift_error, drift_problems
from .readers import record_reader
from .tables import Tables, build_tables
from .urls import async_url, engine_for_url, normalize_url

if TYPE_CHECKING:
    from .scoped import ScopedStore

__all__ = ["SqlStore", "connect", "normalize_url"]

# Ids bound per statement by the administration queries (well inside every driver's limit).
_ID_CHUNK = 500
# Row shapes (table, keys set) whose columns a store remembers as checked.
_SHAPES_REMEMBERED = 256

# What a store selects, in record order: the readers build records positionally from it.
_CHAT_FIELDS = columns(ChatRecord)
_CHAT_DATETIMES = frozenset(MODELS["chat"].of_type("DateTime"))
_CHAT_JSON = frozenset(MODELS["chat"].of_type("Json"))
_TOOL_CALL_FIELDS = columns(ToolCallRecord)
# A chat's page of messages or requests is selected by chatId: the records take it from the
# query's parameter rather than decoding the same text again from every row. (The schema's
# TEXT chatId compares exactly, byte for byte, so the value is the one stored.)
_PAGE_GIVEN = ("chatId",)
_MESSAGE_PAGE = tuple(f for f in columns(MessageRecord) if f not in _PAGE_GIVEN)
_REQUEST_PAGE = tuple(f for f in columns(RequestRecord) if f not in _PAGE_GIVEN)
_SESSION_FIELDS = columns(AgentSessionRecord)


# --- statements -----------------------------------------------------------------------------


STATEMENT_CACHE_SIZE = 512
"""Compiled statements kept per engine; the least recently used one goes first."""

# Statement shapes whose size follows the data are drawn from a fixed set, so what is compiled
# (and cached) does not grow with row counts or history length: INSERTs of up to _EXACT_ROWS
# rows are compiled for their row count, larger ones split into powers of two; IN lists are
# padded (repeating their last value) to a power of two. Both stay within the driver's
# bind-parameter limit and these caps, which bound one compiled statement's size.
_EXACT_ROWS = 8
_MAX_ROWS = 1024
_MAX_IN = 4096
# At most this many rows written since a turn's cursor (by any chat) are read before
# begin_turn counts the chat's own instead (fewer when the caller holds fewer rows before
# the cursor): on a database busier than that, a turn pays this on top of the count.
_WINDOW_ROWS = 1000
# ... and only when the caller holds more rows than this before the cursor: a short chat's
# count is as cheap as the window.
_WINDOW_FROM = 64


# The types of most values a row holds, bound as they are (tested before isinstance).
_AS_IS = frozenset({str, int, float, bool, type(None)})


def _pow2_floor(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def _row_chunks(n: int, per_statement: int) -> list[int]:
    """Row counts of the INSERTs that write `n` rows, `per_statement` at most each."""
    most = min(_MAX_ROWS, per_statement)
    if most < 1:
        raise StoreError("a row has more columns than one statement may bind")
    cap = _pow2_floor(most)
    sizes: list[int] = []
    while n:
        if n <= _EXACT_ROWS and n <= most:
            sizes.append(n)
            break
        size = min(cap, _pow2_floor(n))
        sizes.append(size)
        n -= size
    return sizes


def _padded_chunks(values: Sequence[Any], per_statement: int) -> list[list[Any]]:
    """`values` in chunks of power-of-two sizes, the last padded by repeating its last value."""
    cap = _pow2_floor(min(_MAX_IN, per_statement))
    chunks = [list(values[i : i + cap]) for i in range(0, len(values), cap)]
    last = chunks[-1]
    want = 1 << (len(last) - 1).bit_length()
    last.extend([last[-1]] * (want - len(last)))
    return chunks


class _StatementCache:
    """Compiled statements by shape, least recently used dropped beyond `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Any, _Sql] = OrderedDict()

    def get(self, key: Any) -> _Sql | None:
        sql = self._entries.get(key)
        if sql is not None:
            self._entries.move_to_end(key)
        return sql

    def put(self, key: Any, sql: _Sql) -> None:
        self._entries[key] = sql
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def shapes(self) -> list[Any]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class _Sql:
    text: str
    names: tuple[str, ...]
    # For an INSERT: whether it binds its rows' values in row order (learnt on first use).
    row_major: bool | None = None
    # For a statement binding rows' cells as `<column>_<row>`: per bound name, the row and
    # the column it reads (row -1: the name of another parameter); worked out at first use.
    cells: tuple[tuple[int, str], ...] | None = None

    def step(self, params: dict[str, Any], rows: Any) -> Step:
        return (self.text, tuple([params[n] for n in self.names]), rows)

    def rows_step(
        self,
        rows: Sequence[Mapping[str, Any]],
        cols: Sequence[str],
        rows_out: Any,
        extra: Mapping[str, Any] | None = None,
    ) -> Step:
        """`step` with the rows' cells read in place: no `<column>_<row>` name made per cell
        per call (the statement's shape fixes `cols` and the row count)."""
        cells = self.cells
        if cells is None:
            at = {f"{c}_{i}": (i, c) for i in range(len(rows)) for c in cols}
            cells = self.cells = tuple([at.get(n, (-1, n)) for n in self.names])
        other = extra or {}
        args = tuple([rows[i].get(c) if i >= 0 else other[c] for i, c in cells])
        return (self.text, args, rows_out)


# --- what stores over one engine share ------------------------------------------------------


class _Shared:
    """What every store bound to one engine shares: its dialect, connections and caches."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owns_engine: bool,
        pool_size: int | None = None,
        max_overflow: int | None = None,
    ) -> None:
        self.engine = engine
        self.owns_engine = owns_engine
        self.sa_dialect: Dialect = engine.dialect
        self.dialect: SqlDialect = dialect_of(engine.dialect)
        self.name = self.dialect.name
        size, overflow = self.dialect.pool_bounds(pool_size, max_overflow)
        # Bind parameters per statement: the dialect's, lowered to what a connection reports.
        self.max_params = self.dialect.max_params
        self.pool = Pool(
            engine,
            self._open_lease,
            size=size,
            overflow=overflow,
            group_commit=self.dialect.group_commit,
        )
        # Every operation of the stores: the pool's own method, not a coroutine around it
        # (a turn makes two of these calls; each layer of coroutine costs about a microsecond).
        self.run: Callable[[Sequence[Step]], Awaitable[list[Any]]] = self.pool.run
        self.tables: frozenset[str] | None = None  # the tables there are, names exact
        # Per table: its columns in order and their declared types, read once (at first bind).
        self.columns: dict[str, tuple[str, ...]] = {}
        self.declared: dict[str, dict[str, str]] = {}
        self.compiled = _StatementCache(STATEMENT_CACHE_SIZE)
        self.bound: dict[tuple[str, ...], SqlStore] = {}
        # How written rows carry DateTime, learned from the database at the first bind.
        self.write_datetime: Callable[[datetime], Any] | None = None

    async def _open_lease(self, conn: AsyncConnection) -> Lease:
        lease = await self.dialect.open_lease(conn, owns_engine=self.owns_engine)
        if lease.max_params is not None and lease.max_params < self.max_params:
            self.max_params = lease.max_params
        return lease

    async def learn_datetime(self, message_table: str) -> None:
        """How written rows carry DateTime: as the newest message row does (see the dialect)."""
        probe = self.dialect.datetime_probe(message_table)
        stored = None
        if (
            probe is not None
            and message_table in await self.table_map()
            # A table without createdAt (drifted) is reported by check_columns, at bind.
            and "createdAt" in await self.table_columns(message_table)
        ):
            (rows,) = await self.run([(probe, (), True)])
            stored = rows[0][0] if rows else None
        self.write_datetime = self.dialect.datetime_writer(stored)

    async def table_map(self) -> frozenset[str]:
        """The tables of the schema, by exact name (identifiers are quoted: on PostgreSQL
        `"LlmChat"` and `llmchat` are two tables, and only the one asked for is used)."""
        if self.tables is None:
            (rows,) = await self.run([(self.dialect.tables_sql, (), True)])
            self.tables = frozenset(r[0] for r in rows)
        return self.tables

    async def table_columns(self, table: str) -> tuple[str, ...]:
        if table not in self.columns:
            await self.load_columns([table])
        return self.columns[table]

    async def load_columns(self, tables: Sequence[str]) -> None:
        """Read the columns of those `tables` not yet read, in one trip to the driver."""
        todo = [t for t in dict.fromkeys(tables) if t not in self.columns]
        if not todo:
            return
        found = await self.run([(self.dialect.columns_sql, (t,), True) for t in todo])
        for table, rows in zip(todo, found, strict=True):
            self.columns[table] = tuple(r[0] for r in rows)
            self.declared[table] = {r[0]: str(r[1] or "") for r in rows}

    def forget_columns(self, tables: Sequence[str]) -> None:
        """Read these tables' columns again next time (after they were found unusable)."""
        for table in tables:
            self.columns.pop(table, None)
            self.declared.pop(table, None)

    async def check_columns(self, tables: Sequence[Table]) -> None:
        """Raise SchemaDriftError unless every column the store writes to `tables` exists
        with a type that holds its values (`drift.py`). Run when a store binds, before
        anything is written; the columns read here serve `chat_columns` too, so a bind costs
        one more trip to the driver, once per set of tables."""
        await self.load_columns([t.name for t in tables])
        problems = drift_problems(self.dialect, tables, self.declared)
        if problems:
            self.forget_columns([t.name for t in tables])
            self.tables = None  # look again: the error describes the database as it is now
            migrations = None
            if "_prisma_migrations" in await self.table_map():
                (migrations,) = await self.run([(MIGRATIONS_SQL, (), True)])
            raise drift_error(problems, self.dialect, migrations)

    async def close(self) -> None:
        if self.pool.closed:
            return
        await self.pool.close()
        if self.owns_engine:
            await self.engine.dispose()


# --- the store ------------------------------------------------------------------------------


class SqlStore:
    """The `Store` port on SQLAlchemy async Core. Create with `connect()` or `from_engine()`."""

    def __init__(
        self,
        shared: _Shared,
        names: dict[str, str],
        checked: bool,
        absent: Mapping[str, str] | None = None,
    ) -> None:
        self._s = shared
        self._names = names
        self.absent: Mapping[str, str] = absent or {}
        self._key = tuple(names[k] for k in sorted(names))
        self._checked = checked
        self._t: Tables = build_tables(names)
        self._chat_table: Table | None = None
        self._chat_cols: frozenset[str] | None = None
        self._d: SqlDialect = shared.dialect
        self._dt: Callable[[datetime], Any] = shared.dialect.param_datetime
        # Written rows follow what the database holds (bind learns it); cursors compare as _dt.
        self._write_dt: Callable[[datetime], Any] = (
            shared.write_datetime or shared.dialect.datetime_writer(None)
        )
        self._json_text = shared.dialect.json_as_text
        # (table, the keys rows set) -> those keys in table order, checked: every turn writes
        # rows of the same few shapes, and checking each key against the table's columns
        # cost more than building the statement's parameters.
        self._shapes: dict[tuple[Table, tuple[str, ...]], list[str]] = {}
        self._read_messages = record_reader(
            MessageRecord, json_text=self._json_text, given=_PAGE_GIVEN
        )
        self._read_tool_calls = record_reader(ToolCallRecord, json_text=self._json_text)
        self._read_requests = record_reader(
            RequestRecord, json_text=self._json_text, given=_PAGE_GIVEN
        )
        self._read_sessions = record_reader(AgentSessionRecord, json_text=self._json_text)

    # -- construction

    @classmethod
    def from_engine(
        cls,
        engine: AsyncEngine,
        *,
        pool_size: int | None = None,
        max_overflow: int | None = None,
    ) -> SqlStore:
        """A store over a user's engine; close() releases the store's connections only.

        The store keeps its own bounded set of the engine's connections (see `connect`);
        keep the engine's pool at least `pool_size + max_overflow` large, or callers wait in
        the engine's pool, with its timeout.
        """
        shared = _Shared(engine, owns_engine=False, pool_size=pool_size, max_overflow=max_overflow)
        return cls(shared, resolve_names(None), checked=False)

    @property
    def dialect(self) -> str:
        return self._s.name

    @property
    def engine(self) -> AsyncEngine:
        return self._s.engine

    async def bind(self, table_names: TableNames) -> SqlStore:
        wanted = resolve_names(table_names)
        key = tuple(wanted[k] for k in sorted(wanted))
        store = self._s.bound.get(key)
        if store is not None:
            return store
        existing = await self._s.table_map()
        if any(name not in existing for name in wanted.values()):
            # Tables may have been created since the first look: look once more.
            self._s.tables = None
            existing = await self._s.table_map()
        actual: dict[str, str] = {}
        absent: dict[str, str] = {}
        for model, name in wanted.items():
            if name not in existing and (
                model not in OPTIONAL_MODELS or near_misses(name, existing)
            ):
                # A near miss (`llmchat` for `LlmChat`) is never used, even for an optional
                # table: the user may have meant it, so they are told instead.
                raise StoreError(missing_name_error("table", name, existing, what=model))
            if name not in existing:
                # A minimal schema: reads see no rows; open_store refuses what would write.
                absent[model] = name
            actual[model] = name
        tables = build_tables(actual)
        await self._s.check_columns([getattr(tables, m) for m in actual if m not in absent])
        store = SqlStore(self._s, actual, checked=True, absent=absent)
        if self._s.write_datetime is None:
            await self._s.learn_datetime(actual["message"])
        self._s.bound[key] = store
        return store

    async def chat_columns(self) -> frozenset[str]:
        if self._chat_cols is None:
            cols = await self._s.table_columns(self._names["chat"])
            if not cols:
                existing = await self._s.table_map()
                raise StoreError(missing_name_error("table", self._names["chat"], existing))
            extra = [c for c in cols if c not in self._t.chat.c]
            for c in extra:
                self._t.chat.append_column(Column(c, NullType()))
            self._chat_table = self._t.chat
            self._chat_cols = frozenset(cols)
        return self._chat_cols

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Calls inside the block share one connection and transaction; nested blocks join.

        On SQLite the block holds the store's only connection: keep it short.
        """
        async with self._s.pool.transaction():
            yield

    # -- helpers

    def _compile(self, key: Any, build: Callable[[], ClauseElement]) -> _Sql:
        full = (self._key, key)
        sql = self._s.compiled.get(full)
        if sql is None:
            c = build().compile(
                dialect=self._s.sa_dialect, compile_kwargs={"render_postcompile": True}
            )
            positions: Sequence[str] = getattr(c, "positiontup", None) or ()
            sql = _Sql(c.string, tuple(positions))
            self._s.compiled.put(full, sql)
        return sql

    def _order_key(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._d.order_key(col)

    def _encode(self, row: Row, json_fields: frozenset[str] = JSON_FIELDS) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if k in json_fields:
                # JSON text on both dialects: SQLAlchemy's asyncpg codec sends text as JSONB.
                v = encode_json(v, field=k)
            elif type(v) not in _AS_IS and isinstance(v, datetime):
                v = self._write_dt(v)
            out[k] = v
        return out

    def _check_columns(self, table: Table, keys: Sequence[str] | set[str]) -> None:
        unknown = [k for k in keys if k not in table.c]
        if unknown:
            raise StoreError(
                f"unknown column(s) {', '.join(map(repr, unknown))} of table {table.name!r}; "
                f"columns: {', '.join(table.c.keys())}{near_miss_note(unknown, table.c.keys())}"
            )

    def _row_columns(self, table: Table, rows: Sequence[dict[str, Any]]) -> list[str]:
        """The table's columns any of `rows` sets, in table order (checked to exist)."""
        if len(rows) == 1:  # a turn's request, an update's values
            return self._columns_of(table, tuple(rows[0]))
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(r))
        return self._columns_of(table, tuple(keys))

    def _columns_of(self, table: Table, keys: tuple[str, ...]) -> list[str]:
        """`keys` in table order, each checked to be a column of `table` (StoreError names the
        others). Remembered per shape; the list returned is shared, never to be changed."""
        shape = (table, keys)
        cols = self._shapes.get(shape)
        if cols is None:
            self._check_columns(table, keys)
            present = set(keys)
            cols = [c for c in table.c.keys() if c in present]  # noqa: SIM118
            if len(self._shapes) >= _SHAPES_REMEMBERED:
                self._shapes.clear()  # rows of ever new shapes: keep the memo bounded
            self._shapes[shape] = cols
        return cols

    def _insert_shape(self, table: Table, cols: list[str], n: int) -> _Sql:
        def build() -> ClauseElement:
            return insert(table).values(
                [{c: bindparam(f"{c}_{i}", type_=table.c[c].type) for c in cols} for i in range(n)]
            )

        return self._compile(("insert", table.name, tuple(cols), n), build)

    @staticmethod
    def _row_major(sql: _Sql, cols: list[str], n: int) -> bool:
        """Whether the statement binds its rows' values in row order (then no names needed)."""
        if sql.row_major is None:
            sql.row_major = sql.names == tuple(f"{c}_{i}" for i in range(n) for c in cols)
        return sql.row_major

    def _insert_sql(self, table: Table, rows: Sequence[dict[str, Any]]) -> tuple[_Sql, list[str]]:
        """One INSERT for a few rows (one chat, one session)."""
        cols = self._row_columns(table, rows)
        return self._insert_shape(table, cols, len(rows)), cols

    def _insert_steps(
        self, table: Table, rows: Sequence[dict[str, Any]], cols: list[str], sizes: list[int]
    ) -> list[Step]:
        steps: list[Step] = []
        start = 0
        for size in sizes:
            part = rows[start : start + size]
            sql = self._insert_shape(table, cols, size)
            if size > _EXACT_ROWS and self._row_major(sql, cols, size):
                # A bulk insert: values in order, without a name per cell.
                steps.append((sql.text, tuple([r.get(c) for r in part for c in cols]), False))
            else:
                steps.append(sql.rows_step(part, cols, False))
            start += size
        return steps

    async def _insert(
        self, table: Table, rows: Sequence[Row], mark: WriteMark | None = None
    ) -> None:
        if not rows:
            return
        enc = [self._encode(r) for r in rows]
        cols = self._row_columns(table, enc)
        sizes = _row_chunks(len(enc), self._s.max_params // len(cols))
        # Several statements (a large import) run in one transaction: all rows or none.
        await self._s.run(self._marked(mark, self._insert_steps(table, enc, cols, sizes)))

    def _select_sql(
        self, key: str, table: Table, fields: Sequence[str], where: Callable[[], Any]
    ) -> _Sql:
        return self._compile(
            (key, table.name),
            lambda: select(*[table.c[f] for f in fields]).where(where()),
        )

    # -- chats

    def _chat_record(self, row: Sequence[Any], cols: Sequence[str]) -> ChatRecord:
        """A chat row by column name: the schema's fields, and the user's columns as `extra`."""
        values = dict(zip(cols, row, strict=True))
        known: dict[str, Any] = {}
        for name in _CHAT_FIELDS:
            value = values.pop(name, None)
            if name in _CHAT_DATETIMES:
                value = to_datetime(value)
            elif name in _CHAT_JSON and self._json_text and isinstance(value, str):
                value = _loads(value)
            known[name] = value
        return ChatRecord(**known, extra=values)

    async def _chat(self) -> tuple[Table, tuple[str, ...]]:
        await self.chat_columns()
        assert self._chat_table is not None
        return self._chat_table, tuple(self._chat_table.c.keys())

    async def create_chat(self, row: Row) -> ChatRecord:
        table, cols = await self._chat()
        self._check_columns(table, list(row))
        enc = self._encode(row)
        keys = [c for c in cols if c in enc]
        sql = self._compile(
            ("create_chat", tuple(keys)),
            lambda: (
                insert(table)
                .values({k: bindparam(k, type_=table.c[k].type) for k in keys})
                .returning(*table.c)
            ),
        )
        (rows,) = await self._s.run([sql.step(enc, True)])
        return self._chat_record(rows[0], cols)

    async def get_chat(self, chat_id: str) -> ChatRecord | None:
        table, cols = await self._chat()
        sql = self._compile(
            ("get_chat", cols), lambda: select(*table.c).where(table.c.id == bindparam("id"))
        )
        (rows,) = await self._s.run([sql.step({"id": chat_id}, True)])
        return self._chat_record(rows[0], cols) if rows else None

    async def update_chat(self, chat_id: str, values: Row) -> None:
        table, _ = await self._chat()
        self._check_columns(table, list(values))
        await self._update(table, chat_id, {"updatedAt": utc_now(), **values})

    async def _update(
        self, table: Table, row_id: str, values: Row, mark: WriteMark | None = None
    ) -> None:
        if not values:
            return
        enc = self._encode(values)
        keys = tuple(enc)
        sql = self._compile(
            ("update", table.name, keys),
            lambda: (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({k: bindparam(k, type_=table.c[k].type) for k in keys})
            ),
        )
        await self._s.run(self._marked(mark, [sql.step({**enc, "_id": row_id}, False)]))

    async def delete_chat(self, chat_id: str) -> bool:
        t = self._t.chat
        sql = self._compile("delete_chat", lambda: delete(t).where(t.c.id == bindparam("id")))
        (count,) = await self._s.run([sql.step({"id": chat_id}, False)])
        return bool(count)

    async def list_chats(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        where: Mapping[str, Any] | None = None,
        before: datetime | None = None,
        oldest_first: bool = False,
    ) -> list[ChatRecord]:
        table, cols = await self._chat()
        conds = dict(where or {})
        self._check_columns(table, list(conds))
        keys = tuple(sorted(conds))

        def build() -> ClauseElement:
            key = self._order_key(table.c.createdAt)
            q = select(*table.c).where(*self._chat_filter(table, keys))
            if before is not None:
                q = q.where(key < bindparam("before", type_=table.c.createdAt.type))
            order = (key, table.c.id) if oldest_first else (key.desc(), table.c.id.desc())
            return (
                q.order_by(*order)
                .limit(bindparam("limit", type_=Integer))
                .offset(bindparam("offset", type_=Integer))
            )

        sql = self._compile(("list_chats", cols, keys, before is not None, oldest_first), build)
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        params.update({f"w_{k}": conds[k] for k in keys})
        if before is not None:
            params["before"] = self._dt(before)
        (rows,) = await self._s.run([sql.step(params, True)])
        return [self._chat_record(r, cols) for r in rows]

    @staticmethod
    def _chat_filter(table: Table, keys: Sequence[str]) -> list[ColumnElement[bool]]:
        """`column = :w_column` for each scope/filter column of the chat table."""
        return [table.c[k] == bindparam(f"w_{k}", type_=table.c[k].type) for k in keys]

    # -- messages

    def _after(self, m: Any, at: Any, after_id: Any) -> ColumnElement[bool]:
        """Rows strictly after the cursor (createdAt, id) (the dialect's `after`)."""
        return self._d.after(m.c.createdAt, m.c.id, at, after_id)

    async def begin_turn(
        self,
        chat_id: str,
        rows: Sequence[Row],
        *,
        after: Cursor | None = None,
        known: int | None = None,
        mark: WriteMark | None = None,
    ) -> TurnBegun:
        if not rows:
            return TurnBegun(await self.count_messages(chat_id))
        m = self._t.message
        # The statement binds chatId once, from `chat_id`: the rows are checked, not stamped.
        check_turn_rows(chat_id, rows)
        enc = [self._encode(r) for r in rows]
        cols = [c for c in self._row_columns(m, enc) if c != "chatId"]
        n = len(enc)
        # The schema has no (chatId, createdAt) index, so "rows after the cursor" costs either
        # the chat's size (chatId index) or everything written since the cursor, by any chat
        # (createdAt index). PostgreSQL counts a short chat's own rows (chatId index only,
        # see chat_rows below) and reads a long chat's newest rows first, bounded by the
        # chat's size (the window below). SQLite has no statistics and would guess; there,
        # given the caller's count, a covering count of the chat's index entries (~0.04 µs
        # each, no row lookups) is predictable, and skipped altogether when the writer's mark
        # proves nothing else wrote since its last count.
        by_count = known is not None and self._d.count_by_known
        whole_chat = by_count or after is None
        # Read the newest rows first (below) only where the chat's count would read many.
        probe = not whole_chat and (known is None or known > _WINDOW_FROM)
        marked = mark is not None and self._d.write_marks and whole_chat
        quiet = marked and mark is not None and mark.conn is not None and mark.chat_id == chat_id

        # Where the statement's subquery sees only what was there when it started, our rows
        # are not among those counted (and none with their ids can be there: the INSERT would
        # fail), so nothing is subtracted: every row counted pays each test of the filter.
        sees_ours = self._d.sees_own_inserts

        def build() -> ClauseElement:
            prev = m.alias("prev")
            ids: list[Any] = [bindparam(f"id_{i}") for i in range(n)]
            others: Any
            if whole_chat:
                others = (
                    select(func.count())
                    .select_from(prev)
                    .where(prev.c.chatId == bindparam("chat"))
                    .scalar_subquery()
                )
                if sees_ours:  # subtracted by primary key
                    others = (
                        others
                        - select(func.count())
                        .select_from(prev)
                        .where(prev.c.id.in_(ids))
                        .scalar_subquery()
                    )
            else:
                at = bindparam("at", type_=m.c.createdAt.type)
                mine = [prev.c.id.not_in(ids)] if sees_ours else []
                # The chat's rows (chatId index), then the cursor's test on each, whatever
                # the statistics say. Given both at once on a table not yet analysed,
                # PostgreSQL's generic plan also range-scanned the createdAt index from the
                # cursor, and that range holds every chat's rows of the late window, not this
                # chat's (50 x 20 turns at once slowed from 2,300 to 1,500 turns/s as the
                # table reached 20,000 rows).
                chat_rows = self._d.kept_apart(
                    select(prev.c.createdAt, prev.c.id).where(
                        prev.c.chatId == bindparam("chat"), *mine
                    )
                ).subquery("chat_rows")
                others = (
                    select(func.count())
                    .select_from(chat_rows)
                    .where(self._after(chat_rows, at, bindparam("after_id")))
                    .scalar_subquery()
                )
                if probe:
                    # A prepared statement's generic plan cannot weigh the cursor's age, and
                    # PostgreSQL's picks the chatId index: the whole chat, every turn (a
                    # 10,000-message chat: 1.6 ms). So the rows of any chat since the cursor are
                    # read first, in createdAt order through its index, at most as many as the
                    # caller holds before the cursor (and _WINDOW_ROWS). If they all fit, the
                    # chat's rows among them are the count; if not, the chat is counted as
                    # before, the window having cost no more than that count. COALESCE runs the
                    # fallback only when needed.
                    window = bindparam("window", type_=Integer)
                    recent = (
                        select(prev.c.chatId, prev.c.createdAt, prev.c.id)
                        .where(prev.c.createdAt >= at, *mine)
                        .order_by(prev.c.createdAt)
                        .limit(window)
                        .offset(literal_column("0"))  # else SQLite's LIMIT invents a parameter
                        .subquery("recent")
                    )
                    in_window = (
                        select(
                            case(
                                (
                                    func.count() < window,
                                    func.count().filter(
                                        and_(
                                            recent.c.chatId == bindparam("chat"),
                                            self._after(recent, at, bindparam("after_id")),
                                        )
                                    ),
                                ),
                                else_=null(),
                            )
                        )
                        .select_from(recent)
                        .scalar_subquery()
                    )
                    others = func.coalesce(in_window, others)
            if quiet:  # the count as last made, unless something was written since
                unchanged = self._d.unchanged_since(bindparam("changes"), bindparam("version"))
                others = case((unchanged, bindparam("rows", type_=Integer)), else_=others)
            values = [
                {
                    "chatId": bindparam("chat", type_=m.c.chatId.type),
                    **{c: bindparam(f"{c}_{i}", type_=m.c[c].type) for c in cols},
                }
                for i in range(n)
            ]
            first = m.c.id == ids[0]
            out = [case((first, others))]
            if marked:
                out.append(case((first, self._d.data_version())))
            return insert(m).values(values).returning(*out)

        shape = ("begin_turn", tuple(cols), n, whole_chat, probe, marked, quiet)
        sql = self._compile(shape, build)
        params: dict[str, Any] = {"chat": chat_id}
        if not whole_chat:
            assert after is not None
            params["at"] = self._dt(after[0])
            params["after_id"] = after[1]
        if probe:
            # One more than the rows the window may hold, so a full window shows it overflowed.
            held = _WINDOW_ROWS if known is None else min(known, _WINDOW_ROWS)
            params["window"] = held + 1
        if mark is None or not marked:
            if mark is not None:
                mark.forget()  # this count is not the whole chat's
            (out,) = await self._s.run([sql.rows_step(enc, cols, True, params)])
        else:
            if quiet:
                params.update(changes=mark.changes, version=mark.version, rows=mark.rows)
            steps = [
                ("", (), mark.proven if quiet else mark.enter),
                sql.rows_step(enc, cols, True, params),
                ("", (), mark.counted),
            ]
            try:
                _, out, _ = await self._s.run(steps)
            except StaleMarkError:  # its connection was replaced: count on the new one
                return await self.begin_turn(chat_id, rows, after=after, known=known, mark=mark)
        first = out[0]
        if first[0] is None:  # RETURNING's rows in another order than the VALUES
            first = next(r for r in out if r[0] is not None)
        count = int(first[0])
        if marked and mark is not None:
            mark.chat_id, mark.rows, mark.version = chat_id, count + n, first[1]
        return TurnBegun.from_count(count, known if by_count and after is not None else None)

    def _marked(self, mark: WriteMark | None, steps: list[Step]) -> list[Step]:
        """A turn's write, kept in its writer's mark where the database can (see WriteMark)."""
        if mark is None or not self._d.write_marks:
            return steps
        return [("", (), mark.enter), *steps, ("", (), mark.leave)]

    async def insert_messages(self, rows: Sequence[Row]) -> None:
        await self._insert(self._t.message, rows)

    async def list_messages(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        m = self._t.message
        sql, params = self._page(m, _MESSAGE_PAGE, chat_id, after, limit)
        # Records are built where the rows are fetched (SQLite: the driver's thread).
        read = functools.partial(self._read_messages, chatId=chat_id)
        (records,) = await self._s.run([sql.step(params, read)])
        return records  # type: ignore[no-any-return]

    def _page(
        self,
        t: Table,
        fields: Sequence[str],
        chat_id: str,
        after: Cursor | None,
        limit: int | None,
    ) -> tuple[_Sql, dict[str, Any]]:
        """A chat's rows of `t` in (createdAt, id) order, after the cursor, at most `limit`."""
        params: dict[str, Any] = {"chat": chat_id}

        def build() -> ClauseElement:
            q = select(*[t.c[f] for f in fields]).where(t.c.chatId == bindparam("chat"))
            src: Any = t
            if after is not None and limit is None:
                # Every row after the cursor (a turn catching up on another writer's): from
                # the chat's rows, as begin_turn's count, and for the same reason (see
                # chat_rows there). A page (`limit`) may walk createdAt order and stop early.
                src = self._d.kept_apart(q).subquery("chat_rows")
                q = select(*[src.c[f] for f in fields])
            if after is not None:
                at = bindparam("at", type_=t.c.createdAt.type)
                q = q.where(self._after(src, at, bindparam("after_id")))
            q = q.order_by(self._order_key(src.c.createdAt), src.c.id)
            if limit is None:
                return q
            # An explicit offset: SQLite renders `LIMIT ? OFFSET ?` and would invent a parameter.
            return q.limit(bindparam("limit", type_=Integer)).offset(literal_column("0"))

        sql = self._compile(("page", t.name, after is not None, limit is not None), build)
        if after is not None:
            params["at"] = self._dt(after[0])
            params["after_id"] = after[1]
        if limit is not None:
            params["limit"] = limit
        return sql, params

    async def count_messages(self, chat_id: str) -> int:
        m = self._t.message
        sql = self._compile(
            "count_messages",
            lambda: select(func.count()).select_from(m).where(m.c.chatId == bindparam("chat")),
        )
        (rows,) = await self._s.run([sql.step({"chat": chat_id}, True)])
        return int(rows[0][0])

    async def delete_message(self, message_id: str) -> None:
        m = self._t.message
        sql = self._compile("delete_message", lambda: delete(m).where(m.c.id == bindparam("id")))
        await self._s.run([sql.step({"id": message_id}, False)])

    # -- tool calls

    async def create_tool_calls(
        self, rows: Sequence[Row], *, mark: WriteMark | None = None
    ) -> None:
        await self._insert(self._t.tool_call, rows, mark)

    async def set_tool_results(
        self, results: Sequence[tuple[str, str]], *, mark: WriteMark | None = None
    ) -> None:
        if not results:
            return
        t = self._t.tool_call
        steps: list[Step] = []
        # Each pair binds its id twice (CASE and IN) and its result once.
        for chunk in _padded_chunks(results, self._s.max_params // 3):
            n = len(chunk)

            def build(n: int = n) -> ClauseElement:
                ids: list[Any] = [bindparam(f"k{i}") for i in range(n)]
                value = case(
                    *[
                        (t.c.id == ids[i], bindparam(f"v{i}", type_=t.c.result.type))
                        for i in range(n)
                    ]
                )
                return update(t).where(t.c.id.in_(ids)).values(result=value)

            sql = self._compile(("set_tool_results", n), build)
            params: dict[str, Any] = {}
            for i, (row_id, result) in enumerate(chunk):
                params[f"k{i}"] = row_id
                params[f"v{i}"] = result
            steps.append(sql.step(params, False))
        await self._s.run(self._marked(mark, steps))

    async def list_tool_calls(self, message_ids: Sequence[str]) -> list[ToolCallRecord]:
        if not message_ids or "tool_call" in self.absent:
            return []
        t = self._t.tool_call
        steps: list[Step] = []
        ids = list(dict.fromkeys(message_ids))  # a repeated id must not match twice
        for chunk in _padded_chunks(ids, self._s.max_params):
            n = len(chunk)
            sql = self._compile(
                ("list_tool_calls", n),
                lambda n=n: (  # type: ignore[misc]
                    select(*[t.c[f] for f in _TOOL_CALL_FIELDS])
                    .where(t.c.messageId.in_([bindparam(f"m{i}") for i in range(n)]))
                    .order_by(self._order_key(t.c.createdAt), t.c.id)
                ),
            )
            steps.append(sql.step({f"m{i}": mid for i, mid in enumerate(chunk)}, True))
        results = await self._s.run(steps)
        read = self._read_tool_calls
        calls = [call for rows in results for call in read(rows)]
        if len(results) > 1:  # each chunk came sorted; together they must be too
            calls.sort(key=lambda c: (c.createdAt, c.id))
        return calls

    # -- requests

    async def create_requests(self, rows: Sequence[Row]) -> None:
        await self._insert(self._t.request, rows)

    async def finish_turn(
        self,
        message_id: str,
        values: Row,
        requests: Sequence[Row],
        *,
        mark: WriteMark | None = None,
    ) -> None:
        m, rq = self._t.message, self._t.request
        ukeys = tuple(values)
        self._columns_of(m, ukeys)
        enc_values = self._encode(values)
        enc_reqs = [self._encode(r) for r in requests]
        if not enc_reqs:
            await self._update(m, message_id, values, mark)
            return
        cols = self._row_columns(rq, enc_reqs)
        sizes = _row_chunks(len(enc_reqs), (self._s.max_params - len(ukeys) - 1) // len(cols))
        if not enc_values:
            await self._s.run(self._marked(mark, self._insert_steps(rq, enc_reqs, cols, sizes)))
            return
        upd_params = {f"u_{k}": v for k, v in enc_values.items()}
        upd_params["u__id"] = message_id

        def build_update() -> Any:
            return (
                update(m)
                .where(m.c.id == bindparam("u__id"))
                .values({k: bindparam(f"u_{k}", type_=m.c[k].type) for k in ukeys})
            )

        if self._d.finish_in_one_statement:
            # One statement, atomic by itself: the UPDATE rides along as a data-modifying CTE
            # (on the first INSERT when the requests need several).
            n = sizes[0]

            def build() -> ClauseElement:
                upd = build_update().returning(literal_column("1")).cte("finished")
                values = [
                    {c: bindparam(f"{c}_{i}", type_=rq.c[c].type) for c in cols} for i in range(n)
                ]
                return insert(rq).values(values).add_cte(upd)

            sql = self._compile(("finish_turn_pg", ukeys, tuple(cols), n), build)
            # Only the rows after the first n get INSERTs of their own.
            rest = self._insert_steps(rq, enc_reqs[n:], cols, sizes[1:])
            await self._s.run([sql.rows_step(enc_reqs[:n], cols, False, upd_params), *rest])
            return
        upd_sql = self._compile(("finish_update", ukeys), build_update)
        inserts = self._insert_steps(rq, enc_reqs, cols, sizes)
        await self._s.run(self._marked(mark, [upd_sql.step(upd_params, False), *inserts]))

    async def list_requests(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[RequestRecord]:
        if "request" in self.absent:
            return []
        sql, params = self._page(self._t.request, _REQUEST_PAGE, chat_id, after, limit)
        (rows,) = await self._s.run([sql.step(params, True)])
        return self._read_requests(rows, chat_id)

    async def usage(
        self, chat_id: str | None = None, *, where: Mapping[str, Any] | None = None
    ) -> UsageTotals:
        if "request" in self.absent:
            return UsageTotals()
        r = self._t.request
        zero: ColumnElement[Any] = literal_column("0")
        cols = (
            func.count(),
            func.coalesce(func.sum(r.c.inputTokens), zero),
            func.coalesce(func.sum(r.c.outputTokens), zero),
            func.sum(r.c.cost),
        )
        params: dict[str, Any] = {}
        if chat_id is not None:
            sql = self._compile(
                "usage_chat",
                lambda: select(*cols).select_from(r).where(r.c.chatId == bindparam("chat")),
            )
            params = {"chat": chat_id}
        elif where:
            chat, _ = await self._chat()
            self._check_columns(chat, list(where))
            keys = tuple(sorted(where))
            sql = self._compile(
                ("usage_where", keys),
                lambda: (
                    select(*cols)
                    .select_from(r.join(chat, r.c.chatId == chat.c.id))
                    .where(*self._chat_filter(chat, keys))
                ),
            )
            params = {f"w_{k}": where[k] for k in keys}
        else:
            sql = self._compile("usage_all", lambda: select(*cols).select_from(r))
        (rows,) = await self._s.run([sql.step(params, True)])
        n, inp, outp, cost = rows[0]
        return UsageTotals(
            requests=int(n),
            inputTokens=int(inp),
            outputTokens=int(outp),
            cost=None if cost is None else float(cost),
        )

    # -- agent sessions

    def _session_record(self, row: Sequence[Any]) -> AgentSessionRecord:
        return self._read_sessions([row])[0]

    async def create_agent_session(self, chat_row: Row, session_row: Row) -> AgentSessionRecord:
        chat, _ = await self._chat()
        s = self._t.agent_session
        self._check_columns(chat, list(chat_row))
        self._check_columns(s, list(session_row))
        enc_chat = self._encode(chat_row)
        enc_s = self._encode(session_row)
        chat_ins, chat_cols = self._insert_sql(chat, [enc_chat])
        skeys = tuple(k for k in s.c.keys() if k in enc_s)  # noqa: SIM118
        s_sql = self._compile(
            ("create_session", skeys),
            lambda: (
                insert(s)
                .values({k: bindparam(f"s_{k}", type_=s.c[k].type) for k in skeys})
                .returning(*[s.c[f] for f in _SESSION_FIELDS])
            ),
        )
        _, rows = await self._s.run(
            [
                chat_ins.rows_step([enc_chat], chat_cols, False),
                s_sql.step({f"s_{k}": enc_s[k] for k in skeys}, True),
            ]
        )
        return self._session_record(rows[0])

    async def get_agent_session(self, session_id: str) -> AgentSessionRecord | None:
        s = self._t.agent_session
        sql = self._compile(
            "get_session",
            lambda: select(*[s.c[f] for f in _SESSION_FIELDS]).where(s.c.id == bindparam("id")),
        )
        (rows,) = await self._s.run([sql.step({"id": session_id}, True)])
        return self._session_record(rows[0]) if rows else None

    async def agent_session_of(self, chat_id: str) -> AgentSessionRecord | None:
        s = self._t.agent_session
        sql = self._compile(
            "session_of",
            lambda: select(*[s.c[f] for f in _SESSION_FIELDS]).where(
                s.c.chatId == bindparam("chat")
            ),
        )
        (rows,) = await self._s.run([sql.step({"chat": chat_id}, True)])
        return self._session_record(rows[0]) if rows else None

    async def update_agent_session(self, session_id: str, values: Row) -> None:
        s = self._t.agent_session
        self._check_columns(s, list(values))
        await self._update(s, session_id, {"updatedAt": utc_now(), **values})

    # -- administration (scoping, retention)

    async def _by_ids(
        self, key: str, ids: Sequence[str], build: Callable[[list[Any]], ClauseElement], rows: bool
    ) -> list[Any]:
        """Run `build(id marks)` over `ids` in chunks the drivers accept; the chunks' results."""
        out: list[Any] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            marks: list[Any] = [bindparam(f"i{i}") for i in range(len(chunk))]
            sql = self._compile((key, len(chunk)), lambda marks=marks: build(marks))  # type: ignore[misc]
            (result,) = await self._s.run(
                [sql.step({f"i{i}": v for i, v in enumerate(chunk)}, rows)]
            )
            out.append(result)
        return out

    async def owner_chats(self, kind: OwnedKind, ids: Sequence[str]) -> dict[str, str]:
        m, t = self._t.message, self._t.tool_call

        def build(marks: list[Any]) -> ClauseElement:
            if kind == "message":
                return select(m.c.id, m.c.chatId).where(m.c.id.in_(marks))
            return (
                select(t.c.id, m.c.chatId)
                .select_from(t.join(m, t.c.messageId == m.c.id))
                .where(t.c.id.in_(marks))
            )

        chunks = await self._by_ids(f"owners_{kind}", ids, build, True)
        return {r[0]: r[1] for rows in chunks for r in rows}

    async def subtree_counts(self, chat_ids: Sequence[str]) -> RowCounts:
        t = self._t

        def count(src: Any, cond: ColumnElement[bool]) -> Any:
            return select(func.count()).select_from(src).where(cond).scalar_subquery()

        def build(ids: list[Any]) -> ClauseElement:
            calls = t.tool_call.join(t.message, t.tool_call.c.messageId == t.message.c.id)
            return select(
                count(t.chat, t.chat.c.id.in_(ids)),
                count(t.message, t.message.c.chatId.in_(ids)),
                count(calls, t.message.c.chatId.in_(ids)),
                count(t.request, t.request.c.chatId.in_(ids)),
                count(t.agent_session, t.agent_session.c.chatId.in_(ids)),
            )

        total = RowCounts()
        for rows in await self._by_ids("subtree_counts", chat_ids, build, True):
            total += RowCounts(*(int(v) for v in rows[0]))
        return total

    async def delete_chats(self, chat_ids: Sequence[str]) -> int:
        c = self._t.chat
        counts = await self._by_ids(
            "delete_chats", chat_ids, lambda ids: delete(c).where(c.c.id.in_(ids)), False
        )
        return sum(int(n) for n in counts)

    def scoped(self, **where: Any) -> ScopedStore:
        """A handle that reads and writes only chats whose columns equal `where`
        (`store.scoped(userId="alice")`); see `nodellm_orm.stores.scoped`."""
        from .scoped import scoped_store

        return scoped_store(self, **where)

    async def close(self) -> None:
        await self._s.close()


_loads = json.loads


async def connect(
    url: str = "sqlite:///nodellm.db",
    *,
    migrate: bool = True,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    table_names: TableNames | dict[str, Any] | None = None,
    **engine_kwargs: Any,
) -> SqlStore:
    """Open (and by default migrate) a database; the store owns its engine and closes it.

    Accepts `sqlite:///path.db`, Prisma's `file:./dev.db`, `postgresql://...` (with Prisma's
    `?schema=`), and SQLAlchemy async URLs on the drivers the store drives (aiosqlite,
    asyncpg); another driver (`postgresql+psycopg://`, `sqlite+pysqlite://`) is refused with
    a StoreError naming it.

    Connections: on PostgreSQL at most `pool_size` (default 5) + `max_overflow` (default 10)
    are open at once; more concurrent calls wait their turn, without a timeout. `pool_size`
    stay open when idle, overflow ones close after 10 s idle (a burst of work that comes back
    sooner finds them open, not new server processes to start). On SQLite the store runs
    on one connection (pool_size 1, max_overflow 0; other values are refused). A call that is
    cancelled or loses its connection never poisons the store (see `connection.py`).
    `engine_kwargs` go to SQLAlchemy's create_async_engine. `table_names` says which tables
    the migration creates or checks (pass the same names to create_chat / load_chat).
    """
    from ..migrations.runner import ensure_schema
    from ..migrations.runner import migrate as run_migrations

    dialect = dialect_for_url(make_url(async_url(url)))
    dialect.pool_bounds(pool_size, max_overflow)  # refuse bad values before connecting
    database = make_url(async_url(url)).database
    engine = engine_for_url(url, **{**dialect.engine_defaults(database), **engine_kwargs})
    dialect.prepare_engine(engine)
    try:
        if migrate:
            await ensure_schema(engine, url)
            names = TableNames.coerce(table_names)
            given = {k: getattr(names, k) for k in DEFAULT_TABLE_NAMES if getattr(names, k)}
            await run_migrations(engine, table_names=given)
        shared = _Shared(engine, owns_engine=True, pool_size=pool_size, max_overflow=max_overflow)
        await shared.learn_datetime(resolve_names(TableNames.coerce(table_names))["message"])
    except BaseException:
        await engine.dispose()
        raise
    return SqlStore(shared, resolve_names(None), checked=False)


if TYPE_CHECKING:

    def _implements_both_ports(store: SqlStore) -> Store:  # checked by mypy, never called
        return store
