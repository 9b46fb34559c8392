"""Compare a live database with the models before any DDL runs.

The expected shape is the SQLAlchemy tables of `stores.tables` (the same facts the shipped
migration creates): per table its columns (kind and nullability), primary key, indexes
(columns and uniqueness) and foreign keys (columns, target, ON DELETE). Indexes and foreign keys
are matched by what they do, not by name, so a schema made by `prisma db push`, by
`prisma migrate dev` or by hand with other constraint names still matches. Extra columns,
indexes and tables are the user's own and are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ..model import MODEL_KEYS, OPTIONAL_MODELS
from ..stores.tables import build_tables, column_kind

__all__ = ["REQUIRED_MODELS", "SchemaState", "TableState", "inspect_schema"]

# Chats and messages are always written; the other tables back optional features (tool-call
# and request persistence, agent sessions) and may be left out of a minimal schema.
REQUIRED_MODELS = tuple(k for k in MODEL_KEYS if k not in OPTIONAL_MODELS)

# Column kinds as each provider spells them. SQLite: what Prisma's DDL declares (Json is TEXT
# when the schema says String, JSONB when Prisma >= 6.2 maps a Json field).
_SQLITE_KINDS = {
    "TEXT": "text",
    "INTEGER": "int",
    "REAL": "float",
    "DOUBLE": "float",
    "DOUBLE PRECISION": "float",
    "FLOAT": "float",
    "DATETIME": "datetime",
    "JSONB": "json",
    "JSON": "json",
}
_PG_KINDS = {
    "text": "text",
    "integer": "int",
    "double precision": "float",
    "jsonb": "json",
}


@dataclass
class TableState:
    """One model's table: absent, matching, or the list of what differs."""

    model: str
    table: str
    exists: bool
    problems: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.exists and not self.problems


@dataclass
class SchemaState:
    tables: dict[str, TableState]

    @property
    def all_absent(self) -> bool:
        return not any(t.exists for t in self.tables.values())

    @property
    def usable(self) -> bool:
        """Required tables match and every optional one either matches or is absent."""
        return all(self.tables[m].matches for m in REQUIRED_MODELS) and all(
            t.matches or not t.exists for t in self.tables.values()
        )

    def absent(self) -> list[str]:
        return [t.model for t in self.tables.values() if not t.exists]

    def report(self) -> str:
        lines = []
        for state in self.tables.values():
            if not state.exists:
                lines.append(f"  {state.table} ({state.model}): absent")
            elif state.problems:
                lines.append(f"  {state.table} ({state.model}): " + "; ".join(state.problems))
            else:
                lines.append(f"  {state.table} ({state.model}): matches")
        return "\n".join(lines)


async def inspect_schema(
    conn: AsyncConnection, provider: str, names: Mapping[str, str]
) -> SchemaState:
    """Each model's table under `names`, compared with what the models need."""
    tables = build_tables(dict(names))
    by_model: dict[str, Table] = {key: getattr(tables, key) for key in MODEL_KEYS}
    states: dict[str, TableState] = {}
    for model, table in by_model.items():
        live = await _columns(conn, provider, table.name)
        state = TableState(model, table.name, exists=bool(live))
        if state.exists:
            await conn.run_sync(_compare, table, live, provider, state)
        states[model] = state
    return SchemaState(states)


async def _columns(conn: AsyncConnection, provider: str, table: str) -> dict[str, tuple[str, bool]]:
    """Declared kind and nullability per column; empty when the table does not exist."""
    found: dict[str, tuple[str, bool]] = {}
    if provider == "sqlite":
        rows = await conn.execute(
            text('SELECT name, type, "notnull", pk FROM pragma_table_info(:t)'), {"t": table}
        )
        for name, declared, notnull, pk in rows.all():
            spelled = str(declared).strip().upper()
            kind = _SQLITE_KINDS.get(spelled, spelled.lower())
            # SQLite lets a TEXT PRIMARY KEY hold NULL unless declared NOT NULL; Prisma declares it.
            found[name] = (kind, not notnull and not pk)
        return found
    rows = await conn.execute(
        text(
            "SELECT column_name, data_type, is_nullable, datetime_precision "
            "FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :t"
        ),
        {"t": table},
    )
    for name, data_type, nullable, precision in rows.all():
        if data_type == "timestamp without time zone" and precision == 3:
            kind = "datetime"
        elif data_type == "timestamp without time zone":
            kind = f"timestamp({precision})"
        else:
            kind = _PG_KINDS.get(data_type, data_type)
        found[name] = (kind, nullable == "YES")
    return found


def _compare(
    sync: Connection,
    table: Table,
    live: dict[str, tuple[str, bool]],
    provider: str,
    state: TableState,
) -> None:
    for column in table.columns:
        got = live.get(column.name)
        want = column_kind(column)
        if got is None:
            state.missing_columns.append(column.name)
            state.problems.append(f"missing column {column.name!r}")
            continue
        kind, nullable = got
        # On SQLite a Json field is TEXT (Prisma < 6.2 / a String field) or JSONB (Prisma >= 6.2):
        # both hold the same JSON text.
        ok = kind == want or (provider == "sqlite" and want == "json" and kind == "text")
        if not ok:
            state.problems.append(f"column {column.name!r} is {kind}, expected {want}")
        if nullable != column.nullable and not column.primary_key:
            wanted = "nullable" if column.nullable else "NOT NULL"
            state.problems.append(f"column {column.name!r} should be {wanted}")

    insp = inspect(sync)
    pk = insp.get_pk_constraint(table.name).get("constrained_columns") or []
    if list(pk) != [c.name for c in table.primary_key.columns]:
        state.problems.append(f"primary key is {pk or 'missing'}, expected ['id']")

    indexes = {(tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table.name)}
    for u in insp.get_unique_constraints(table.name):
        indexes.add((tuple(u["column_names"]), True))
    for index in table.indexes:
        cols = tuple(c.name for c in index.columns)
        if (cols, bool(index.unique)) not in indexes:
            kind = "unique index" if index.unique else "index"
            state.problems.append(f"missing {kind} {index.name} on {list(cols)}")
    for constraint in table.constraints:
        cols = tuple(getattr(constraint, "columns", {}).keys())
        if type(constraint).__name__ == "UniqueConstraint" and (cols, True) not in indexes:
            state.problems.append(f"missing unique index {constraint.name} on {list(cols)}")

    fks = set()
    for fk in insp.get_foreign_keys(table.name):
        ondelete = str((fk.get("options") or {}).get("ondelete") or "").upper()
        fks.add(
            (
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                tuple(fk["referred_columns"]),
                ondelete,
            )
        )
    for fkc in table.foreign_key_constraints:
        target = fkc.elements[0].column.table.name
        want_fk = (
            tuple(c.name for c in fkc.columns),
            target,
            tuple(e.column.name for e in fkc.elements),
            "CASCADE",
        )
        if want_fk not in fks:
            state.problems.append(
                f"missing foreign key {fkc.name} ({', '.join(want_fk[0])} -> "
                f"{target}.{', '.join(want_fk[2])} ON DELETE CASCADE)"
            )
