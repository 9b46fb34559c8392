"""Table and column names are looked up exactly (issue 11 point 4), on SQLite files and
PostgreSQL: the table asked for is the one used, and a name differing only in letter case (a
near miss) is reported with the names there are, never picked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nodellm_orm import LLM, StoreError, connect, create_chat, load_chat
from nodellm_orm.migrations.runner import MigrationError
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import DEFAULT_TABLES, SqlBackend, renamed_ddl, run_sql, sql_dialects

LOWER = {k: v.lower() for k, v in DEFAULT_TABLES.items()}


@pytest.fixture(params=sql_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _empty(dialect: str, tmp_path: Path) -> str:
    return await SqlBackend(dialect).url(tmp_path)


async def _count(store: SqlStore, table: str) -> int:
    (rows,) = await run_sql(store, f'SELECT count(*) FROM "{table}"')
    return int(rows[0][0])


@pytest.fixture
async def lowercase_only(dialect: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A database whose five tables are the shipped ones under lower-case names only."""
    store = await connect(await _empty(dialect, tmp_path), migrate=False)
    try:
        await run_sql(store, *renamed_ddl(dialect, LOWER))
        yield store
    finally:
        await store.close()


async def test_a_table_differing_in_case_only_is_reported_never_used(
    lowercase_only: SqlStore, llm: LLM
) -> None:
    with pytest.raises(StoreError) as info:
        await create_chat(lowercase_only, llm)
    text = str(info.value)
    assert "'LlmChat' (for chat) does not exist" in text
    assert "'llmchat' differs from 'LlmChat' only in letter case" in text
    assert "available tables:" in text and "llmmessage" in text
    assert await _count(lowercase_only, "llmchat") == 0
    with pytest.raises(StoreError, match="'llmchat' differs from 'LlmChat'"):
        await load_chat(lowercase_only, llm, "any-id")


async def test_the_near_miss_named_exactly_is_used(lowercase_only: SqlStore, llm: LLM) -> None:
    chat = await create_chat(lowercase_only, llm, table_names=dict(LOWER))
    await chat.ask("Hello")
    assert await _count(lowercase_only, "llmchat") == 1
    assert await _count(lowercase_only, "llmmessage") == 2


async def test_an_optional_table_differing_in_case_is_not_taken_for_absent(
    dialect: str, tmp_path: Path, llm: LLM
) -> None:
    # Chat and message tables as shipped, the tool-call table only under a near-miss name:
    # neither used nor silently treated as a minimal schema without tool calls.
    names = {**DEFAULT_TABLES, "tool_call": "llmToolcall"}
    store = await connect(await _empty(dialect, tmp_path), migrate=False)
    try:
        await run_sql(store, *renamed_ddl(dialect, names))
        with pytest.raises(StoreError) as info:
            await create_chat(store, llm)
        assert "'LlmToolCall' (for tool_call) does not exist" in str(info.value)
        assert "'llmToolcall' differs from 'LlmToolCall'" in str(info.value)
        assert await _count(store, "LlmChat") == 0
    finally:
        await store.close()


async def test_postgresql_uses_the_quoted_default_tables_beside_lower_case_ones(
    tmp_path: Path, llm: LLM, fake: FakeProvider
) -> None:
    # On PostgreSQL "LlmChat" and llmchat are two tables: the default names mean the first.
    store = await connect(await _empty("postgresql", tmp_path))
    try:
        await run_sql(store, *renamed_ddl("postgresql", LOWER))
        # A fresh store over the same database, after the lower-case tables appeared.
        fresh = await connect(await _url_of(store), migrate=False)
        try:
            chat = await create_chat(fresh, llm)
            fake.reply("Hi.")
            await chat.ask("Hello")
            loaded = await load_chat(fresh, llm, chat.id)
            assert loaded is not None
        finally:
            await fresh.close()
        assert await _count(store, "LlmChat") == 1
        assert await _count(store, "LlmMessage") == 2
        for table in LOWER.values():
            assert await _count(store, table) == 0, table
    finally:
        await store.close()


async def _url_of(store: SqlStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


async def test_a_column_differing_in_case_only_is_named_in_the_error(
    dialect: str, tmp_path: Path, llm: LLM
) -> None:
    store = await connect(await _empty(dialect, tmp_path))
    try:
        await run_sql(store, 'ALTER TABLE "LlmChat" ADD COLUMN "userid" TEXT')
        with pytest.raises(ValueError) as created:
            await create_chat(store, llm, userId="alice")
        assert "'userid' differs from 'userId' only in letter case" in str(created.value)
        with pytest.raises(StoreError) as scoped:
            await create_chat(store.scoped(userId="alice"), llm)
        assert "'userid' differs from 'userId' only in letter case" in str(scoped.value)
        assert await _count(store, "LlmChat") == 0
    finally:
        await store.close()


async def test_postgresql_writes_the_exact_column_beside_a_lower_case_one(
    tmp_path: Path, llm: LLM
) -> None:
    store = await connect(await _empty("postgresql", tmp_path))
    try:
        await run_sql(
            store,
            'ALTER TABLE "LlmChat" ADD COLUMN userid TEXT',
            'ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT',
        )
        await create_chat(store, llm, userId="alice")
        (rows,) = await run_sql(store, 'SELECT userid, "userId" FROM "LlmChat"')
        assert [tuple(r) for r in rows] == [(None, "alice")]
    finally:
        await store.close()


async def test_an_import_field_differing_in_case_only_is_named_in_the_error(
    dialect: str, tmp_path: Path
) -> None:
    import json

    from nodellm_orm.transfer import TransferError, import_chats

    store = await connect(await _empty(dialect, tmp_path))
    try:
        await run_sql(store, 'ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
        when = "2026-01-01T00:00:00Z"
        chat = {"id": "c1", "createdAt": when, "updatedAt": when, "userid": "alice"}
        lines = [
            json.dumps({"format": "nodellm-orm/chats", "version": 2}),
            json.dumps({"chat": chat}),
        ]
        with pytest.raises(TransferError) as info:
            await import_chats(store, lines)
        assert "unknown field(s) 'userid'" in str(info.value)
        assert "'userId' differs from 'userid' only in letter case" in str(info.value)
        assert await _count(store, "LlmChat") == 0
    finally:
        await store.close()


async def test_migrating_beside_tables_differing_in_case_only(
    lowercase_only: SqlStore, dialect: str, llm: LLM
) -> None:
    url = await _url_of(lowercase_only)
    if dialect == "sqlite":
        # SQLite takes llmchat for "LlmChat": adopting it would pick the near miss, so the
        # migration refuses, naming it, and writes nothing.
        with pytest.raises(MigrationError) as info:
            await connect(url)
        text = str(info.value)
        assert "'LlmChat' (for chat): 'llmchat' differs only in letter case" in text
        assert "'LlmMessage' (for message): 'llmmessage'" in text
        (rows,) = await run_sql(lowercase_only, "SELECT name FROM sqlite_master WHERE type='table'")
        assert sorted(r[0] for r in rows) == sorted(LOWER.values())
        return
    # PostgreSQL: the shipped tables are created beside the lower-case ones, which stay as
    # they were, and the default names use them.
    store = await connect(url)
    try:
        chat = await create_chat(store, llm)
        await chat.ask("Hello")
    finally:
        await store.close()
    assert await _count(lowercase_only, "LlmChat") == 1
    assert await _count(lowercase_only, "llmchat") == 0
