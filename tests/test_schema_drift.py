"""Schema drift (issue 11 point 6), on SQLite files and PostgreSQL: a database whose tables lack
a column the library writes, or hold one of an unusable type, fails when a store binds (the
first create_chat / load_chat), with one error naming table, column and migration state, and
nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from nodellm_orm import LLM, SchemaDriftError, connect, create_agent_session, create_chat, load_chat
from nodellm_orm.migrations.runner import SchemaMismatchError
from nodellm_orm.stores.urls import async_url
from nodellm_orm.testing import FakeProvider
from tests.conftest import BACKENDS, DEFAULT_TABLES, SqlBackend, renamed_ddl, run_sql, sql_dialects

NEWER = "20260301000000_rename_message_content"


@pytest.fixture(params=sql_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _rows(url: str) -> dict[str, int]:
    store = await connect(url, migrate=False)
    try:
        counts = {}
        for table in DEFAULT_TABLES.values():
            (rows,) = await run_sql(store, f'SELECT count(*) FROM "{table}"')
            counts[table] = int(rows[0][0])
        return counts
    finally:
        await store.close()


@pytest.fixture
async def newer(dialect: str, tmp_path: Path) -> str:
    """A database migrated by a newer release: its migration (not shipped here) renamed
    LlmMessage.content to body and is recorded in _prisma_migrations, as Prisma records it."""
    url = await SqlBackend(dialect).url(tmp_path)
    store = await connect(url)
    started = "1772323200000" if dialect == "sqlite" else "now()"
    try:
        await run_sql(
            store,
            'ALTER TABLE "LlmMessage" RENAME COLUMN "content" TO "body"',
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
            f"finished_at, applied_steps_count) VALUES ('m2', 'abc', '{NEWER}', {started}, "
            f"{started}, 1)",
        )
    finally:
        await store.close()
    return url


def _assert_names_the_drift(error: BaseException) -> None:
    text = str(error)
    assert "table 'LlmMessage': column 'content' does not exist" in text
    assert f"{NEWER} (applied, not shipped by this nodellm-orm)" in text
    assert "20251127000000_init (applied)" in text
    assert "made by a newer nodellm-orm" in text


async def test_a_renamed_column_fails_at_bind_naming_table_column_and_migrations(
    newer: str, llm: LLM
) -> None:
    store = await connect(newer, migrate=False)
    try:
        with pytest.raises(SchemaDriftError) as created:
            await create_chat(store, llm)
        _assert_names_the_drift(created.value)
        assert "nothing was written" in str(created.value)
        with pytest.raises(SchemaDriftError):
            await load_chat(store, llm, "any-id")
    finally:
        await store.close()
    assert set((await _rows(newer)).values()) == {0}


async def test_the_check_runs_on_a_users_engine_too(newer: str, llm: LLM) -> None:
    engine = create_async_engine(async_url(newer))
    try:
        with pytest.raises(SchemaDriftError) as info:
            await create_chat(engine, llm)
        _assert_names_the_drift(info.value)
    finally:
        await engine.dispose()
    assert set((await _rows(newer)).values()) == {0}


async def test_migrating_such_a_database_names_the_unknown_migration(newer: str) -> None:
    with pytest.raises(SchemaMismatchError) as info:
        await connect(newer)
    text = str(info.value)
    assert "LlmMessage (message): missing column 'content'" in text
    assert f"{NEWER} (applied, not shipped by this nodellm-orm)" in text


async def test_a_column_of_an_unusable_type_fails_at_bind(
    dialect: str, tmp_path: Path, llm: LLM
) -> None:
    # Tables made by hand (no migration history) with the request cost declared as text.
    url = await SqlBackend(dialect).url(tmp_path)
    store = await connect(url, migrate=False)
    try:
        ddl = [
            s.replace('"cost" REAL', '"cost" TEXT').replace(
                '"cost" DOUBLE PRECISION', '"cost" TEXT'
            )
            for s in renamed_ddl(dialect, DEFAULT_TABLES)
        ]
        await run_sql(store, *ddl)
        with pytest.raises(SchemaDriftError) as info:
            await create_chat(store, llm)
        text = str(info.value)
        assert "table 'LlmRequest': column 'cost' is TEXT" in text or (
            "table 'LlmRequest': column 'cost' is text" in text
        )
        assert "does not hold the float values nodellm-orm writes" in text
        assert "no _prisma_migrations table" in text
        assert "LlmMessage" not in text  # only what differs is named
    finally:
        await store.close()
    assert set((await _rows(url)).values()) == {0}


async def test_an_agent_session_table_missing_a_column_fails_before_the_chat_row(
    dialect: str, tmp_path: Path, llm: LLM
) -> None:
    url = await SqlBackend(dialect).url(tmp_path)
    store = await connect(url)
    try:
        await run_sql(
            store, 'ALTER TABLE "LlmAgentSession" RENAME COLUMN "agentClass" TO "agentType"'
        )
        fresh = await connect(url, migrate=False)
        try:
            from tests.test_transfer import Helper

            with pytest.raises(SchemaDriftError, match="'LlmAgentSession': column 'agentClass'"):
                await create_agent_session(fresh, llm, Helper)
        finally:
            await fresh.close()
    finally:
        await store.close()
    assert set((await _rows(url)).values()) == {0}


async def test_postgresql_names_a_column_differing_in_case_only(tmp_path: Path, llm: LLM) -> None:
    url = await SqlBackend("postgresql").url(tmp_path)
    store = await connect(url)
    try:
        await run_sql(store, 'ALTER TABLE "LlmToolCall" RENAME COLUMN "createdAt" TO createdat')
        fresh = await connect(url, migrate=False)
        try:
            with pytest.raises(SchemaDriftError) as info:
                await create_chat(fresh, llm)
        finally:
            await fresh.close()
        text = str(info.value)
        assert "table 'LlmToolCall': column 'createdAt' does not exist" in text
        assert "'createdat' differs from 'createdAt' only in letter case" in text
    finally:
        await store.close()


async def test_usable_variants_of_the_types_bind_and_work(
    dialect: str, tmp_path: Path, llm: LLM, fake: FakeProvider
) -> None:
    # Wider or equivalent types the store's values fit (VARCHAR text, BIGINT counts; on SQLite
    # any declared type of the same affinity): not drift.
    url = await SqlBackend(dialect).url(tmp_path)
    store = await connect(url, migrate=False)
    try:
        ddl = [
            s.replace('"provider" TEXT NOT NULL', '"provider" VARCHAR(64) NOT NULL').replace(
                '"inputTokens" INTEGER NOT NULL', '"inputTokens" BIGINT NOT NULL'
            )
            for s in renamed_ddl(dialect, DEFAULT_TABLES)
        ]
        await run_sql(store, *ddl)
        chat = await create_chat(store, llm)
        fake.reply("Hi.")
        await chat.ask("Hello")
    finally:
        await store.close()
    assert (await _rows(url))["LlmRequest"] == 1


@pytest.mark.parametrize("backend_name", ["prisma-sqlite", "prisma-postgresql"])
async def test_a_prisma_client_over_a_newer_database_fails_at_bind(
    backend_name: str, tmp_path: Path, llm: LLM
) -> None:
    # The client was generated from the shipped schema; the database moved on since.
    backend = BACKENDS[backend_name]
    database = await backend.open(tmp_path, tables=None, chat_columns=())
    try:
        client = database.db
        started = "1772323200000" if database.dialect == "sqlite" else "now()"
        await client.execute_raw('ALTER TABLE "LlmMessage" RENAME COLUMN "content" TO "body"')
        await client.execute_raw(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, "
            f"finished_at, applied_steps_count) VALUES ('m2', 'abc', '{NEWER}', {started}, "
            f"{started}, 1)"
        )
        with pytest.raises(SchemaDriftError) as info:
            await create_chat(client, llm)
        _assert_names_the_drift(info.value)
        rows = await client.query_raw('SELECT count(*) AS n FROM "LlmChat"')
        assert int(rows[0]["n"]) == 0
    finally:
        await backend.close(database)
