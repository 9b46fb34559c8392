"""What differs between SQLite and PostgreSQL in the dashboard's SQL: one object per database.

Dates: PostgreSQL holds `TIMESTAMP(3)` UTC; SQLite holds INTEGER epoch milliseconds (Prisma's
native engine, and this library) or ISO-8601 text (Prisma's JS driver adapters), possibly
mixed in one column. Every query reads a date through `epoch_ms`, so both forms sort, filter
and bucket alike. Percentiles: PostgreSQL has `percentile_cont`; SQLite ranks a histogram of
the values with window functions and interpolates between the two neighbouring ranks, which
is the same definition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    over,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

_MS = {"hour": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000}
# 1970-01-01 was a Thursday; weeks start on Monday (ISO, as PostgreSQL's date_trunc('week')).
_MONDAY_OFFSET_MS = 3 * 86_400_000
BUCKETS = tuple(_MS)


def _lit(text: str) -> ColumnElement[Any]:
    # Literal constants rather than bind parameters keep the statements cacheable.
    return literal_column(text)


class Dialect:
    name: ClassVar[str]

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """A DateTime column as integer milliseconds since the Unix epoch (UTC)."""
        raise NotImplementedError

    def since(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        """`col >= at`, in a form the database's createdAt index can serve."""
        raise NotImplementedError

    def before(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        """`col < at`."""
        return self.epoch_ms(col) < _epoch_ms(at)

    def bucket_ms(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        """Start of the hour/day/week (Monday) holding `col`, as epoch milliseconds."""
        raise NotImplementedError

    def percentiles(
        self,
        value: ColumnElement[Any],
        group: ColumnElement[Any],
        where: ColumnElement[bool],
        fractions: tuple[float, ...],
    ) -> Select[Any]:
        """Rows (group, count, p for each fraction): continuous percentiles per group."""
        raise NotImplementedError

    def grouping(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """`col` as a GROUP BY key that does not tempt the planner into scanning its index."""
        return col

    def connect_args(self) -> dict[str, Any]:
        """Driver arguments that make a connection this package opens read-only."""
        return {}

    def read_only_statements(self) -> tuple[str, ...]:
        """Statements run on each new connection this package opens, to make it read-only."""
        return ()


def _epoch_ms(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


class SqliteDialect(Dialect):
    name = "sqlite"

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        as_ms = cast(
            func.round((func.julianday(col) - _lit("2440587.5")) * _lit("86400000.0")), Integer
        )
        return case((func.typeof(col) == _lit("'text'"), as_ms), else_=type_coerce(col, Integer))

    def since(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        ms = _epoch_ms(at)
        # SQLite orders every INTEGER before every TEXT, so `col >= ms` is an index range that
        # holds all integer dates from `ms` on and all text dates; the exact test follows.
        return and_(type_coerce(col, Integer) >= ms, self.epoch_ms(col) >= ms)

    def bucket_ms(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        size = literal_column(str(_MS[unit]), Integer)
        ms = self.epoch_ms(col)
        if unit == "week":
            offset = literal_column(str(_MONDAY_OFFSET_MS), Integer)
            return ((ms + offset) // size) * size - offset
        # `//` is SQLite's integer division of two integers (`/` would divide as REAL).
        return (ms // size) * size

    def percentiles(
        self,
        value: ColumnElement[Any],
        group: ColumnElement[Any],
        where: ColumnElement[bool],
        fractions: tuple[float, ...],
    ) -> Select[Any]:
        # A histogram first (one row per distinct value: durations repeat a lot), then
        # cumulative counts over it: the rank range [lo, hi) each value covers.
        hist = (
            select(group.label("g"), value.label("v"), func.count().label("c"))
            .where(where)
            .group_by(group, value)
            .subquery("hist")
        )
        running = over(func.sum(hist.c.c), partition_by=hist.c.g, order_by=hist.c.v)
        ranked = select(
            hist.c.g,
            hist.c.v,
            (running - hist.c.c).label("lo"),
            running.label("hi"),
            over(func.sum(hist.c.c), partition_by=hist.c.g).label("n"),
        ).subquery("ranked")
        g, v, lo, hi, n = ranked.c.g, ranked.c.v, ranked.c.lo, ranked.c.hi, ranked.c.n
        columns: list[ColumnElement[Any]] = [g, func.max(n).label("n")]
        for i, p in enumerate(fractions):
            # Position h = (n - 1) * p; interpolate between ranks floor(h) and floor(h) + 1.
            h = (n - 1) * _lit(repr(float(p)))
            k = cast(h, Integer)
            columns.append(func.max(case((and_(lo <= k, k < hi), v))).label(f"lo{i}"))
            columns.append(func.max(case((and_(lo <= k + 1, k + 1 < hi), v))).label(f"hi{i}"))
            columns.append(func.max(h - k).label(f"f{i}"))
        picked = select(*columns).group_by(g).subquery("picked")
        out: list[ColumnElement[Any]] = [picked.c.g, picked.c.n]
        for i in range(len(fractions)):
            low, high, f = picked.c[f"lo{i}"], picked.c[f"hi{i}"], picked.c[f"f{i}"]
            out.append((cast(low, Float) + f * (func.coalesce(high, low) - low)).label(f"p{i}"))
        return select(*out).order_by(picked.c.g)

    def grouping(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        # Grouping a createdAt range by chatId, SQLite would walk the whole chatId index (to
        # skip a sort) instead of the range; `|| ''` hides the index, as documented for `+col`.
        return col.concat(_lit("''"))

    def read_only_statements(self) -> tuple[str, ...]:
        return ("PRAGMA query_only = ON",)


class PostgresDialect(Dialect):
    name = "postgresql"

    def epoch_ms(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        # TIMESTAMP without time zone: extract(epoch) reads it as UTC, whatever the session zone.
        return cast(func.floor(func.date_part(_lit("'epoch'"), col) * _lit("1000")), BigInteger)

    def since(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        return col >= at.astimezone(UTC).replace(tzinfo=None)

    def before(self, col: ColumnElement[Any], at: datetime) -> ColumnElement[bool]:
        return col < at.astimezone(UTC).replace(tzinfo=None)

    def bucket_ms(self, col: ColumnElement[Any], unit: str) -> ColumnElement[Any]:
        if unit not in _MS:
            raise ValueError(f"unknown bucket {unit!r}")
        return self.epoch_ms(func.date_trunc(_lit(f"'{unit}'"), col))

    def percentiles(
        self,
        value: ColumnElement[Any],
        group: ColumnElement[Any],
        where: ColumnElement[bool],
        fractions: tuple[float, ...],
    ) -> Select[Any]:
        columns: list[ColumnElement[Any]] = [group.label("g"), func.count().label("n")]
        for i, p in enumerate(fractions):
            columns.append(
                func.percentile_cont(_lit(repr(float(p)))).within_group(value).label(f"p{i}")
            )
        return select(*columns).where(where).group_by(group).order_by(group)

    def connect_args(self) -> dict[str, Any]:
        return {"server_settings": {"default_transaction_read_only": "on"}}


def dialect_for(name: str) -> Dialect:
    if name == "sqlite":
        return SqliteDialect()
    if name == "postgresql":
        return PostgresDialect()
    raise ValueError(f"the dashboard reads SQLite and PostgreSQL databases, not {name!r}")
