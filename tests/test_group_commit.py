"""Group commit on SQLite (connection.Pool): operations of many chats arriving together share
one transaction and one commit, yet each caller's await returns only once its own writes are
committed, in arrival order, one caller's failure or cancellation touching no other's."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from nodellm_orm import connect, create_chat, create_llm
from nodellm_orm.orm.ids import new_id, utc_now
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.support.locks import write_lock_held


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await connect(f"sqlite:///{tmp_path / 'group.db'}")
    try:
        yield s
    finally:
        await s.close()


def committed(path: Path, sql: str, *args: Any) -> list[Any]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as other:
        return other.execute(sql, args).fetchall()


async def trace(store: SqlStore) -> list[str]:
    """Every statement the store's connection runs from now on, transaction control included."""
    seen: list[str] = []
    pool = store._s.pool
    lease = await pool.acquire()
    try:
        raw = lease._raw  # type: ignore[attr-defined]
        await lease._driver._execute(raw.set_trace_callback, seen.append)  # type: ignore[attr-defined]
    finally:
        pool.release(lease)
    return seen


async def new_chat(store: SqlStore) -> Any:
    chat = await create_chat(store, create_llm(provider=FakeProvider()))
    return await store.get_chat(chat.id)


def message(chat_id: str, content: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id or new_id(),
        "chatId": chat_id,
        "role": "user",
        "content": content,
        "createdAt": utc_now(),
    }


async def test_turns_of_many_chats_at_once_share_commits_and_each_is_committed_on_return(
    store: SqlStore, tmp_path: Path
) -> None:
    llm = create_llm(provider=FakeProvider())
    chats = [await create_chat(store, llm) for _ in range(10)]
    seen = await trace(store)
    path = tmp_path / "group.db"
    missing: list[str] = []

    async def turn(chat: Any, i: int) -> None:
        await chat.ask(f"question {i}")
        # Returned: the question and its answer are on disk for any other connection.
        rows = committed(path, 'SELECT content FROM "LlmMessage" WHERE "chatId" = ?', chat.id)
        if {f"question {i}", f"(fake) You said: question {i}"} - {r[0] for r in rows}:
            missing.append(f"{chat.id} turn {i}")

    async def converse(chat: Any) -> None:
        for i in range(3):
            await turn(chat, i)

    await asyncio.gather(*(converse(c) for c in chats))
    assert missing == []
    commits = sum(1 for sql in seen if sql.strip().upper().startswith("COMMIT"))
    # 10 chats x 3 turns x 2 writes, alone 60 commits; together far fewer.
    assert 0 < commits < 30
    for chat in chats:
        assert [m.content for m in await chat.messages()][-2:] == [
            "question 2",
            "(fake) You said: question 2",
        ]


async def test_operations_queued_together_run_in_arrival_order(store: SqlStore) -> None:
    chat = await new_chat(store)
    seen = await trace(store)
    await asyncio.gather(*(store.update_chat(chat.id, {"model": f"m{i}"}) for i in range(8)))
    # The first ran at once, the seven arriving meanwhile as one group: two commits for the
    # eight, the last to arrive the last applied.
    assert sum(1 for sql in seen if sql.strip().upper().startswith("COMMIT")) == 2
    got = await store.get_chat(chat.id)
    assert got is not None and got.model == "m7"


async def test_one_operations_failure_fails_it_alone(store: SqlStore, tmp_path: Path) -> None:
    chat = await new_chat(store)
    taken = message(chat.id, "first")
    await store.insert_messages([taken])
    # Two rows, the second reusing an id: the operation fails as a whole, its first row too.
    bad = [message(chat.id, "never"), message(chat.id, "dup", taken["id"])]
    results = await asyncio.gather(
        store.insert_messages([message(chat.id, "a")]),
        store.insert_messages(bad),
        store.insert_messages([message(chat.id, "b")]),
        store.update_chat(chat.id, {"model": "after"}),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], sa_exc.IntegrityError)
    rows = committed(tmp_path / "group.db", 'SELECT content FROM "LlmMessage" ORDER BY content')
    assert [r[0] for r in rows] == ["a", "b", "first"]
    assert committed(tmp_path / "group.db", 'SELECT model FROM "LlmChat"') == [("after",)]


async def test_a_caller_cancelled_while_queued_writes_nothing(
    store: SqlStore, tmp_path: Path
) -> None:
    chat = await new_chat(store)
    calls = [
        asyncio.ensure_future(store.insert_messages([message(chat.id, name)]))
        for name in ("a", "cancelled", "c")
    ]
    await asyncio.sleep(0)  # each has queued its operation; the group has not run yet
    calls[1].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncio.CancelledError)
    rows = committed(tmp_path / "group.db", 'SELECT content FROM "LlmMessage" ORDER BY content')
    assert [r[0] for r in rows] == ["a", "c"]
    # The store goes on: the next operations run and commit.
    await store.insert_messages([message(chat.id, "d")])
    assert len(await store.list_messages(chat.id)) == 3


async def test_a_group_waits_for_another_processs_write_lock_and_commits(
    store: SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "group.db"
    chat = await new_chat(store)
    async with write_lock_held(path) as release:
        calls = asyncio.gather(
            *(store.insert_messages([message(chat.id, f"m{i}")]) for i in range(5))
        )
        for _ in range(5):
            await asyncio.sleep(0.01)  # the loop keeps running while the group waits
        assert not calls.done()
        release.set()
        assert await calls == [None] * 5
    rows = committed(path, 'SELECT content FROM "LlmMessage" ORDER BY content')
    assert [r[0] for r in rows] == [f"m{i}" for i in range(5)]


async def test_operations_after_close_are_refused(store: SqlStore) -> None:
    chat = await new_chat(store)
    pending = asyncio.ensure_future(store.insert_messages([message(chat.id, "x")]))
    await store.close()
    # Queued before close: it ran or was refused, never left hanging.
    await asyncio.wait_for(asyncio.gather(pending, return_exceptions=True), 10)
    with pytest.raises(Exception, match="closed"):
        await store.insert_messages([message(chat.id, "y")])
