"""Schema drift: whether the tables a store binds to hold what it writes (issue 11 point 6).

A database at another migration (a newer nodellm-orm's that renamed a column, or the user's
own) otherwise binds fine and fails at the first write with the driver's `no such column`,
after the chat row was written. Both backends read each bound table's columns once, when they
bind, and ask `drift_problems`; the error names each table and column, and the migration state.
Whether a declared type holds a kind of value is the dialect's answer (`SqlDialect.holds`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table

from .base import SchemaDriftError, near_miss_note
from .dialects import SqlDialect
from .tables import column_kind

__all__ = ["MIGRATIONS_SQL", "drift_error", "drift_problems"]

# The recorded migrations, for the error (`_prisma_migrations` is Prisma Migrate's table and ours).
MIGRATIONS_SQL = (
    'SELECT migration_name, finished_at, rolled_back_at FROM "_prisma_migrations" '
    "ORDER BY started_at"
)


def drift_problems(
    dialect: SqlDialect, tables: Iterable[Table], declared: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """One line per column of `tables` missing from, or of an unusable type in, `declared`
    (per table name: column name -> declared type, as the dialect's `columns_sql` reads them)."""
    problems: list[str] = []
    for table in tables:
        live = declared.get(table.name, {})
        for column in table.columns:
            kind = column_kind(column)
            found = live.get(column.name)
            if found is None:
                problems.append(
                    f"table {table.name!r}: column {column.name!r} does not exist"
                    + near_miss_note([column.name], live)
                )
            elif not dialect.holds(kind, found):
                problems.append(
                    f"table {table.name!r}: column {column.name!r} is {found or 'untyped'}, "
                    f"which does not hold the {kind} values nodellm-orm writes"
                )
    return problems


def drift_error(
    problems: Sequence[str], dialect: SqlDialect, migrations: Sequence[Sequence[Any]] | None
) -> SchemaDriftError:
    """The error for `problems`, with the migration state (`migrations`: the rows of
    MIGRATIONS_SQL, None when there is no `_prisma_migrations` table)."""
    # The shipped migrations are the migration package's: read only when reporting.
    from ..migrations.runner import describe_history, load_migrations

    shipped = {m.name for m in load_migrations(dialect.name)}
    rows = None if migrations is None else [(r[0], r[1], r[2]) for r in migrations]
    return SchemaDriftError(
        "the database's tables differ from what this nodellm-orm writes, so nothing was "
        "written:\n  " + "\n  ".join(problems) + "\n" + describe_history(rows, shipped)
    )
