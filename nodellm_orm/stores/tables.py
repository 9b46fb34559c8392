"""SQLAlchemy Core tables as Prisma Migrate makes them, built from schema.prisma's models
(`model.definition`).

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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKeyConstraint,
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
from ..model.definition import MODELS, Model


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
        return clock.to_datetime(value)


class PrismaJson(TypeDecorator[Any]):
    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(_dialect(dialect).json_type())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return (
            jsoncodec.encode(value, field="metadata") if _dialect(dialect).json_as_text else value
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if _dialect(dialect).json_as_text and isinstance(value, str):
            return jsoncodec.decode(value)
        return value


@dataclass(frozen=True, slots=True)
class Tables:
    metadata: MetaData
    chat: Table
    message: Table
    tool_call: Table
    request: Table
    agent_session: Table


def _column_type(prisma_type: str) -> Any:
    """The SQLAlchemy type of a Prisma scalar type (those `model.definition` accepts)."""
    if prisma_type == "String":
        return Text
    if prisma_type == "Int":
        return Integer
    if prisma_type == "Float":
        return Float(precision=53)
    if prisma_type == "DateTime":
        return PrismaDateTime
    if prisma_type == "Json":
        return PrismaJson
    raise TypeError(f"no column type for Prisma type {prisma_type!r}")  # pragma: no cover


def _table(md: MetaData, model: Model, names: Mapping[str, str]) -> Table:
    """One model's table as Prisma Migrate creates it, constraints named as Prisma names them
    (`<table>_<columns>_idx`, `_key`, `_fkey`)."""
    name = names[model.key]
    items: list[Any] = [
        Column(c.name, _column_type(c.type), primary_key=c.primary_key, nullable=c.optional)
        for c in model.columns
    ]
    for c in model.columns:
        if c.unique:
            items.append(Index(f"{name}_{c.name}_key", c.name, unique=True))
    for cols in model.unique_together:
        items.append(UniqueConstraint(*cols, name=f"{name}_{'_'.join(cols)}_key"))
    for fk in model.foreign_keys:
        target = names[fk.target]
        items.append(
            ForeignKeyConstraint(
                list(fk.columns),
                [f"{target}.{ref}" for ref in fk.references],
                name=f"{name}_{'_'.join(fk.columns)}_fkey",
                ondelete=fk.on_delete,
                onupdate=fk.on_update,
            )
        )
    for cols in model.indexes:
        items.append(Index(f"{name}_{'_'.join(cols)}_idx", *cols))
    return Table(name, md, *items)


def build_tables(table_names: TableNames | dict[str, str] | None = None) -> Tables:
    """The five tables on a fresh MetaData, under the given physical names, as the packaged
    schema.prisma declares them (`model.definition`)."""
    if isinstance(table_names, dict):
        names = {**DEFAULT_TABLE_NAMES, **table_names}
    else:
        names = resolve_names(table_names)
    md = MetaData()
    tables = {key: _table(md, model, names) for key, model in MODELS.items()}
    return Tables(md, **tables)


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
