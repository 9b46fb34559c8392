"""Apply the shipped Prisma Migrate migrations without any Prisma engine.

The bookkeeping is Prisma Migrate's own: the `_prisma_migrations` table is created with the
DDL Prisma's schema engine uses on each provider, and each applied migration gets the row
Prisma would write (uuid4 id, sha256 hex checksum of migration.sql, started_at, finished_at,
applied_steps_count = 1). So `prisma migrate status` / `deploy` see a database migrated here
as up to date, and a database migrated by Prisma is left alone here.

Timestamps follow Prisma's native engine: on SQLite it binds DateTime values as INTEGER
milliseconds since the Unix epoch; on PostgreSQL the columns are TIMESTAMPTZ.

Deviations from `prisma migrate deploy`, each on purpose:
- every migration runs in one transaction with its bookkeeping row (both SQLite and
  PostgreSQL have transactional DDL), so a failed migration leaves no half-applied schema;
  it is still recorded as failed (finished_at NULL, logs set) exactly like Prisma does, and
  blocks later runs until resolved, as Prisma's P3009 does;
- an applied migration whose file changed is an error here (Prisma only warns in
  `migrate dev`): silently running on a schema that differs from the shipped one is worse.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = [
    "MIGRATIONS_ROOT",
    "MIGRATIONS_TABLE",
    "AppliedMigration",
    "Migration",
    "MigrationChecksumError",
    "MigrationError",
    "MigrationFailedError",
    "applied_migrations",
    "async_url",
    "checksum",
    "engine_for_url",
    "ensure_schema",
    "load_migrations",
    "mark_rolled_back",
    "migrate",
    "migrate_url",
    "provider_of",
    "split_sqlite_script",
]

MIGRATIONS_ROOT = Path(__file__).resolve().parent
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

# Tables of the shipped init migration: finding them without bookkeeping means the schema was
# made some other way (e.g. `prisma db push`) and needs baselining, not a second CREATE.
_OWN_TABLES = ("LlmChat", "LlmMessage", "LlmToolCall", "LlmRequest", "LlmAgentSession")


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


def async_url(url: str) -> str:
    """An SQLAlchemy async URL for a SQLAlchemy, Prisma-style or plain database URL.

    `file:./dev.db` (Prisma's SQLite form), `sqlite:///x.db` and a bare path become
    `sqlite+aiosqlite:///...`; `postgresql://` / `postgres://` become `postgresql+asyncpg://`.
    Prisma's `?schema=` parameter is dropped because asyncpg does not accept it.
    """
    if url.startswith("file:"):
        return "sqlite+aiosqlite:///" + url.removeprefix("file:").split("?", 1)[0]
    if "://" not in url:
        return "sqlite+aiosqlite:///" + url
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        query = {k: v for k, v in parsed.query.items() if k != "schema"}
        parsed = parsed.set(drivername=parsed.drivername.replace("postgres+", "postgresql+"))
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False)


def postgres_schema(url: str) -> str | None:
    """The PostgreSQL schema named by Prisma's `?schema=` parameter, if any."""
    if "://" not in url:
        return None
    schema = make_url(url).query.get("schema")
    if isinstance(schema, str) and make_url(async_url(url)).get_backend_name() == "postgresql":
        return schema
    return None


def engine_for_url(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine for any URL form `async_url` accepts, honouring `?schema=`."""
    schema = postgres_schema(url)
    if schema is not None:
        connect_args = dict(engine_kwargs.pop("connect_args", {}))
        settings = dict(connect_args.get("server_settings", {}))
        settings.setdefault("search_path", schema)
        connect_args["server_settings"] = settings
        engine_kwargs["connect_args"] = connect_args
    return create_async_engine(async_url(url), **engine_kwargs)


async def ensure_schema(engine: AsyncEngine, url: str) -> None:
    """Create the PostgreSQL schema named by `?schema=` (Prisma Migrate does the same)."""
    schema = postgres_schema(url)
    if schema is None:
        return
    async with engine.begin() as conn:
        quoted = schema.replace('"', '""')
        await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{quoted}"')


async def migrate_url(url: str, *, root: Path | None = None) -> list[str]:
    """`migrate` on a URL (any form `async_url` accepts); disposes its engine afterwards."""
    engine = engine_for_url(url)
    try:
        await ensure_schema(engine, url)
        return await migrate(engine, root=root)
    finally:
        await engine.dispose()


async def migrate(engine: AsyncEngine, *, root: Path | None = None) -> list[str]:
    """Apply every pending shipped migration; return the names applied (empty when current).

    Raises MigrationChecksumError when an applied migration's file changed, and
    MigrationFailedError when a migration fails now or failed in an earlier run.
    """
    provider = provider_of(engine)
    migrations = load_migrations(provider, root)
    async with engine.connect() as base:
        # Transactions are begun and ended explicitly below: Python's sqlite3 would otherwise
        # commit before each DDL statement, and a migration must apply all or nothing.
        conn = await base.execution_options(isolation_level="AUTOCOMMIT")
        if provider == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            return await _migrate(conn, provider, migrations)
        finally:
            if provider == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


async def _migrate(conn: AsyncConnection, provider: str, migrations: list[Migration]) -> list[str]:
    if not await _table_exists(conn, provider, MIGRATIONS_TABLE):
        await _create_migrations_table(conn, provider)

    records = await _read_records(conn, provider)
    _check_history(migrations, records)

    applied: list[str] = []
    done = {r.migration_name for r in records if r.applied}
    for migration in migrations:
        if migration.name in done:
            continue
        if await _apply(conn, provider, migration):
            applied.append(migration.name)
    return applied


async def _create_migrations_table(conn: AsyncConnection, provider: str) -> None:
    # On SQLite the write lock of BEGIN IMMEDIATE makes check-and-create atomic between two
    # runners starting together; on PostgreSQL the advisory lock already does.
    await conn.exec_driver_sql("BEGIN IMMEDIATE" if provider == "sqlite" else "BEGIN")
    try:
        if not await _table_exists(conn, provider, MIGRATIONS_TABLE):
            existing = [t for t in _OWN_TABLES if await _table_exists(conn, provider, t)]
            if existing:
                raise MigrationError(
                    f"the database already has {', '.join(existing)} but no "
                    f"{MIGRATIONS_TABLE} table, so these migrations did not create it (perhaps "
                    "`prisma db push` did). Baseline it with "
                    "`prisma migrate resolve --applied <migration>` instead."
                )
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


async def _apply(conn: AsyncConnection, provider: str, migration: Migration) -> bool:
    """Apply one migration with its bookkeeping row in one transaction.

    Returns False when another process applied it meanwhile (seen after taking the lock).
    """
    script = migration.script.decode("utf-8")
    row_id = str(uuid.uuid4())
    started = _now()
    await conn.exec_driver_sql("BEGIN IMMEDIATE" if provider == "sqlite" else "BEGIN")
    try:
        if provider == "sqlite":
            # BEGIN IMMEDIATE holds SQLite's write lock: re-read to see a concurrent runner.
            again = await _read_records(conn, provider)
            if any(r.migration_name == migration.name and r.applied for r in again):
                await conn.exec_driver_sql("ROLLBACK")
                return False
        await conn.execute(
            text(
                f'INSERT INTO "{MIGRATIONS_TABLE}" '
                "(id, checksum, started_at, migration_name, applied_steps_count) "
                "VALUES (:id, :checksum, :started_at, :name, 0)"
            ),
            {
                "id": row_id,
                "checksum": migration.checksum,
                "started_at": _db_time(provider, started),
                "name": migration.name,
            },
        )
        await _run_script(conn, provider, script)
        await conn.execute(
            text(
                f'UPDATE "{MIGRATIONS_TABLE}" SET applied_steps_count = applied_steps_count + 1, '
                "finished_at = :finished_at WHERE id = :id"
            ),
            {"id": row_id, "finished_at": _db_time(provider, _now())},
        )
        await conn.exec_driver_sql("COMMIT")
    except Exception as exc:
        await _rollback(conn)
        logs = _describe(exc)
        await _record_failure(conn, provider, migration, row_id, started, logs)
        raise MigrationFailedError(migration.name, logs) from exc
    return True


async def _rollback(conn: AsyncConnection) -> None:
    # Suppressed: when BEGIN itself failed there is no transaction to roll back.
    with contextlib.suppress(Exception):
        await conn.exec_driver_sql("ROLLBACK")


async def _record_failure(
    conn: AsyncConnection,
    provider: str,
    migration: Migration,
    row_id: str,
    started: datetime,
    logs: str,
) -> None:
    # The row Prisma leaves after a failed step: started, not finished, no step counted.
    await conn.execute(
        text(
            f'INSERT INTO "{MIGRATIONS_TABLE}" '
            "(id, checksum, started_at, migration_name, logs, applied_steps_count) "
            "VALUES (:id, :checksum, :started_at, :name, :logs, 0)"
        ),
        {
            "id": row_id,
            "checksum": migration.checksum,
            "started_at": _db_time(provider, started),
            "name": migration.name,
            "logs": logs,
        },
    )


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


def _now() -> datetime:
    return datetime.now(UTC)


def _db_time(provider: str, value: datetime) -> int | datetime:
    # Prisma's native SQLite driver binds DateTime as epoch milliseconds (INTEGER).
    if provider == "sqlite":
        return int(value.timestamp() * 1000)
    return value


def _from_db_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    # Text timestamps: SQLite's current_timestamp default and Prisma's JS driver adapters.
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
            {"now": _db_time(provider, _now()), "name": name},
        )
        if result.rowcount == 0:
            raise MigrationError(f"no failed migration named {name!r} to mark as rolled back")
