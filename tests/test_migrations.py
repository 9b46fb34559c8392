"""The shipped migrations and the engine-free runner, on real SQLite files and PostgreSQL.

PostgreSQL: NODELLM_TEST_PG_URL when set, else a throwaway local cluster when the server
binaries are installed (tests/support/postgres.py); skipped otherwise.

The expected catalog is derived from schema.prisma with Prisma's naming and type-mapping
rules, so these tests fail when the schema and the shipped SQL drift apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from nodellm_orm.migrations import (
    MIGRATIONS_ROOT,
    MigrationChecksumError,
    MigrationError,
    MigrationFailedError,
    SchemaMismatchError,
    applied_migrations,
    load_migrations,
    mark_rolled_back,
    migrate,
    migrate_url,
    runner,
)
from nodellm_orm.migrations.rename import rename_identifiers
from nodellm_orm.migrations.runner import split_sqlite_script
from nodellm_orm.schema import schema_for
from nodellm_orm.stores.urls import async_url
from tests.conftest import postgres_server, sql_dialects
from tests.support.postgres import create_database


@dataclass
class Db:
    provider: str
    engine: AsyncEngine
    url: str


@pytest.fixture(params=sql_dialects())
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    provider: str = request.param
    if provider == "sqlite":
        url = "sqlite+aiosqlite:///" + str(tmp_path / "app.db")
    else:
        url = await create_database(postgres_server(), prefix="mig")
    engine = create_async_engine(url)
    try:
        yield Db(provider, engine, url)
    finally:
        await engine.dispose()


def copy_migrations(tmp_path: Path) -> Path:
    root = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


# --- the expected catalog, from schema.prisma -------------------------------------------

SQL_TYPES = {
    "sqlite": {
        "String": "TEXT",
        "Int": "INTEGER",
        "Float": "REAL",
        "DateTime": "DATETIME",
    },
    "postgresql": {
        "String": "TEXT",
        "Int": "INTEGER",
        "Float": "DOUBLE PRECISION",
        "DateTime": "TIMESTAMP(3)",
        "Json": "JSONB",
    },
}


@dataclass
class Catalog:
    columns: dict[
        str, dict[str, tuple[str, bool, str | None]]
    ]  # table -> col -> (type, null, default)
    primary_keys: dict[str, list[str]]
    indexes: dict[str, set[tuple[str, bool, tuple[str, ...]]]]  # table -> (name, unique, cols)
    foreign_keys: dict[str, set[tuple[str, tuple[str, ...], str, tuple[str, ...], str, str]]]


def expected_catalog(provider: str) -> Catalog:
    schema = schema_for(provider)
    models = dict(re.findall(r"model (\w+) \{(.*?)\n\}", schema, re.S))
    catalog = Catalog({}, {}, {}, {})
    for model, body in models.items():
        columns: dict[str, tuple[str, bool, str | None]] = {}
        indexes: set[tuple[str, bool, tuple[str, ...]]] = set()
        fks: set[tuple[str, tuple[str, ...], str, tuple[str, ...], str, str]] = set()
        for line in body.strip().splitlines():
            line = line.strip()
            if block := re.match(r"@@(index|unique)\(\[([\w, ]+)\]\)", line):
                cols = tuple(c.strip() for c in block.group(2).split(","))
                suffix = "idx" if block.group(1) == "index" else "key"
                indexes.add((f"{model}_{'_'.join(cols)}_{suffix}", suffix == "key", cols))
                continue
            field = re.match(r"(\w+)\s+(\w+)(\?|\[\])?\s*(.*)", line)
            if field is None:
                continue
            name, type_, modifier, attrs = field.groups()
            if type_ in models:
                if relation := re.search(r"fields: \[(\w+)\], references: \[(\w+)\]", attrs):
                    on_delete = re.search(r"onDelete: (\w+)", attrs)
                    assert on_delete is not None
                    fks.add(
                        (
                            f"{model}_{relation.group(1)}_fkey",
                            (relation.group(1),),
                            type_,
                            (relation.group(2),),
                            on_delete.group(1).upper(),
                            "CASCADE",  # Prisma's default onUpdate for required/optional
                        )
                    )
                continue
            if modifier == "[]":
                continue
            default = "CURRENT_TIMESTAMP" if "@default(now())" in attrs else None
            columns[name] = (SQL_TYPES[provider][type_], modifier == "?", default)
            if "@id" in attrs:
                catalog.primary_keys[model] = [name]
            if "@unique" in attrs:
                indexes.add((f"{model}_{name}_key", True, (name,)))
        catalog.columns[model] = columns
        catalog.indexes[model] = indexes
        catalog.foreign_keys[model] = fks
    return catalog


def _type_name(column_type: Any) -> str:
    name = str(column_type.compile()) if hasattr(column_type, "compile") else str(column_type)
    if name.startswith("TIMESTAMP"):
        precision = getattr(column_type, "precision", None)
        tz = " WITH TIME ZONE" if getattr(column_type, "timezone", False) else ""
        return f"TIMESTAMP({precision}){tz}" if precision is not None else f"TIMESTAMP{tz}"
    return name


def _default(value: str | None) -> str | None:
    return None if value is None else value.strip("()").upper()


def read_catalog(sync: Connection, tables: list[str]) -> Catalog:
    inspector = inspect(sync)
    catalog = Catalog({}, {}, {}, {})
    for table in tables:
        catalog.columns[table] = {
            c["name"]: (_type_name(c["type"]), bool(c["nullable"]), _default(c.get("default")))
            for c in inspector.get_columns(table)
        }
        catalog.primary_keys[table] = inspector.get_pk_constraint(table)["constrained_columns"]
        catalog.indexes[table] = {
            (str(i["name"]), bool(i["unique"]), tuple(str(c) for c in i["column_names"]))
            for i in inspector.get_indexes(table)
        }
        catalog.foreign_keys[table] = {
            (
                str(fk["name"]),
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                tuple(fk["referred_columns"]),
                fk["options"].get("ondelete", "NO ACTION").upper(),
                fk["options"].get("onupdate", "NO ACTION").upper(),
            )
            for fk in inspector.get_foreign_keys(table)
        }
    return catalog


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


# --- tests ------------------------------------------------------------------------------


def test_each_provider_ships_one_init_migration_in_prisma_layout() -> None:
    for provider in ("sqlite", "postgresql"):
        lock = (MIGRATIONS_ROOT / provider / "migration_lock.toml").read_text()
        assert re.search(rf'^provider = "{provider}"$', lock, re.M)
        migrations = load_migrations(provider)
        assert [re.fullmatch(r"\d{14}_init", m.name) is not None for m in migrations] == [True]
        script = migrations[0].script.decode()
        # What `prisma migrate dev` writes: step markers, one trailing newline, no header.
        assert script.startswith("-- CreateTable\n")
        assert script.endswith(";\n") and not script.endswith(";\n\n")
        # Prisma 5.17 (pinned by prisma-client-py) emits no CreateSchema step.
        assert "CREATE SCHEMA" not in script


async def test_migrate_creates_the_schema_of_schema_prisma(db: Db) -> None:
    result = await migrate(db.engine)
    assert result.applied == [m.name for m in load_migrations(db.provider)]
    assert result.adopted == [] and result.upgraded == [] and result.absent == []
    expected = expected_catalog(db.provider)
    tables = sorted(expected.columns)
    assert await table_names(db.engine) == {*tables, "_prisma_migrations"}
    async with db.engine.connect() as conn:
        actual = await conn.run_sync(read_catalog, tables)
    assert actual.columns == expected.columns
    assert actual.primary_keys == expected.primary_keys
    assert actual.indexes == expected.indexes
    assert actual.foreign_keys == expected.foreign_keys


async def test_bookkeeping_matches_prisma_migrate(db: Db) -> None:
    await migrate(db.engine)
    migration = load_migrations(db.provider)[0]
    [record] = await applied_migrations(db.engine)
    assert record.migration_name == migration.name
    assert record.checksum == hashlib.sha256(migration.path.read_bytes()).hexdigest()
    assert record.applied_steps_count == 1
    assert record.logs is None and record.rolled_back_at is None
    assert record.finished_at is not None and record.finished_at >= record.started_at
    async with db.engine.connect() as conn:
        raw = (
            await conn.execute(text("SELECT id, started_at, finished_at FROM _prisma_migrations"))
        ).one()
        columns = await conn.run_sync(
            lambda sync: {
                c["name"]: _type_name(c["type"])
                for c in inspect(sync).get_columns("_prisma_migrations")
            }
        )
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", raw.id)
    if db.provider == "sqlite":
        # Prisma's native SQLite engine stores DateTime as epoch milliseconds.
        assert isinstance(raw.started_at, int) and isinstance(raw.finished_at, int)
        assert columns["started_at"] == "DATETIME"
        async with db.engine.connect() as conn:
            ddl = (
                await conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = '_prisma_migrations'"
                )
            ).scalar_one()
        assert '"applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0' in ddl
    else:
        assert columns["started_at"].endswith("WITH TIME ZONE")
        assert columns["id"] == "VARCHAR(36)" and columns["checksum"] == "VARCHAR(64)"


async def test_rerun_is_a_no_op(db: Db) -> None:
    first = await migrate(db.engine)
    before = await applied_migrations(db.engine)
    again = await migrate(db.engine)
    assert again.applied == [] and again.adopted == [] and again.lines() == ["already up to date"]
    assert first.applied and await applied_migrations(db.engine) == before


async def test_tampered_applied_migration_is_reported_not_reapplied(db: Db, tmp_path: Path) -> None:
    root = copy_migrations(tmp_path)
    await migrate(db.engine, root=root)
    migration = load_migrations(db.provider, root)[0]
    migration.path.write_bytes(migration.script + b'\nDROP TABLE "LlmRequest";\n')
    with pytest.raises(MigrationChecksumError, match=migration.name) as info:
        await migrate(db.engine, root=root)
    assert info.value.current != info.value.recorded
    assert "LlmRequest" in await table_names(db.engine)


async def test_line_ending_conversion_is_not_tampering(db: Db, tmp_path: Path) -> None:
    root = copy_migrations(tmp_path)
    await migrate(db.engine, root=root)
    migration = load_migrations(db.provider, root)[0]
    migration.path.write_bytes(migration.script.replace(b"\n", b"\r\n"))
    assert (await migrate(db.engine, root=root)).applied == []


async def test_failed_migration_leaves_no_schema_and_no_row_behind(db: Db, tmp_path: Path) -> None:
    root = copy_migrations(tmp_path)
    await migrate(db.engine, root=root)
    before = await applied_migrations(db.engine)
    broken = root / db.provider / "20991231000000_broken"
    broken.mkdir()
    (broken / "migration.sql").write_text(
        '-- CreateTable\nCREATE TABLE "Half" ("id" TEXT NOT NULL);\n'
        '-- AlterTable\nALTER TABLE "NoSuchTable" ADD COLUMN "x" TEXT;\n'
    )
    with pytest.raises(MigrationFailedError, match="NoSuchTable"):
        await migrate(db.engine, root=root)
    # One transaction, rolled back: no half-applied schema, and no failed row that would
    # block this runner and Prisma's until someone resolves it by hand.
    assert "Half" not in await table_names(db.engine)
    assert await applied_migrations(db.engine) == before

    (broken / "migration.sql").write_text('-- CreateTable\nCREATE TABLE "Half" ("id" TEXT);\n')
    assert (await migrate(db.engine, root=root)).applied == ["20991231000000_broken"]
    assert "Half" in await table_names(db.engine)


def _now_for(db: Db) -> Any:
    return 0 if db.provider == "sqlite" else datetime.now(UTC)


async def test_failed_row_left_by_prisma_blocks_until_resolved(db: Db) -> None:
    await migrate(db.engine)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at, "
                "applied_steps_count) VALUES ('x', 'c', '20991231000000_theirs', 'boom', :now, 0)"
            ),
            {"now": _now_for(db)},
        )
    with pytest.raises(MigrationFailedError, match="earlier run"):
        await migrate(db.engine)
    await mark_rolled_back(db.engine, "20991231000000_theirs")
    assert (await migrate(db.engine)).applied == []


async def run_script(db: Db, script: str) -> None:
    """Run DDL as Prisma would (`prisma db push`, `migrate dev`, the JS package's SQL)."""
    async with db.engine.begin() as conn:
        for statement in split_sqlite_script(script):
            if "CREATE SCHEMA" not in statement:
                await conn.exec_driver_sql(statement)


def prisma_ddl(provider: str) -> str:
    """What `prisma db push` / `prisma migrate dev` run for the reference models: Prisma
    Migrate's own output, which the shipped init migration is."""
    return load_migrations(provider)[0].script.decode()


def schema_0_4_ddl(provider: str) -> str:
    """@node-llm/orm 0.4.0's schema.prisma as DDL: the reference models without
    LlmAgentSession and without LlmRequest.correctionRounds (the only differences between the
    0.4.0 and 0.8.0 schema.prisma files of the npm tarballs)."""
    kept = []
    for statement in split_sqlite_script(prisma_ddl(provider)):
        if '"LlmAgentSession"' in statement:
            continue
        lines = [ln for ln in statement.splitlines() if '"correctionRounds"' not in ln]
        kept.append("\n".join(lines))
    return "\n".join(kept) + "\n"


async def test_tables_made_by_db_push_are_adopted_without_ddl_or_bookkeeping(db: Db) -> None:
    await run_script(db, prisma_ddl(db.provider))
    result = await migrate(db.engine)
    assert result.applied == [] and result.upgraded == []
    assert sorted(result.adopted) == sorted(expected_catalog(db.provider).columns)
    assert "adopted existing tables" in "\n".join(result.lines())
    # No `_prisma_migrations` invented for a database Prisma Migrate does not manage.
    assert "_prisma_migrations" not in await table_names(db.engine)
    assert (await migrate(db.engine)).adopted == result.adopted


async def test_history_of_prisma_migrate_dev_under_another_name_is_left_alone(db: Db) -> None:
    # What `prisma migrate dev --name init` leaves: the tables and its own history row.
    await run_script(db, prisma_ddl(db.provider))
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(runner._CREATE_TABLE[db.provider])
        await conn.execute(
            text(
                "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
                "finished_at, applied_steps_count) "
                "VALUES ('p', 'c', '20250101120000_init', :now, :now, 1)"
            ),
            {"now": _now_for(db)},
        )
    before = await applied_migrations(db.engine)
    for _ in range(2):
        result = await migrate(db.engine)
        assert result.applied == [] and result.adopted
    assert await applied_migrations(db.engine) == before


async def test_partial_match_is_reported_table_by_table_and_nothing_is_written(db: Db) -> None:
    statements = [
        s.replace('    "thinkingTokens" INTEGER,\n', "")
        for s in split_sqlite_script(prisma_ddl(db.provider))
        if "LlmMessage_createdAt_idx" not in s and '"LlmRequest"' not in s.split("(")[0]
    ]
    statements = [
        s for s in statements if not s.startswith('-- AddForeignKey\nALTER TABLE "LlmRequest"')
    ]
    await run_script(db, "\n".join(statements))
    with pytest.raises(SchemaMismatchError) as info:
        await migrate(db.engine)
    message = str(info.value)
    assert "LlmMessage (message): missing column 'thinkingTokens'; missing index " in message
    assert "LlmMessage_createdAt_idx on ['createdAt']" in message
    assert "LlmChat (chat): matches" in message
    assert "LlmRequest (request): absent" in message
    assert "_prisma_migrations" not in await table_names(db.engine)


async def test_foreign_key_without_cascade_is_a_mismatch(db: Db) -> None:
    script = prisma_ddl(db.provider).replace("ON DELETE CASCADE", "ON DELETE RESTRICT")
    await run_script(db, script)
    with pytest.raises(SchemaMismatchError, match="missing foreign key LlmMessage_chatId_fkey"):
        await migrate(db.engine)


async def test_database_at_the_0_4_schema_is_upgraded(db: Db) -> None:
    await run_script(db, schema_0_4_ddl(db.provider))
    async with db.engine.begin() as conn:
        await conn.execute(
            text("""INSERT INTO "LlmChat" (id, "createdAt", "updatedAt") VALUES ('c1', :t, :t)"""),
            {"t": 0 if db.provider == "sqlite" else datetime(2025, 1, 1)},
        )
    result = await migrate(db.engine)
    [upgraded] = result.upgraded
    assert upgraded.startswith("20251201000000_upgrade_from_node_llm_orm_0_4 (from the @node-llm")
    assert result.lines()[0].startswith("upgraded: ")
    expected = expected_catalog(db.provider)
    async with db.engine.connect() as conn:
        actual = await conn.run_sync(read_catalog, sorted(expected.columns))
        kept = (await conn.exec_driver_sql('SELECT id FROM "LlmChat"')).scalars().all()
    assert actual.columns == expected.columns
    assert actual.indexes == expected.indexes
    assert actual.foreign_keys == expected.foreign_keys
    assert kept == ["c1"]
    again = await migrate(db.engine)
    assert again.upgraded == [] and again.applied == []


async def test_upgrade_is_recorded_in_an_existing_prisma_history(db: Db) -> None:
    await run_script(db, schema_0_4_ddl(db.provider))
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(runner._CREATE_TABLE[db.provider])
    await migrate(db.engine)
    [record] = await applied_migrations(db.engine)
    assert record.migration_name == "20251201000000_upgrade_from_node_llm_orm_0_4"
    assert record.applied and record.applied_steps_count == 1


async def test_minimal_schema_is_adopted_and_the_absent_tables_reported(db: Db) -> None:
    optional = ('"LlmToolCall"', '"LlmRequest"', '"LlmAgentSession"')
    kept = [
        s for s in split_sqlite_script(prisma_ddl(db.provider)) if not any(t in s for t in optional)
    ]
    await run_script(db, "\n".join(kept))
    result = await migrate(db.engine)
    assert sorted(result.adopted) == ["LlmChat", "LlmMessage"]
    assert result.absent == ["LlmToolCall", "LlmRequest", "LlmAgentSession"]
    assert await table_names(db.engine) == {"LlmChat", "LlmMessage"}


CUSTOM = {
    "chat": "AssistantChat",
    "message": "AssistantMessage",
    "tool_call": "AssistantToolCall",
    "request": "AssistantRequest",
    "agent_session": "AssistantAgentSession",
}


async def test_custom_table_names_get_the_renamed_ddl(db: Db) -> None:
    result = await migrate(db.engine, table_names=CUSTOM)
    assert result.applied == [m.name for m in load_migrations(db.provider)]
    assert await table_names(db.engine) == {*CUSTOM.values(), "_prisma_migrations"}
    async with db.engine.connect() as conn:
        indexes = await conn.run_sync(
            lambda s: {i["name"] for i in inspect(s).get_indexes("AssistantMessage")}
        )
        fks = await conn.run_sync(lambda s: inspect(s).get_foreign_keys("AssistantMessage"))
    assert indexes == {"AssistantMessage_chatId_idx", "AssistantMessage_createdAt_idx"}
    assert [(f["referred_table"], f["options"].get("ondelete")) for f in fks] == [
        ("AssistantChat", "CASCADE")
    ]
    assert (await migrate(db.engine, table_names=CUSTOM)).lines() == ["already up to date"]
    # The default names in the same database are another set of tables, one history row.
    second = await migrate(db.engine)
    assert second.applied == [m.name for m in load_migrations(db.provider)]
    assert len(await applied_migrations(db.engine)) == 1


def test_renaming_touches_quoted_identifiers_only() -> None:
    script = (
        'CREATE TABLE "LlmChat" ("id" TEXT, "note" TEXT DEFAULT \'"LlmChat" stays\');\n'
        '-- "LlmChat" in a comment stays\n'
        'CREATE INDEX "LlmChatter_idx" ON "LlmMessage"("chatId");\n'
        'ALTER TABLE "LlmMessage" ADD CONSTRAINT "LlmMessage_chatId_fkey" '
        'FOREIGN KEY ("chatId") REFERENCES "LlmChat"("id");\n'
    )
    out = rename_identifiers(script, {"LlmChat": 'My"Chat', "LlmMessage": "Msg"})
    assert out == (
        'CREATE TABLE "My""Chat" ("id" TEXT, "note" TEXT DEFAULT \'"LlmChat" stays\');\n'
        '-- "LlmChat" in a comment stays\n'
        'CREATE INDEX "LlmChatter_idx" ON "Msg"("chatId");\n'
        'ALTER TABLE "Msg" ADD CONSTRAINT "Msg_chatId_fkey" '
        'FOREIGN KEY ("chatId") REFERENCES "My""Chat"("id");\n'
    )


async def test_bad_table_names_are_refused_before_anything_is_written(db: Db) -> None:
    with pytest.raises(MigrationError, match="unknown table_names key 'chats'"):
        await migrate(db.engine, table_names={"chats": "X"})
    with pytest.raises(MigrationError, match="five different tables"):
        await migrate(db.engine, table_names={"chat": "LlmMessage"})
    assert await table_names(db.engine) == set()


async def test_migrate_url_accepts_prisma_style_sqlite_urls(tmp_path: Path) -> None:
    path = tmp_path / "dev.db"
    assert (await migrate_url(f"file:{path}")).applied == [load_migrations("sqlite")[0].name]
    assert (await migrate_url(f"sqlite:///{path}")).applied == []


async def test_concurrent_runners_apply_once(tmp_path: Path) -> None:
    url = "sqlite+aiosqlite:///" + str(tmp_path / "race.db")
    engines = [create_async_engine(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(e) for e in engines))
        assert sorted(len(r.applied) for r in results) == [0, 0, 1]
        assert len(await applied_migrations(engines[0])) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_migrate_url_honours_prisma_schema_parameter() -> None:
    url = await create_database(postgres_server(), prefix="mig")
    prisma_style = url.replace("postgresql+asyncpg://", "postgresql://") + "?schema=llm"
    assert (await migrate_url(prisma_style)).applied == [load_migrations("postgresql")[0].name]
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda s: inspect(s).get_table_names(schema="llm"))
            public = await conn.run_sync(lambda s: inspect(s).get_table_names())
    finally:
        await engine.dispose()
    assert {"LlmChat", "_prisma_migrations"} <= set(tables)
    assert public == []


def test_async_url_forms() -> None:
    assert async_url("file:./dev.db") == "sqlite+aiosqlite:///./dev.db"
    assert async_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert (
        async_url("postgresql://u:p@h:5432/db?schema=public")
        == "postgresql+asyncpg://u:p@h:5432/db"
    )
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


def test_sqlite_splitter_keeps_semicolons_inside_strings_and_triggers() -> None:
    script = (
        "-- CreateTable\n"
        'CREATE TABLE "t" ("a" TEXT DEFAULT \'x;y\');\n'
        "\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET a = 'z;'; \n"
        "END;\n"
        "-- trailing comment\n"
    )
    statements = split_sqlite_script(script)
    assert len(statements) == 2
    assert statements[0].endswith("DEFAULT 'x;y');")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
