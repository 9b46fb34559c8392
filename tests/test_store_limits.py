"""The sql store's limits: memory that does not grow with history, statements within the driver's.

- A stateless handler (load_chat + ask per request) on one chat keeps RSS flat and the
  compiled-statement cache bounded, however long the history gets.
- Every statement binding one parameter per row is split to fit the driver: 100,000 messages
  in one insert_messages call work on PostgreSQL (asyncpg: 32,767 arguments) and on SQLite,
  including a connection whose variable limit is SQLite's old default of 999.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from nodellm_orm import TableNames, connect, create_chat, create_llm, load_chat
from nodellm_orm.migrations.runner import migrate
from nodellm_orm.orm.ids import new_id
from nodellm_orm.stores.base import Store
from nodellm_orm.stores.sql import STATEMENT_CACHE_SIZE, SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import postgres_server, sql_dialects
from tests.support.postgres import create_database, drop_database

DIALECTS = sql_dialects()


@contextlib.asynccontextmanager
async def database(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'limits.db'}"
        return
    url = await create_database(postgres_server(), prefix="limits")
    try:
        yield url
    finally:
        await drop_database(url)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


# --- bounded memory -------------------------------------------------------------------------


async def test_stateless_requests_on_one_chat_keep_memory_flat(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'memory.db'}")
    try:
        fake = FakeProvider()
        llm = create_llm(provider=fake)
        chat_id = (await create_chat(store, llm)).id

        async def request(i: int) -> None:
            chat = await load_chat(store, llm, chat_id)
            assert chat is not None
            await chat.ask(f"request {i}")
            fake.requests.clear()  # the fake keeps every request it saw for tests to read

        for i in range(150):  # warm up: the statement shapes a short history needs
            await request(i)
        before = rss_kb()
        for i in range(150, 600):
            await request(i)
        grown_mb = (rss_kb() - before) / 1024
        cache = store._s.compiled
        assert len(cache) <= STATEMENT_CACHE_SIZE
        # The history grew from 300 to 1,200 messages: reading its tool calls compiled one
        # IN list per power of two (1 ... 1,024), not one per history length.
        sizes = sorted(key[1][1] for key in cache.shapes() if key[1][0] == "list_tool_calls")
        assert sizes == [1 << i for i in range(len(sizes))] and len(sizes) <= 11, sizes
        # Before: one statement per history length, ~94 kB a request.
        assert grown_mb < 8, f"RSS grew by {grown_mb:.1f} MB over 450 requests"
    finally:
        await store.close()


async def test_statement_cache_is_a_bounded_lru(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'lru.db'}")
    try:
        bound = await store.bind(TableNames())
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        # Many distinct update shapes (one per set of columns) cannot outgrow the cache.
        columns = ["model", "provider", "instructions", "metadata"]
        for mask in range(1, 16):
            values = {c: "x" if c != "metadata" else {"k": 1} for i, c in enumerate(columns)}
            picked = {c: v for i, (c, v) in enumerate(values.items()) if mask >> i & 1}
            await bound.update_chat(chat.id, picked)
        assert len(store._s.compiled) <= STATEMENT_CACHE_SIZE
    finally:
        await store.close()


# --- statements within the driver's limits --------------------------------------------------


def _message_rows(chat_id: str, count: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        rows.append(
            {
                "id": f"m{i:07d}",
                "chatId": chat_id,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"message {i}",
                "createdAt": start + timedelta(milliseconds=i),
            }
        )
    return rows


async def _bulk_round_trip(store: Store, count: int) -> None:
    chat = await store.create_chat(
        {"id": new_id(), "createdAt": datetime.now(UTC), "updatedAt": datetime.now(UTC)}
    )
    rows = _message_rows(chat.id, count)
    await store.insert_messages(rows)
    assert await store.count_messages(chat.id) == count
    listed = await store.list_messages(chat.id)
    assert [m.id for m in listed] == [r["id"] for r in rows]

    assistants = [r["id"] for r in rows if r["role"] == "assistant"]
    now = datetime(2024, 6, 1, tzinfo=UTC)
    calls = [
        {
            "id": f"c{i:07d}",
            "messageId": mid,
            "toolCallId": f"call_{i}",
            "name": "echo",
            "arguments": "{}",
            "createdAt": now + timedelta(milliseconds=i),
        }
        for i, mid in enumerate(assistants)
    ]
    await store.create_tool_calls(calls)
    await store.set_tool_results([(c["id"], f"result {i}") for i, c in enumerate(calls)])
    found = await store.list_tool_calls([r["id"] for r in rows])  # every message id
    assert [c.id for c in found] == [c["id"] for c in calls]
    assert [c.result for c in found] == [f"result {i}" for i in range(len(calls))]

    requests = [
        {
            "id": f"r{i:07d}",
            "chatId": chat.id,
            "messageId": mid,
            "provider": "fake",
            "model": "fake-model",
            "statusCode": 200,
            "duration": 1,
            "inputTokens": 1,
            "outputTokens": 1,
            "createdAt": now,
        }
        for i, mid in enumerate(assistants)
    ]
    await store.create_requests(requests)
    assert (await store.usage(chat.id)).requests == len(assistants)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_hundred_thousand_rows_in_one_call(dialect: str, tmp_path: Path) -> None:
    async with database(dialect, tmp_path) as url:
        store = await connect(url)
        try:
            await _bulk_round_trip(await store.bind(TableNames()), 100_000)
        finally:
            await store.close()


async def test_sqlite_connection_with_the_old_default_variable_limit(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'small-limit.db'}")

    @event.listens_for(engine.sync_engine, "connect")
    def small_limit(dbapi_conn: Any, _record: Any) -> None:
        # What SQLite builds before 3.32 (and builds keeping that default) allow.
        dbapi_conn.driver_connection._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    try:
        await migrate(engine)
        store = SqlStore.from_engine(engine)
        bound = await store.bind(TableNames())
        await _bulk_round_trip(bound, 5_000)
        assert store._s.max_params == 999  # read from the connection
        await store.close()
    finally:
        await engine.dispose()


async def test_one_call_is_all_or_nothing(tmp_path: Path) -> None:
    async with database("postgresql", tmp_path) as url:
        store = await connect(url)
        try:
            bound = await store.bind(TableNames())
            chat = await bound.create_chat(
                {"id": new_id(), "createdAt": datetime.now(UTC), "updatedAt": datetime.now(UTC)}
            )
            rows = _message_rows(chat.id, 20_000)
            rows[-1]["chatId"] = "no such chat"  # the last chunk fails on its foreign key
            with pytest.raises(Exception, match=r"(?i)foreign key"):
                await bound.insert_messages(rows)
            assert await bound.count_messages(chat.id) == 0
        finally:
            await store.close()
