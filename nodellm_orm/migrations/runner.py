"""Apply the shipped Prisma Migrate migrations without any Prisma engine.

The bookkeeping is Prisma Migrate's own: the `_prisma_migrations` table is created with the
DDL Prisma's schema engine uses on each provider, and each applied migration gets the row
Prisma would write (uuid4 id, sha256 hex checksum of migration.sql, started_at, finished_at,
applied_steps_count = 1). So `prisma migrate status` / `deploy` see a database migrated here
as up to date, and a database migrated by Prisma is left alone here.

Timestamps follow Prisma's native engine: on SQLite it binds DateTime values as INTEGER
milliseconds since the Unix epoch; on PostgreSQL the columns are TIMESTAMPTZ.

Before any DDL the live tables are compared with the models (`compare.inspect_schema`), so a
database made by `prisma db push`, by `prisma migrate dev` under other migration names or by
the JS package's SQL is adopted as it is, and one at an earlier JS-package schema is upgraded
by a shipped step (`upgrades/<provider>/`, Prisma's layout too).

Deviations from `prisma migrate deploy`, each on purpose:
- every migration runs in one transaction with its bookkeeping row (both SQLite and
  PostgreSQL have transactional DDL), so a failed migration leaves nothing behind: no
  half-applied schema and no failed row (Prisma records one, which blocks every later run
  until resolved; here nothing was applied, so nothing must block). A failed row that Prisma
  left still blocks, as Prisma's P3009 does;
- adopted tables get no row: writing our migration's name into a history that Prisma manages
  from the user's own migrations folder would make `prisma migrate status` report drift;
- an applied migration whose file changed is an error here (Prisma only warns in
  `migrate dev`): silently running on a schema that differs from the shipped one is worse.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..core.clock import to_datetime, to_epoch_ms, utc_now
from ..model import DEFAULT_TABLE_NAMES
from ..stores.base import near_misses
from ..stores.dialects import dialect_for
from ..stores.urls import engine_for_url, postgres_schema
from .compare import SchemaState, inspect_schema
from .rename import rename_identifiers

__all__ = [
    "MIGRATIONS_ROOT",
    "MIGRATIONS_TABLE",
    "AppliedMigration",
    "Migration",
    "MigrationChecksumError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationResult",
    "SchemaMismatchError",
    "applied_migrations",
    "checksum",
    "describe_history",
    "ensure_schema",
    "load_migrations",
    "mark_rolled_back",
    "migrate",
    "migrate_url",
    "provider_of",
    "split_sqlite_script",
]

MIGRATIONS_ROOT = Path(__file__).resolve().parent
# Upgrades from earlier @node-llm/orm schemas, in Prisma Migrate's layout per provider. They are
# not part of the linear history (a fresh database gets the current schema from init).
UPGRADES_DIR = "upgrades"
MIGRATIONS_TABLE = "_prisma_migrations"

# The exact DDL of Prisma's schema engine (sql-schema-connector, create_migrations_table).
# SQLite keeps the statement text in sqlite_master, so even the spacing matches Prisma's.
_CREATE_TABLE = {
    "sqlite": (
        'CREATE TABLE "_prisma_migrations" (\n'
        '    "id"                    TEXT PRIMARY KEY NOT NULL,\n'
        '    "checksum"              TEXT NOT NULL,\n'
        '    "finished_at"           DATETIME,\n'
        '    "migration_name"        TEXT NOT NULL,\n'
        '    "logs"                  TEXT,\n'
        '    "rolled_back_at"        DATETIME,\n'
        '    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,\n'
        '    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0\n'
        ")"
    ),
    "postgresql": (
        "CREATE TABLE _prisma_migrations (\n"
        "    id                      VARCHAR(36) PRIMARY KEY NOT NULL,\n"
        "    checksum                VARCHAR(64) NOT NULL,\n"
        "    finished_at             TIMESTAMPTZ,\n"
        "    migration_name          VARCHAR(255) NOT NULL,\n"
        "    logs                    TEXT,\n"
        "    rolled_back_at          TIMESTAMPTZ,\n"
        "    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),\n"
        "    applied_steps_count     INTEGER NOT NULL DEFAULT 0\n"
        ")"
    ),
}

# Prisma's own advisory lock key, so this runner and `prisma migrate` exclude each other.
_PG_LOCK_KEY = 72707369


class MigrationError(Exception):
    """The migrations cannot be applied as asked; the message says what to do."""


class MigrationChecksumError(MigrationError):
    """An applied migration's migration.sql differs from the one recorded when it ran."""

    def __init__(self, name: str, recorded: str, current: str) -> None:
        super().__init__(
            f"migration {name!r} was modified after it was applied "
            f"(recorded checksum {recorded}, file now {current}). Restore the original "
            "migration.sql, or add a new migration instead of editing an applied one."
        )
        self.name = name
        self.recorded = recorded
        self.current = current


class MigrationFailedError(MigrationError):
    """A migration failed, now or in an earlier run (recorded with finished_at NULL)."""

    def __init__(self, name: str, logs: str, *, earlier: bool = False) -> None:
        if earlier:
            message = (
                f"migration {name!r} failed in an earlier run and blocks further migrations. "
                "Its transaction was rolled back; fix the cause, then mark it rolled back "
                f"(`prisma migrate resolve --rolled-back {name}` or "
                "nodellm_orm.migrations.mark_rolled_back) and migrate again.\n"
                f"Recorded error: {logs}"
            )
        else:
            message = f"migration {name!r} failed and was rolled back: {logs}"
        super().__init__(message)
        self.name = name
        self.logs = logs


class SchemaMismatchError(MigrationError):
    """The tables exist but differ from the models; nothing was written."""

    def __init__(self, state: SchemaState, history: str = "") -> None:
        super().__init__(
            "the database's tables do not match the nodellm-orm models, so no migration was "
            "applied (nothing was written). Table by table:\n"
            + state.report()
            + (f"\n{history}" if history else "")
            + "\nBring the tables in line (e.g. `prisma migrate dev` with the schema from "
            "`nodellm-orm init`), or pass migrate=False to use them as they are."
        )
        self.state = state


@dataclass(frozen=True)
class MigrationResult:
    """What `migrate` did: migrations applied, tables adopted as they were, upgrades run."""

    applied: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    # Optional tables that do not exist: the features needing them must stay switched off.
    absent: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable, one line per fact (what `nodellm-orm migrate` prints)."""
        out = [f"applied {name}" for name in self.applied]
        out += [f"upgraded: {what}" for what in self.upgraded]
        if self.adopted:
            out.append(
                f"adopted existing tables {', '.join(self.adopted)}: they match the models, "
                "no DDL run and nothing recorded"
            )
        if self.absent:
            out.append(
                f"absent optional tables {', '.join(self.absent)}: switch off what needs them "
                "(Persistence(tool_calls=False, requests=False); no agent sessions)"
            )
        return out or ["already up to date"]


@dataclass(frozen=True)
class _Upgrade:
    """A shipped step from an earlier JS-package schema, recognised by what the database lacks."""

    name: str
    description: str
    # Tables the earlier schema lacks entirely, and columns it lacks per (present) table.
    lacks_tables: tuple[str, ...]
    lacks_columns: Mapping[str, tuple[str, ...]]

    def fits(self, state: SchemaState) -> bool:
        for model, table in state.tables.items():
            if model in self.lacks_tables:
                if table.exists:
                    return False
                continue
            missing = tuple(self.lacks_columns.get(model, ()))
            if not table.exists or tuple(table.missing_columns) != missing:
                return False
            if len(table.problems) != len(missing):
                return False
        return True

    def load(self, provider: str, root: Path | None) -> Migration:
        script = (root or MIGRATIONS_ROOT) / UPGRADES_DIR / provider / self.name / "migration.sql"
        return Migration(name=self.name, path=script, script=script.read_bytes())


# @node-llm/orm 0.4.0's schema.prisma has no LlmAgentSession model and no
# LlmRequest.correctionRounds; 0.8.0's is the current one (adopted as it is).
_UPGRADES = (
    _Upgrade(
        name="20251201000000_upgrade_from_node_llm_orm_0_4",
        description="from the @node-llm/orm 0.4 schema: created the agent-session table, "
        "added the request table's correctionRounds column",
        lacks_tables=("agent_session",),
        lacks_columns={"request": ("correctionRounds",)},
    ),
)


@dataclass(frozen=True)
class Migration:
    """One `<timestamp>_<name>/migration.sql` directory."""

    name: str
    path: Path
    script: bytes

    @property
    def checksum(self) -> str:
        return checksum(self.script)

    def matches(self, recorded: str) -> bool:
        """Prisma's rule: equal checksums, tolerating LF/CRLF conversion by git."""
        lf = self.script.replace(b"\r\n", b"\n")
        candidates = (self.script, lf, lf.replace(b"\n", b"\r\n"))
        return any(checksum(c) == recorded.lower() for c in candidates)


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `_prisma_migrations`. Timestamps are aware UTC datetimes."""

    id: str
    checksum: str
    finished_at: datetime | None
    migration_name: str
    logs: str | None
    rolled_back_at: datetime | None
    started_at: datetime
    applied_steps_count: int

    @property
    def failed(self) -> bool:
        return self.finished_at is None and self.rolled_back_at is None

    @property
    def applied(self) -> bool:
        return self.finished_at is not None and self.rolled_back_at is None


def checksum(script: bytes) -> str:
    """Prisma's migration checksum: sha256 of migration.sql, lowercase hex."""
    return hashlib.sha256(script).hexdigest()


def provider_of(engine: AsyncEngine | AsyncConnection) -> str:
    """The Prisma provider name of an engine's dialect."""
    name = engine.dialect.name
    if name == "sqlite":
        return "sqlite"
    if name == "postgresql":
        return "postgresql"
    raise MigrationError(
        f"no shipped migrations for the {name!r} dialect; supported: sqlite, postgresql"
    )


def load_migrations(provider: str, root: Path | None = None) -> list[Migration]:
    """The migrations of `provider`, in name (= timestamp) order, as Prisma orders them."""
    directory = (root or MIGRATIONS_ROOT) / provider
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory for provider {provider!r}: {directory}")
    found = []
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        script = child / "migration.sql"
        if child.is_dir() and script.is_file():
            found.append(Migration(name=child.name, path=script, script=script.read_bytes()))
    return found


def split_sqlite_script(script: str) -> list[str]:
    """Split an SQLite script into complete statements.

    SQLite's own tokenizer (sqlite3.complete_statement) decides where a statement ends, so
    semicolons inside strings, comments or CREATE TRIGGER bodies do not split it.
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        raise MigrationError(f"incomplete SQL statement at the end of the script: {buffer!r}")
    return [s for s in statements if not _only_comments(s)]


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


async def ensure_schema(engine: AsyncEngine, url: str) -> None:
    """Create the PostgreSQL schema named by `?schema=` (Prisma Migrate does the same)."""
    schema = postgres_schema(url)
    if schema is None:
        return
    async with engine.begin() as conn:
        quoted = schema.replace('"', '""')
        await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{quoted}"')


async def migrate_url(
    url: str, *, root: Path | None = None, table_names: Mapping[str, str] | None = None
) -> MigrationResult:
    """`migrate` on a URL (any form `async_url` accepts); disposes its engine afterwards."""
    engine = engine_for_url(url)
    try:
        await ensure_schema(engine, url)
        return await migrate(engine, root=root, table_names=table_names)
    finally:
        await engine.dispose()


async def migrate(
    engine: AsyncEngine,
    *,
    root: Path | None = None,
    table_names: Mapping[str, str] | None = None,
) -> MigrationResult:
    """Bring the database to the models' schema; say what was applied, adopted or upgraded.

    `table_names` maps models (`chat`, `message`, `tool_call`, `request`, `agent_session`) to
    physical table names; the DDL is the shipped one with those names substituted.

    Before any DDL the live tables are compared with the models:
    - none exists: the shipped migrations run (each in one transaction with its row);
    - they match (made by `prisma db push`, `prisma migrate dev` under other migration names,
      or the JS package's SQL): adopted as they are, with no DDL and no bookkeeping row, so the
      user's own `_prisma_migrations` history stays what Prisma expects; optional tables
      (tool calls, requests, agent sessions) may be absent;
    - they are at an earlier schema of @node-llm/orm (0.4): the shipped upgrade runs;
    - anything else: SchemaMismatchError, reporting table by table what differs; nothing
      is written.

    A migration that fails is rolled back whole and leaves no row behind (DDL is transactional
    on both providers, so nothing of it was applied). Raises MigrationChecksumError when an
    applied shipped migration's file changed, MigrationFailedError when a migration fails now
    or a failed run (e.g. Prisma's) is recorded.
    """
    provider = provider_of(engine)
    names = _names(table_names)
    migrations = load_migrations(provider, root)
    async with engine.connect() as base:
        # Transactions are begun and ended explicitly below: Python's sqlite3 would otherwise
        # commit before each DDL statement, and a migration must apply all or nothing.
        conn = await base.execution_options(isolation_level="AUTOCOMMIT")
        if provider == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            return await _migrate(conn, provider, migrations, names, root)
        finally:
            if provider == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


def _names(table_names: Mapping[str, str] | None) -> dict[str, str]:
    names = dict(DEFAULT_TABLE_NAMES)
    for key, value in (table_names or {}).items():
        if key not in names:
            raise MigrationError(
                f"unknown table_names key {key!r}; expected one of {sorted(names)}"
            )
        if not isinstance(value, str) or not value or "\x00" in value:
            raise MigrationError(f"table_names[{key!r}] must be a non-empty name, not {value!r}")
        names[key] = value
    if len(set(names.values())) != len(names):
        raise MigrationError(f"table_names must name five different tables: {names}")
    return names


async def _migrate(
    conn: AsyncConnection,
    provider: str,
    migrations: list[Migration],
    names: dict[str, str],
    root: Path | None,
) -> MigrationResult:
    renames = {DEFAULT_TABLE_NAMES[k]: v for k, v in names.items()}
    has_table = await _table_exists(conn, provider, MIGRATIONS_TABLE)
    records = await _read_records(conn, provider) if has_table else []
    _check_history(migrations, records)
    recorded = {r.migration_name for r in records if r.applied}
    shipped = {m.name for m in migrations}

    applied: list[str] = []
    if recorded & shipped:
        # Our history is in this database: later shipped migrations apply as usual.
        for migration in migrations:
            if migration.name not in recorded:
                script = rename_identifiers(migration.script.decode("utf-8"), renames)
                if await _apply(conn, provider, migration, script, record=True):
                    applied.append(migration.name)

    await _refuse_case_clashes(conn, provider, names)
    state = await inspect_schema(conn, provider, names)
    if state.all_absent:
        if not has_table:
            await _create_migrations_table(conn, provider)
        for migration in migrations:
            if migration.name in applied:
                continue
            script = rename_identifiers(migration.script.decode("utf-8"), renames)
            # A row exists when these migrations made another set of tables in this database:
            # the DDL runs for these names too, the history already tells the migration ran.
            fresh = migration.name not in recorded
            guard = names["chat"] if migration is migrations[0] else None
            if await _apply(conn, provider, migration, script, record=fresh, guard=guard):
                applied.append(migration.name)
        return MigrationResult(applied=applied)

    if state.usable:
        mine = bool(recorded & shipped)
        adopted = [] if mine else [t.table for t in state.tables.values() if t.exists]
        return MigrationResult(applied=applied, adopted=adopted, absent=_absent(state))

    for upgrade in _UPGRADES:
        if upgrade.fits(state):
            migration = upgrade.load(provider, root)
            script = rename_identifiers(migration.script.decode("utf-8"), renames)
            # Recorded where a `_prisma_migrations` history exists (the folder ships in Prisma's
            # layout, so it can be copied into the user's migrations); a database without one
            # is not managed by Prisma Migrate and gets none.
            await _apply(conn, provider, migration, script, record=has_table)
            after = await inspect_schema(conn, provider, names)
            return MigrationResult(
                applied=applied,
                upgraded=[f"{migration.name} ({upgrade.description})"],
                absent=_absent(after),
            )
    history = [(r.migration_name, r.finished_at, r.rolled_back_at) for r in records]
    raise SchemaMismatchError(state, describe_history(history if has_table else None, shipped))


def describe_history(rows: Sequence[tuple[str, Any, Any]] | None, shipped: Collection[str]) -> str:
    """The migration state, for an error about the schema: each recorded migration
    (name, finished_at, rolled_back_at rows of `_prisma_migrations`, None when the table does
    not exist) with what it is, a migration these migrations do not ship named as such."""
    if rows is None:
        return (
            f"Migration state: no {MIGRATIONS_TABLE} table (the tables were not made by "
            "nodellm-orm's or Prisma's migrations)."
        )
    if not rows:
        return f"Migration state: {MIGRATIONS_TABLE} records no migration."
    parts = []
    unknown = []
    for name, finished, rolled_back in rows:
        status = "rolled back" if rolled_back is not None else "applied"
        if finished is None and rolled_back is None:
            status = "failed"
        if name not in shipped:
            unknown.append(name)
            status += ", not shipped by this nodellm-orm"
        parts.append(f"{name} ({status})")
    text = f"Migration state: {MIGRATIONS_TABLE} records " + "; ".join(parts) + "."
    if unknown:
        text += (
            f" {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among this "
            "version's migrations: made by a newer nodellm-orm (upgrade it) or by your own "
            "migrations (keep the columns nodellm-orm writes)."
        )
    return text


async def _refuse_case_clashes(conn: AsyncConnection, provider: str, names: dict[str, str]) -> None:
    """On a database that folds identifier case (SQLite), a table differing from a wanted one
    in case only (`llmchat` for `LlmChat`) would be adopted as it, or block its creation:
    refuse, naming it, as the stores do (names are exact everywhere)."""
    dialect = dialect_for(provider)
    if not dialect.folds_identifier_case:
        return  # PostgreSQL: "LlmChat" is created beside llmchat, which stays untouched
    existing = {str(r[0]) for r in (await conn.exec_driver_sql(dialect.tables_sql)).all()}
    clashes = [
        f"{name!r} (for {model}): {', '.join(map(repr, near_misses(name, existing)))} "
        "differs only in letter case"
        for model, name in names.items()
        if name not in existing and near_misses(name, existing)
    ]
    if clashes:
        raise MigrationError(
            "tables differ from the wanted names in letter case only, and names are matched "
            "exactly (nothing was written): "
            + "; ".join(clashes)
            + ". Rename those tables, or pass their names as table_names."
        )


def _absent(state: SchemaState) -> list[str]:
    return [state.tables[m].table for m in state.absent()]


async def _create_migrations_table(conn: AsyncConnection, provider: str) -> None:
    # On SQLite the write lock of BEGIN IMMEDIATE makes check-and-create atomic between two
    # runners starting together; on PostgreSQL the advisory lock already does.
    await conn.exec_driver_sql("BEGIN IMMEDIATE" if provider == "sqlite" else "BEGIN")
    try:
        if not await _table_exists(conn, provider, MIGRATIONS_TABLE):
            await conn.exec_driver_sql(_CREATE_TABLE[provider])
        await conn.exec_driver_sql("COMMIT")
    except BaseException:
        await _rollback(conn)
        raise


def _check_history(migrations: Sequence[Migration], records: Sequence[AppliedMigration]) -> None:
    for record in records:
        if record.failed:
            raise MigrationFailedError(record.migration_name, record.logs or "", earlier=True)
    by_name = {m.name: m for m in migrations}
    for record in records:
        migration = by_name.get(record.migration_name)
        # Rows for migrations not shipped (the user's own) are not ours to judge.
        if record.applied and migration is not None and not migration.matches(record.checksum):
            raise MigrationChecksumError(migration.name, record.checksum, migration.checksum)


async def _apply(
    conn: AsyncConnection,
    provider: str,
    migration: Migration,
    script: str,
    *,
    record: bool,
    guard: str | None = None,
) -> bool:
    """Run one migration's `script` in one transaction, with its bookkeeping row if `record`.

    The row's checksum is the shipped file's (the script may be renamed for other tables).
    Returns False when another process applied it meanwhile (seen after taking the lock):
    its row is there, or the `guard` table exists. On failure everything is rolled back and
    no row is left: nothing of the migration was applied, so nothing must block a later run.
    """
    row_id = str(uuid.uuid4())
    await conn.exec_driver_sql("BEGIN IMMEDIATE" if provider == "sqlite" else "BEGIN")
    try:
        if provider == "sqlite":
            # BEGIN IMMEDIATE holds SQLite's write lock: re-read to see a concurrent runner.
            again = await _read_records(conn, provider) if record else []
            taken = any(r.migration_name == migration.name and r.applied for r in again)
            if taken or (guard is not None and await _table_exists(conn, provider, guard)):
                await conn.exec_driver_sql("ROLLBACK")
                return False
        started = utc_now()
        await _run_script(conn, provider, script)
        if record:
            await conn.execute(
                text(
                    f'INSERT INTO "{MIGRATIONS_TABLE}" (id, checksum, started_at, finished_at, '
                    "migration_name, applied_steps_count) "
                    "VALUES (:id, :checksum, :started_at, :finished_at, :name, 1)"
                ),
                {
                    "id": row_id,
                    "checksum": migration.checksum,
                    "started_at": _db_time(provider, started),
                    "finished_at": _db_time(provider, utc_now()),
                    "name": migration.name,
                },
            )
        await conn.exec_driver_sql("COMMIT")
    except Exception as exc:
        await _rollback(conn)
        raise MigrationFailedError(migration.name, _describe(exc)) from exc
    return True


async def _rollback(conn: AsyncConnection) -> None:
    # Suppressed: when BEGIN itself failed there is no transaction to roll back.
    with contextlib.suppress(Exception):
        await conn.exec_driver_sql("ROLLBACK")


async def _run_script(conn: AsyncConnection, provider: str, script: str) -> None:
    if provider == "sqlite":
        for statement in split_sqlite_script(script):
            await conn.exec_driver_sql(statement)
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if type(driver).__module__.startswith("asyncpg"):
        # asyncpg runs an argument-less script over the simple query protocol, several
        # statements at once, as Prisma's engine sends migration.sql to PostgreSQL.
        await driver.execute(script)
    else:
        await conn.exec_driver_sql(script)


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    cause = orig if orig is not None else exc
    return f"{type(cause).__name__}: {cause}".strip()


def _db_time(provider: str, value: datetime) -> int | datetime:
    # Prisma's native SQLite driver binds DateTime as epoch milliseconds (INTEGER).
    if provider == "sqlite":
        return to_epoch_ms(value)
    return value


# Text timestamps too: SQLite's current_timestamp default and Prisma's JS driver adapters.
_from_db_time = to_datetime


async def _table_exists(conn: AsyncConnection, provider: str, name: str) -> bool:
    if provider == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
    else:
        query = (
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = :name"
        )
    result = await conn.execute(text(query), {"name": name})
    return result.first() is not None


async def _read_records(conn: AsyncConnection, provider: str) -> list[AppliedMigration]:
    result = await conn.execute(
        text(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, "
            f'started_at, applied_steps_count FROM "{MIGRATIONS_TABLE}" ORDER BY started_at'
        )
    )
    records = []
    for row in result.all():
        started = _from_db_time(row.started_at)
        assert started is not None  # NOT NULL column
        records.append(
            AppliedMigration(
                id=row.id,
                checksum=row.checksum,
                finished_at=_from_db_time(row.finished_at),
                migration_name=row.migration_name,
                logs=row.logs,
                rolled_back_at=_from_db_time(row.rolled_back_at),
                started_at=started,
                applied_steps_count=int(row.applied_steps_count),
            )
        )
    return records


async def applied_migrations(engine: AsyncEngine) -> list[AppliedMigration]:
    """The rows of `_prisma_migrations` in started_at order (empty when it does not exist)."""
    provider = provider_of(engine)
    async with engine.connect() as conn:
        if not await _table_exists(conn, provider, MIGRATIONS_TABLE):
            return []
        return await _read_records(conn, provider)


async def mark_rolled_back(engine: AsyncEngine, name: str) -> None:
    """Mark the failed run of migration `name` as rolled back so it is retried.

    Same effect as `prisma migrate resolve --rolled-back <name>`.
    """
    provider = provider_of(engine)
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                f'UPDATE "{MIGRATIONS_TABLE}" SET rolled_back_at = :now '
                "WHERE migration_name = :name AND finished_at IS NULL AND rolled_back_at IS NULL"
            ),
            {"now": _db_time(provider, utc_now()), "name": name},
        )
        if result.rowcount == 0:
            raise MigrationError(f"no failed migration named {name!r} to mark as rolled back")
