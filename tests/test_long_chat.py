"""A long chat's turn on SQLite costs what a short one does, and still notices every writer.

Each turn's begin_turn learns what others wrote from the chat's count of rows; on SQLite that
count is answered from the chat's WriteMark when the connection proves nothing else wrote
(its change counter moved only by the chat's own statements, and data_version shows no other
connection's commit). These tests count the work SQLite does (virtual-machine instructions,
through sqlite3's progress handler: no timing) and check that every kind of other writer
still reaches the chat's next request: another connection, another Chat object on the same
store, the store itself, a deletion from another process.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nodellm_orm import connect, create_chat, create_llm, load_chat
from nodellm_orm.testing import FakeProvider

# Every this many SQLite instructions the progress handler is called once.
_PERIOD = 10


async def _seed(store: Any, chat_id: str, messages: int) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {
            "id": f"m{i:06d}-{chat_id}",
            "chatId": chat_id,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"message {i}",
            "createdAt": at + timedelta(milliseconds=i),
        }
        for i in range(messages)
    ]
    for i in range(0, len(rows), 500):
        await store.insert_messages(rows[i : i + 500])


async def _instructions_per_turn(store: Any, chat: Any, turns: int) -> float:
    """SQLite instructions the chat's turns execute, per turn (on the store's connection)."""
    lease = await store._s.pool.acquire()
    calls = 0

    def tick() -> int:
        nonlocal calls
        calls += 1
        return 0  # go on

    raw = lease._raw
    try:
        await lease._driver._execute(raw.set_progress_handler, tick, _PERIOD)
    finally:
        store._s.pool.release(lease)
    try:
        for i in range(turns):
            await chat.ask(f"turn {i}")
    finally:
        await lease._driver._execute(raw.set_progress_handler, None, _PERIOD)
    return calls * _PERIOD / turns


async def test_a_turns_sqlite_work_does_not_grow_with_the_chat(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        llm = create_llm(provider=FakeProvider())
        short = await create_chat(store, llm)
        await _seed(store, short.id, 20)
        long = await create_chat(store, llm)
        await _seed(store, long.id, 5_000)
        work = {}
        for name, made in (("short", short), ("long", long)):
            chat = await load_chat(store, llm, made.id)
            assert chat is not None
            await chat.ask("the first turn counts the chat")
            work[name] = await _instructions_per_turn(store, chat, 5)
        # Counting 5,000 index entries alone is ~25,000 instructions; a turn's own
        # statements are a few hundred.
        assert work["short"] < 2_000
        assert work["long"] < work["short"] * 1.5, work
    finally:
        await store.close()


async def test_another_connections_turn_reaches_the_next_request(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    mine, theirs = await connect(url), await connect(url)
    try:
        fake = FakeProvider()
        chat = await create_chat(mine, create_llm(provider=fake))
        await chat.ask("one")
        await chat.ask("two")  # answered from the mark: nothing else wrote
        other = await load_chat(theirs, create_llm(provider=FakeProvider()), chat.id)
        assert other is not None
        await other.ask("from the other connection")
        await chat.ask("three")
        sent = [m.content for m in fake.requests[-1].messages]
        assert sent[-3:] == [
            "from the other connection",
            "(fake) You said: from the other connection",
            "three",
        ]
    finally:
        await mine.close()
        await theirs.close()


async def test_a_row_deleted_by_another_process_leaves_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = await connect(f"sqlite:///{path}")
    try:
        fake = FakeProvider()
        chat = await create_chat(store, create_llm(provider=fake))
        for text in ("keep", "drop", "again"):
            await chat.ask(text)
        with sqlite3.connect(path) as raw:
            deleted = raw.execute(
                'DELETE FROM "LlmMessage" WHERE "chatId" = ? AND content = ?', (chat.id, "drop")
            ).rowcount
        assert deleted == 1
        await chat.ask("noticed")  # its count shows a row went missing
        await chat.ask("after")  # so this turn reads the history again first
        sent = [m.content for m in fake.requests[-1].messages]
        assert sent == [
            "keep",
            "(fake) You said: keep",
            "(fake) You said: drop",
            "again",
            "(fake) You said: again",
            "noticed",
            "(fake) You said: noticed",
            "after",
        ]
    finally:
        await store.close()


async def test_rows_the_store_itself_inserts_reach_the_next_request(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        fake = FakeProvider()
        chat = await create_chat(store, create_llm(provider=fake))
        await chat.ask("one")
        await chat.ask("two")
        await store.insert_messages(
            [
                {
                    "id": "imported-1",
                    "chatId": chat.id,
                    "role": "user",
                    "content": "imported",
                    "createdAt": datetime.now(UTC),
                }
            ]
        )
        await chat.ask("three")
        sent = [m.content for m in fake.requests[-1].messages]
        assert sent[-2:] == ["imported", "three"]
    finally:
        await store.close()


async def test_a_mark_from_a_replaced_connection_is_counted_again(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = await connect(f"sqlite:///{path}")
    try:
        fake = FakeProvider()
        chat = await create_chat(store, create_llm(provider=fake))
        await chat.ask("one")
        await chat.ask("two")
        with sqlite3.connect(path) as raw:
            raw.execute(
                'INSERT INTO "LlmMessage" (id, "chatId", role, content, "createdAt") '
                "VALUES ('elsewhere', ?, 'user', 'written elsewhere', ?)",
                (chat.id, int(datetime.now(UTC).timestamp() * 1000)),
            )
        # A mark taken on another connection whose counters happen to equal this one's now
        # (as a replaced connection's could): they prove nothing here, so the chat is counted.
        lease = await store._s.pool.acquire()
        try:
            own = lease._raw
            (version,) = await lease._driver._execute(
                lambda: own.execute("PRAGMA data_version").fetchone()
            )
        finally:
            store._s.pool.release(lease)
        mark = chat._recorder.mark
        assert mark.conn is own
        mark.conn, mark.changes, mark.version = (
            sqlite3.connect(":memory:"),
            own.total_changes,
            version,
        )
        await chat.ask("three")
        sent = [m.content for m in fake.requests[-1].messages]
        assert sent[-2:] == ["written elsewhere", "three"]
        assert mark.conn is own  # taken again on the store's connection
    finally:
        await store.close()
