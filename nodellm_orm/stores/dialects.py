"""What differs between SQLite and PostgreSQL for the sql store: one object per database.

`SqlStore` picks its dialect once, when it connects (`dialect_for`), and asks it instead of
testing the database's name: how createdAt orders, how begin_turn counts, whether finish_turn
is one statement, how dates and JSON are sent, how the catalogue is read, how many bind
parameters one statement may carry, and how its connections are opened and bounded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    event,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.types import Text, TypeEngine

from ..core.clock import as_utc, iso_ms, naive_utc, to_epoch_ms
from .base import StoreError
from .connection import BUSY_TIMEOUT_MS, Lease, PgLease, SqliteLease
from .tables import SqliteDateTime

__all__ = [
    "PostgresDialect",
    "SqlDialect",
    "SqliteDialect",
    "dialect_for",
    "dialect_for_url",
    "dialect_of",
]


def _sqlite_variable_limit() -> int:
    """The most `?` one statement may bind, as the linked SQLite library reports it."""
    try:
        with sqlite3.connect(":memory:") as probe:
            return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except (AttributeError, sqlite3.Error):  # getlimit: Python 3.11+
        # The compile-time default: 999 before SQLite 3.32, 32,766 since.
        return 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class SqlDialect:
    """Per-database behaviour of `SqlStore` (see the module docstring)."""

    name: ClassVar[str]
    # The SQLAlchemy driver the store drives on this database (it calls into its connection).
    driver: ClassVar[str]
    example_url: ClassVar[str]
    # Documented defaults of connect(pool_size=..., max_overflow=...).
    pool_size: ClassVar[int]
    max_overflow: ClassVar[int]
    # Bind parameters one statement may carry.
    max_params: ClassVar[int]
    # Json fields are sent and read as text (SQLite) rather than JSONB text.
    json_as_text: ClassVar[bool]
    # begin_turn counts "rows after the cursor" from the chat's count and the caller's known
    # count (cheap covering count) rather than with a windowed range scan.
    count_by_known: ClassVar[bool]
    # finish_turn's UPDATE rides on the request INSERT as a data-modifying CTE.
    finish_in_one_statement: ClassVar[bool]
    # A statement's subqueries see the rows the statement itself inserts (SQLite), rather than
    # only what was there when it started (PostgreSQL: one snapshot per statement).
    sees_own_inserts: ClassVar[bool]
    # Operations that queue for the one connection commit together (connection.Pool).
    group_commit: ClassVar[bool] = False
    # A connection can prove nothing else wrote since a writer's last write (its change
    # counter and data_version), so begin_turn may answer from the writer's WriteMark.
    write_marks: ClassVar[bool] = False
    # The tables of the current schema; and a table's columns in order as (name, declared
    # type) rows (one parameter: the table's exact name).
    tables_sql: ClassVar[str]
    columns_sql: ClassVar[str]
    # The database takes `llmchat` for `"LlmChat"` even quoted, so only one of them can exist.
    folds_identifier_case: ClassVar[bool]
    # GROUP BY sorts every row it groups (SQLite has no hash aggregation), so grouping a
    # table through an index already in the group's order costs far less than grouping it
    # by anything else.
    groups_by_sorting: ClassVar[bool] = False

    def holds(self, kind: str, declared: str) -> bool:
        """Whether a column declared `declared` holds what the store writes to a column of
        `kind` (tables.column_kind: text, int, float, datetime, json) and reads it back."""
        raise NotImplementedError

    def encode_datetime(self, value: datetime) -> Any:
        """A datetime as SQLAlchemy binds it for a DateTime column (`PrismaDateTime`)."""
        raise NotImplementedError

    def param_datetime(self, value: datetime) -> Any:
        """A datetime as the store's own connections send it, compared with `order_key`
        (cursor and range parameters)."""
        return self.encode_datetime(value)

    def datetime_probe(self, table: str) -> str | None:
        """SQL telling how the table's newest row stores createdAt, where that can vary."""
        return None

    def datetime_writer(self, stored: str | None) -> Callable[[datetime], Any]:
        """How written rows carry DateTime, given the storage `datetime_probe` found."""
        return self.param_datetime

    def order_key(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """createdAt as one comparable value."""
        return col

    def after(
        self, created: ColumnElement[Any], row_id: ColumnElement[Any], at: Any, after_id: Any
    ) -> ColumnElement[bool]:
        """Rows strictly after the cursor (at, after_id) in (createdAt, id) order, in an
        index-friendly form: the leading `createdAt >= at` lets the createdAt index range-scan,
        so looking for rows newer than a cursor costs what is new, not the whole history.

        Where createdAt is its own order key, `>= at` leaves `> at` or `= at`, so the exact
        test needs no third comparison (every row it filters pays each one).
        """
        return and_(created >= at, or_(created > at, row_id > after_id))

    def kept_apart(self, query: Select[Any]) -> Select[Any]:
        """`query` as a subquery the planner runs as written: found by its own WHERE, the
        outer query's conditions tested on its rows afterwards (an OFFSET 0 stops the
        planner merging the two and choosing an index for the outer conditions)."""
        return query.offset(literal_column("0"))

    def unchanged_since(self, changes: Any, version: Any) -> ColumnElement[bool]:
        raise NotImplementedError(f"{self.name} has no write marks")

    def data_version(self) -> ColumnElement[Any]:
        raise NotImplementedError(f"{self.name} has no write marks")

    def datetime_type(self) -> TypeEngine[Any]:
        raise NotImplementedError

    def json_type(self) -> TypeEngine[Any]:
        raise NotImplementedError

    def pool_bounds(self, pool_size: int | None, max_overflow: int | None) -> tuple[int, int]:
        """The pool's (size, overflow), defaults filled in and values checked."""
        size = self.pool_size if pool_size is None else pool_size
        overflow = self.max_overflow if max_overflow is None else max_overflow
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"pool_size must be an integer >= 1, not {pool_size!r}")
        if not isinstance(overflow, int) or isinstance(overflow, bool) or overflow < 0:
            raise ValueError(f"max_overflow must be an integer >= 0, not {max_overflow!r}")
        return size, overflow

    def engine_defaults(self, database: str | None) -> dict[str, Any]:
        """create_async_engine keywords for an engine the store owns.

        The store's pool is the pool: the engine opens and closes real connections for it.
        """
        return {"poolclass": NullPool}

    def prepare_engine(self, engine: AsyncEngine) -> None:
        """Hook the store's per-connection settings onto an engine it owns."""

    async def open_lease(self, conn: AsyncConnection, *, owns_engine: bool) -> Lease:
        raise NotImplementedError

    # -- Reading for analytics (the dashboard): a DateTime column as epoch milliseconds,
    # ranges its createdAt index serves, time buckets; and connections that cannot write.

    # Bucket sizes in milliseconds; weeks start on Monday (ISO, as date_trunc('week')).
    bucket_ms_of: ClassVar[dict[str, int]] = {
        "hour": 3_600_000,
        "day": 86_400_000,
        "week": 7 * 86_400_000,
    }

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """A DateTime column as integer milliseconds since the Unix epoch (UTC)."""
        raise NotImplementedError

    def at_or_after(
        self, col: ColumnElement[Any], at: datetime, *, scan: bool = False
    ) -> ColumnElement[bool]:
        """`col >= at`, in a form the column's index can serve; with `scan`, in one it cannot,
        for a range `wide_range` found to hold so many rows that reading the table is
        cheaper (where the planner weighs that itself, both forms are the same)."""
        raise NotImplementedError

    def wide_range(self, table: Table, at: datetime, share: float) -> Select[Any] | None:
        """A query of one boolean: does `createdAt >= at` hold for `share` of `table`'s rows
        or more? None where the planner knows that from its own statistics."""
        return None

    def before(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        """`col < at`."""
        return self.epoch_ms(col) < to_epoch_ms(at)

    def bucket(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        """Start of the hour, day or week (Monday) holding `col`, in the cheapest form to
        group by; `epoch_ms` of the grouped value gives it in milliseconds."""
        raise NotImplementedError

    def aggregate_settings(self) -> tuple[str, ...]:
        """Statements run at the start of a transaction that groups many rows into few."""
        return ()

    def analytics_unsupported(self, server_version: tuple[int | str, ...] | None) -> str | None:
        """Why a server of this version (SQLAlchemy's `server_version_info`) cannot run the
        analytics queries, or None."""
        return None

    def read_only_url(self, url: URL) -> URL:
        """The URL of the same database, opened so that it cannot be changed or created."""
        return url

    def read_only_connect_args(self) -> dict[str, Any]:
        """Driver arguments that make a connection read-only."""
        return {}

    def read_only_statements(self) -> tuple[str, ...]:
        """Statements run on each new connection to make it read-only."""
        return ()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cur.execute(pragma)
    cur.close()


class SqliteDialect(SqlDialect):
    name = "sqlite"
    driver = "aiosqlite"
    example_url = "sqlite:///file.db"
    # SQLite has one writer: the store runs every operation on one connection, in order.
    pool_size = 1
    max_overflow = 0
    max_params = _sqlite_variable_limit()
    json_as_text = True
    # No planner statistics: SQLite would guess between the chatId and createdAt indexes.
    count_by_known = True
    finish_in_one_statement = False
    sees_own_inserts = True
    # One writer: operations of many chats arriving together share one transaction and one
    # commit (each still returns only once its writes are committed).
    group_commit = True
    write_marks = True
    tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    columns_sql = "SELECT name, type FROM pragma_table_info(?) ORDER BY cid"
    folds_identifier_case = True
    groups_by_sorting = True

    # SQLite stores any value in any column, converted by the declared type's affinity
    # (https://sqlite.org/datatype3.html, 3.1): which affinities keep each kind's values as
    # written. NUMERIC would turn numeric-looking text into numbers; TEXT would turn epoch
    # milliseconds and token counts into text. BLOB (no type) keeps every value as given.
    _HOLDS: ClassVar[dict[str, frozenset[str]]] = {
        "text": frozenset({"TEXT", "BLOB"}),
        "json": frozenset({"TEXT", "BLOB"}),
        "int": frozenset({"INTEGER", "NUMERIC", "BLOB"}),
        "float": frozenset({"REAL", "NUMERIC", "INTEGER", "BLOB"}),
        "datetime": frozenset({"NUMERIC", "INTEGER", "REAL", "BLOB"}),
    }

    @staticmethod
    def affinity(declared: str) -> str:
        """The column affinity SQLite gives a declared type (its rules, in their order)."""
        spelled = declared.upper()
        if "INT" in spelled:
            return "INTEGER"
        if any(word in spelled for word in ("CHAR", "CLOB", "TEXT")):
            return "TEXT"
        if "BLOB" in spelled or not spelled.strip():
            return "BLOB"
        if any(word in spelled for word in ("REAL", "FLOA", "DOUB")):
            return "REAL"
        return "NUMERIC"

    def holds(self, kind: str, declared: str) -> bool:
        if kind == "json" and declared.strip().upper() in ("JSON", "JSONB"):
            return True  # Prisma >= 6.2 declares Json fields JSONB: JSON text is kept as text
        return self.affinity(declared) in self._HOLDS[kind]

    def encode_datetime(self, value: datetime) -> Any:
        return to_epoch_ms(value)

    def datetime_probe(self, table: str) -> str | None:
        quoted = table.replace('"', '""')
        return f'SELECT typeof("createdAt") FROM "{quoted}" ORDER BY rowid DESC LIMIT 1'

    def datetime_writer(self, stored: str | None) -> Callable[[datetime], Any]:
        """Follow the database: SQLite orders every INTEGER before every TEXT, and the JS
        package orders a chat's history by createdAt alone, so one database must hold one form.

        - rows hold INTEGER epoch milliseconds (Prisma's native engine, prisma-client-py,
          earlier nodellm-orm): keep writing them (JS clients on such a database set the
          better-sqlite3 adapter's `timestampFormat: "unixepoch-ms"`);
        - rows hold text, or there are none yet: ISO-8601 text exactly as Prisma 7's
          better-sqlite3 / libsql adapters write by default (`2026-01-02T03:04:05.678+00:00`),
          so the JS package in its default set-up reads every history in order.
        """
        return to_epoch_ms if stored == "integer" else iso_ms

    def order_key(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """Epoch milliseconds, whether the row holds them (ours, Prisma's native engine) or
        ISO-8601 text (Prisma's JS driver adapters), so both kinds order together."""
        # Literal constants, not bind parameters: the compiled SQL is cached and reused.
        unix_epoch_jd: ColumnElement[Any] = literal_column("2440587.5")
        ms_per_day: ColumnElement[Any] = literal_column("86400000.0")
        as_ms = cast(func.round((func.julianday(col) - unix_epoch_jd) * ms_per_day), Integer)
        return case((func.typeof(col) == literal_column("'text'"), as_ms), else_=col)

    def after(
        self, created: ColumnElement[Any], row_id: ColumnElement[Any], at: Any, after_id: Any
    ) -> ColumnElement[bool]:
        """Integer rows sort before text ones, so `createdAt >= at` only narrows integer rows
        (text rows fall through to it); the exact test is on the order key."""
        key = self.order_key(created)
        exact = or_(key > at, and_(key == at, row_id > after_id))
        return and_(created >= at, exact)

    def kept_apart(self, query: Select[Any]) -> Select[Any]:
        # SQLite has OFFSET only after a LIMIT; left out, SQLAlchemy binds one (-1) itself.
        return query.limit(literal_column("-1")).offset(literal_column("0"))

    def unchanged_since(self, changes: Any, version: Any) -> ColumnElement[bool]:
        """Nothing written on this connection but `changes` rows so far, and no commit by
        another connection since data_version was `version` (for `write_marks`)."""
        return and_(func.total_changes() == changes, self.data_version() == version)

    def data_version(self) -> ColumnElement[Any]:
        return literal_column("(SELECT data_version FROM pragma_data_version())")

    def datetime_type(self) -> TypeEngine[Any]:
        return SqliteDateTime()

    def json_type(self) -> TypeEngine[Any]:
        return Text()

    def pool_bounds(self, pool_size: int | None, max_overflow: int | None) -> tuple[int, int]:
        size, overflow = super().pool_bounds(pool_size, max_overflow)
        if (size, overflow) != (1, 0):
            raise ValueError(
                "on SQLite the store uses one connection (SQLite has one writer): "
                f"pool_size must be 1 and max_overflow 0, not {size} and {overflow}"
            )
        return size, overflow

    def engine_defaults(self, database: str | None) -> dict[str, Any]:
        # The store runs short operations on the event loop's thread (SqliteLease), never
        # while the driver's thread is using the connection.
        threads = {"connect_args": {"check_same_thread": False}}
        if database in (None, "", ":memory:"):
            # One shared connection, or every checkout would see its own empty database.
            return {"poolclass": StaticPool, **threads}
        return {**super().engine_defaults(database), **threads}

    def prepare_engine(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)

    async def open_lease(self, conn: AsyncConnection, *, owns_engine: bool) -> Lease:
        return await SqliteLease.open(conn, pragmas=not owns_engine)

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        # Read as a number, not through the column's DateTime type.
        return type_coerce(self.order_key(type_coerce(col, Integer)), Integer)

    def at_or_after(
        self, col: ColumnElement[Any], at: datetime, *, scan: bool = False
    ) -> ColumnElement[bool]:
        ms = to_epoch_ms(at)
        # With `scan`, the column under SQLite's unary plus, a no-op that keeps the planner
        # off its index.
        bare = UnaryExpression(col, operator=custom_op("+"), type_=col.type) if scan else col
        raw = type_coerce(bare, Integer)
        # SQLite orders every INTEGER before every TEXT: two ranges of the index, the integer
        # dates from `ms` on (`< ''`: below every text), exact as they stand, and the text
        # dates from the day before `at` on (any ISO-8601 text of a later time sorts after
        # that date, whatever its separator or offset), tested exactly as epoch milliseconds.
        day = (at.astimezone(UTC) - timedelta(days=1)).date().isoformat()
        text_from = type_coerce(bare, Text) >= literal_column(f"'{day}'")
        return or_(
            and_(raw >= ms, raw < literal_column("''")),
            and_(text_from, self.epoch_ms(col) >= ms),
        )

    def wide_range(self, table: Table, at: datetime, share: float) -> Select[Any] | None:
        # SQLite keeps no histogram of a column (sqlite_stat4 is not built in): to its planner
        # any range of an indexed column looks narrow, and it reads a range holding most of
        # the table through the index, a lookup per row (and, for the OR of the two storage
        # forms, a set of every rowid first): the overview over 90 days of the bench's 550k
        # requests took 1.6 s that way against 1.0 s for the whole table read in order, and
        # over 30 days (a third of the rows) 0.75 s of work against 0.55 s. The range's share
        # of the time between the oldest and the newest row stands for its share of the rows:
        # two lookups at the ends of the createdAt index (counting the range's entries took
        # 10-45 ms).
        col = table.c.createdAt
        first = self.epoch_ms(select(func.min(col)).scalar_subquery())
        last = self.epoch_ms(select(func.max(col)).scalar_subquery())
        return select(last - to_epoch_ms(at) >= (last - first) * literal_column(repr(share)))

    def bucket(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        # Epoch milliseconds already (epoch_ms of an integer is the integer).
        size = literal_column(str(self.bucket_ms_of[unit]), Integer)
        ms = self.epoch_ms(col)
        if unit == "week":
            # 1970-01-01 was a Thursday: shift by three days so weeks start on Monday.
            offset = literal_column(str(3 * self.bucket_ms_of["day"]), Integer)
            return ((ms + offset) // size) * size - offset
        # `//` is SQLite's integer division of two integers (`/` would divide as REAL).
        return (ms // size) * size

    def read_only_url(self, url: URL) -> URL:
        if url.database in (None, "", ":memory:"):
            return url
        # mode=ro: a missing file is an error instead of a new empty database.
        path = Path(url.database or "").absolute()
        return url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})

    def read_only_statements(self) -> tuple[str, ...]:
        return ("PRAGMA query_only = ON",)


class PostgresDialect(SqlDialect):
    name = "postgresql"
    driver = "asyncpg"
    example_url = "postgresql://user:password@host/db"
    # SQLAlchemy's QueuePool defaults.
    pool_size = 5
    max_overflow = 10
    # The wire protocol counts parameters in 16 bits; asyncpg refuses more than 32,767.
    max_params = 32_767
    json_as_text = False
    # The planner weighs the chatId and createdAt indexes from statistics.
    count_by_known = False
    finish_in_one_statement = True
    sees_own_inserts = False
    # Cast to text: information_schema's own types (sql_identifier...) are not ones every
    # client reads (Prisma's raw queries refuse them).
    tables_sql = (
        "SELECT table_name::text FROM information_schema.tables "
        "WHERE table_schema = current_schema()"
    )
    columns_sql = (
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE "
        "table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
    )
    folds_identifier_case = False
    # information_schema data types asyncpg sends each kind's values to, and reads them from,
    # as the store expects. smallint cannot hold token counts; timestamp with time zone wants
    # aware datetimes, the store sends naive UTC.
    _HOLDS: ClassVar[dict[str, frozenset[str]]] = {
        "text": frozenset({"text", "character varying"}),
        "json": frozenset({"jsonb", "json"}),
        "int": frozenset({"integer", "bigint"}),
        "float": frozenset({"double precision", "real"}),
        "datetime": frozenset({"timestamp without time zone"}),
    }

    def holds(self, kind: str, declared: str) -> bool:
        return declared in self._HOLDS[kind]

    def encode_datetime(self, value: datetime) -> Any:
        return naive_utc(value)

    def param_datetime(self, value: datetime) -> Any:
        # The store's connections read and send TIMESTAMP as timestamptz (PgLease.open).
        return as_utc(value)

    def datetime_type(self) -> TypeEngine[Any]:
        return postgresql.TIMESTAMP(precision=3)

    def json_type(self) -> TypeEngine[Any]:
        return postgresql.JSONB()

    async def open_lease(self, conn: AsyncConnection, *, owns_engine: bool) -> Lease:
        return await PgLease.open(conn, owned=owns_engine)

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        # TIMESTAMP without time zone: extract(epoch) reads it as UTC, whatever the session zone.
        epoch = func.date_part(literal_column("'epoch'"), col)
        return cast(func.floor(epoch * literal_column("1000")), BigInteger)

    def at_or_after(
        self, col: ColumnElement[Any], at: datetime, *, scan: bool = False
    ) -> ColumnElement[bool]:
        return col >= naive_utc(at)

    def before(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        return col < naive_utc(at)

    def bucket(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        if unit not in self.bucket_ms_of:
            raise ValueError(f"unknown bucket {unit!r}")
        # A timestamp, not its epoch: the planner then estimates few groups and hashes them,
        # where grouping by the epoch expression sorted every row (3x slower). date_bin
        # (PostgreSQL 14, the oldest release still supported) is integer arithmetic on the
        # timestamp where date_trunc splits it into fields and back: 262 -> 196 ms for the
        # overview's grouping of 550k rows. Bins count from a Monday midnight, so a week
        # starts on Monday as date_trunc('week') has it.
        stride: ColumnElement[Any] = literal_column(
            f"'{self.bucket_ms_of[unit] // 1000} seconds'::interval"
        )
        monday: ColumnElement[Any] = literal_column("'1970-01-05'::timestamp")
        return type_coerce(func.date_bin(stride, col, monday), col.type)

    def read_only_connect_args(self) -> dict[str, Any]:
        return {"server_settings": {"default_transaction_read_only": "on"}}

    def analytics_unsupported(self, server_version: tuple[int | str, ...] | None) -> str | None:
        if not server_version or not isinstance(server_version[0], int):
            return None
        if server_version[0] >= 14:
            return None
        shown = ".".join(map(str, server_version))
        return (
            f"this PostgreSQL server is {shown}; the dashboard needs 14 or later "
            "(its overview buckets time with date_bin)"
        )

    def aggregate_settings(self) -> tuple[str, ...]:
        # The planner cannot know that a day or week bucket of createdAt has few values: it
        # estimates a group per distinct createdAt, too many to hash in the default 4 MB, and
        # sorts every row on disk instead. With room to hash it picks HashAggregate (the
        # real tables are a few thousand groups at most). The overview already runs its
        # statements side by side, one connection each: parallel workers under each of them
        # only add gathering to the same cores (30 days: 217 -> 175 ms on 2 cores, and the
        # same over all 90 days). LOCAL: this transaction only.
        return ("SET LOCAL work_mem = '64MB'", "SET LOCAL max_parallel_workers_per_gather = 0")


_DIALECTS: dict[str, SqlDialect] = {d.name: d for d in (SqliteDialect(), PostgresDialect())}


def dialect_for(backend: str, driver: str | None = None) -> SqlDialect:
    """The dialect of a database and driver the store can drive; StoreError names the rest."""
    dialect = _DIALECTS.get("postgresql" if backend == "postgres" else backend)
    if dialect is None:
        raise StoreError(
            f"SqlStore supports sqlite and postgresql, not {backend!r} "
            "(for MySQL use the prisma backend)"
        )
    if driver is not None and driver != dialect.driver:
        raise StoreError(
            f"SqlStore cannot drive {backend}+{driver}: on {dialect.name} it needs the "
            f"{dialect.driver} driver ({dialect.name}+{dialect.driver}://... "
            f"or {dialect.example_url})"
        )
    return dialect


def dialect_for_url(url: URL) -> SqlDialect:
    """The dialect for an (async) SQLAlchemy URL, refusing drivers the store cannot drive."""
    dialect = dialect_for(url.get_backend_name())
    return dialect_for(dialect.name, url.get_driver_name())


def dialect_of(engine: Dialect) -> SqlDialect:
    """The dialect for an SQLAlchemy dialect (name and driver checked)."""
    return dialect_for(engine.name, engine.driver)
