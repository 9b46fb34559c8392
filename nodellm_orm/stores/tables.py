"""SQLAlchemy Core tables mirroring `schema.prisma`, over the physical schema Prisma Migrate makes.

Column names and types are Prisma's (`chatId`, `createdAt`...). Two types differ by dialect:
- DateTime: on SQLite a column declared DATETIME holding either INTEGER epoch milliseconds
  (what Prisma's native engine writes) or ISO-8601 text (what Prisma 7's JS driver adapters
  write by default); both are read. `SqlStore` writes what the database already holds (see
  `SqliteDialect.datetime_writer`); these SQLAlchemy types bind epoch milliseconds.
  On PostgreSQL, TIMESTAMP(3) without time zone holding UTC.
- Json: JSONB on PostgreSQL, text on SQLite (Prisma 5's SQLite connector has no Json type).
Values read back are aware UTC datetimes. These types make the tables usable from plain
SQLAlchemy too; `SqlStore` calls the same conversion functions directly on its hot paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from ..core import clock, jsoncodec
from ..model import DEFAULT_TABLE_NAMES, TableNames, resolve_names

# The date-time conversions and the JSON codec are the core's; re-exported under the names the
# stores use.
encode_json = jsoncodec.encode
from_db_datetime = clock.to_datetime
to_epoch_ms = clock.to_epoch_ms
to_iso_text = clock.iso_ms
to_naive_utc = clock.naive_utc
to_utc = clock.as_utc


class SqliteDateTime(UserDefinedType[Any]):
    """Declared DATETIME like Prisma's DDL; holds INTEGER milliseconds (SQLite is untyped)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "DATETIME"


def _dialect(dialect: Dialect) -> Any:
    # Imported here: the store's dialects module builds on this one.
    from .dialects import dialect_for

    return dialect_for(dialect.name)


class PrismaDateTime(TypeDecorator[datetime]):
    impl = postgresql.TIMESTAMP(precision=3)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(_dialect(dialect).datetime_type())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return _dialect(dialect).encode_datetime(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return from_db_datetime(value)


class PrismaJson(TypeDecorator[Any]):
    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(_dialect(dialect).json_type())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return encode_json(value, field="metadata") if _dialect(dialect).json_as_text else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if _dialect(dialect).json_as_text and isinstance(value, str):
            return jsoncodec.decode(value)
        return value


def _fk(target: str, name: str) -> ForeignKey:
    return ForeignKey(target, name=name, ondelete="CASCADE", onupdate="CASCADE")


@dataclass(frozen=True, slots=True)
class Tables:
    metadata: MetaData
    chat: Table
    message: Table
    tool_call: Table
    request: Table
    agent_session: Table


def build_tables(table_names: TableNames | dict[str, str] | None = None) -> Tables:
    """The five tables on a fresh MetaData, under the given physical names."""
    if isinstance(table_names, dict):
        names = {**DEFAULT_TABLE_NAMES, **table_names}
    else:
        names = resolve_names(table_names)
    md = MetaData()
    chat_n, msg_n, tc_n, req_n, ses_n = (
        names["chat"],
        names["message"],
        names["tool_call"],
        names["request"],
        names["agent_session"],
    )

    chat = Table(
        chat_n,
        md,
        Column("id", Text, primary_key=True),
        Column("model", Text),
        Column("provider", Text),
        Column("instructions", Text),
        Column("metadata", PrismaJson),
        Column("createdAt", PrismaDateTime, nullable=False),
        Column("updatedAt", PrismaDateTime, nullable=False),
    )
    session = Table(
        ses_n,
        md,
        Column("id", Text, primary_key=True),
        Column("agentClass", Text, nullable=False),
        Column(
            "chatId",
            Text,
            _fk(f"{chat_n}.id", f"{ses_n}_chatId_fkey"),
            nullable=False,
        ),
        Column("metadata", PrismaJson),
        Column("createdAt", PrismaDateTime, nullable=False),
        Column("updatedAt", PrismaDateTime, nullable=False),
        Index(f"{ses_n}_chatId_key", "chatId", unique=True),
        Index(f"{ses_n}_agentClass_idx", "agentClass"),
        Index(f"{ses_n}_createdAt_idx", "createdAt"),
    )
    message = Table(
        msg_n,
        md,
        Column("id", Text, primary_key=True),
        Column(
            "chatId",
            Text,
            _fk(f"{chat_n}.id", f"{msg_n}_chatId_fkey"),
            nullable=False,
        ),
        Column("role", Text, nullable=False),
        Column("content", Text),
        Column("contentRaw", Text),
        Column("reasoning", Text),
        Column("thinkingText", Text),
        Column("thinkingSignature", Text),
        Column("thinkingTokens", Integer),
        Column("inputTokens", Integer),
        Column("outputTokens", Integer),
        Column("modelId", Text),
        Column("provider", Text),
        Column("createdAt", PrismaDateTime, nullable=False),
        Index(f"{msg_n}_chatId_idx", "chatId"),
        Index(f"{msg_n}_createdAt_idx", "createdAt"),
    )
    tool_call = Table(
        tc_n,
        md,
        Column("id", Text, primary_key=True),
        Column(
            "messageId",
            Text,
            _fk(f"{msg_n}.id", f"{tc_n}_messageId_fkey"),
            nullable=False,
        ),
        Column("toolCallId", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("arguments", Text, nullable=False),
        Column("thought", Text),
        Column("thoughtSignature", Text),
        Column("result", Text),
        Column("createdAt", PrismaDateTime, nullable=False),
        Index(f"{tc_n}_messageId_idx", "messageId"),
        Index(f"{tc_n}_createdAt_idx", "createdAt"),
        UniqueConstraint("messageId", "toolCallId", name=f"{tc_n}_messageId_toolCallId_key"),
    )
    request = Table(
        req_n,
        md,
        Column("id", Text, primary_key=True),
        Column(
            "chatId",
            Text,
            _fk(f"{chat_n}.id", f"{req_n}_chatId_fkey"),
            nullable=False,
        ),
        Column(
            "messageId",
            Text,
            _fk(f"{msg_n}.id", f"{req_n}_messageId_fkey"),
        ),
        Column("provider", Text, nullable=False),
        Column("model", Text, nullable=False),
        Column("statusCode", Integer, nullable=False),
        Column("duration", Integer, nullable=False),
        Column("inputTokens", Integer, nullable=False),
        Column("outputTokens", Integer, nullable=False),
        Column("cost", Float(precision=53)),
        Column("correctionRounds", Integer),
        Column("createdAt", PrismaDateTime, nullable=False),
        Index(f"{req_n}_chatId_idx", "chatId"),
        Index(f"{req_n}_createdAt_idx", "createdAt"),
    )
    return Tables(md, chat, message, tool_call, request, session)


def column_kind(column: Column[Any]) -> str:
    """What a column of these tables holds: text, int, float, datetime or json."""
    kind = column.type
    if isinstance(kind, PrismaDateTime):
        return "datetime"
    if isinstance(kind, PrismaJson):
        return "json"
    if isinstance(kind, Float):
        return "float"
    if isinstance(kind, Integer):
        return "int"
    if isinstance(kind, Text):
        return "text"
    raise TypeError(f"no kind for column type {kind!r}")  # pragma: no cover - tables are ours
