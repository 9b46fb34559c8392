"""A long chat's turn costs what a short one does, and still notices every writer.

SQLite first; PostgreSQL at the end (its own note there).

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nodellm_orm import connect, create_chat, create_llm, load_chat
from nodellm_orm.testing import FakeProvider
from tests.conftest import postgres_server
from tests.support.postgres import create_database, drop_database

# Every this many SQLite instructions the progress handler is called once.
_PERIOD = 10


async def _seed(store: Any, chat_id: str, messages: int, at: datetime | None = None) -> None:
    at = at or datetime.now(UTC) - timedelta(hours=1)
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


def assert_caught_up(fake: FakeProvider, theirs: str, mine: str) -> None:
    """The chat's last request ends with another writer's turn (`theirs` and its answer),
    then the chat's own question `mine`."""
    sent = [m.content for m in fake.requests[-1].messages]
    assert sent[-3:] == [theirs, f"(fake) You said: {theirs}", mine]


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
        assert_caught_up(fake, "from the other connection", "three")
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


# --- PostgreSQL ----------------------------------------------------------------------------
# There a turn learns what others wrote by counting the chat's rows after its cursor. The
# store's statements are prepared, and PostgreSQL runs a prepared statement with a generic
# plan once it has seen a few executions, so these tests replay the turn's begin statement,
# as sent, under a generic plan, and count the LlmMessage rows it reads (the transaction's
# own statistics), then roll back.


async def _rows_read_by_begin(url: str, store: Any, chat: Any) -> int:
    """LlmMessage rows read by the statement that begins `chat`'s next turn, generic plan."""
    rows, _ = await _reads_by_begin(url, store, chat)
    return rows


async def _reads_by_begin(url: str, store: Any, chat: Any) -> tuple[int, int]:
    """(LlmMessage rows, entries of its indexes) read by the statement that begins `chat`'s
    next turn, generic plan."""

    def begins(sql: str) -> bool:
        return sql.startswith('INSERT INTO "LlmMessage"')

    return await _reads_of(url, store, chat.ask("the measured turn"), begins)


async def _reads_of(
    url: str, store: Any, action: Any, measured: Callable[[str], bool]
) -> tuple[int, int]:
    """(LlmMessage rows, entries of its indexes) read by the one statement `measured` picks
    of those awaiting `action` sends on the store's connections, replayed as sent under a
    generic plan, then rolled back. An INSERT's own rows are deleted first, so it can run."""
    import asyncpg

    sent: list[tuple[str, tuple[Any, ...]]] = []

    def log(query: Any) -> None:
        if measured(query.query):
            sent.append((query.query, tuple(query.args)))

    logged = [lease._driver for lease in store._s.pool._idle]
    for driver in logged:
        driver.add_query_logger(log)
    try:
        await action
    finally:
        for driver in logged:
            driver.remove_query_logger(log)
    ((query, args),) = sent
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    # The store's connections send aware datetimes for "timestamp" columns (as UTC).
    await raw.set_builtin_type_codec("timestamp", schema="pg_catalog", codec_name="timestamptz")
    try:
        async with raw.transaction():
            if query.startswith("INSERT"):
                strings = [a for a in args if isinstance(a, str)]
                await raw.execute('DELETE FROM "LlmMessage" WHERE id = ANY($1::text[])', strings)
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            read = (
                "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) "
                "FROM pg_stat_xact_user_tables WHERE relname = 'LlmMessage'"
            )
            entries = (
                "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) "
                """FROM pg_index WHERE indrelid = '"LlmMessage"'::regclass"""
            )
            before = await raw.fetchval(read), await raw.fetchval(entries)
            statement = await raw.prepare(query)
            await statement.fetch(*args)
            after = await raw.fetchval(read), await raw.fetchval(entries)
            raise _RolledBack
    except _RolledBack:
        pass
    finally:
        await raw.close()
    return int(after[0] - before[0]), int(after[1] - before[1])


class _RolledBack(Exception):
    pass


@pytest.mark.backend("sql-postgresql")
async def test_a_turns_postgresql_reads_do_not_grow_with_the_chat() -> None:
    url = await create_database(postgres_server(), prefix="longchat")
    store = await connect(url)
    try:
        llm = create_llm(provider=FakeProvider())
        read = {}
        for name, size in (("short", 20), ("long", 5_000)):
            made = await create_chat(store, llm)
            await _seed(store, made.id, size)
            chat = await load_chat(store, llm, made.id)
            assert chat is not None
            await chat.ask("the first turn")
            read[name] = await _rows_read_by_begin(url, store, chat)
        # Counting the chat through its chatId index reads every one of its rows.
        assert read["long"] < read["short"] + 50, read
    finally:
        await store.close()
        await drop_database(url)


async def _chat_on_a_busy_database(store: Any, llm: Any) -> Any:
    """A chat of 20 turns (40 rows) among 20,000 rows other chats wrote 30 s ago: inside the
    chat's late window, so its cursor is older than all of them."""
    recent = datetime.now(UTC) - timedelta(seconds=30)
    for _ in range(20):
        other = await create_chat(store, llm)
        await _seed(store, other.id, 1_000, at=recent)
    chat = await create_chat(store, llm)
    for i in range(20):
        await chat.ask(f"turn {i}")
    return chat


@pytest.mark.backend("sql-postgresql")
async def test_a_turns_postgresql_count_skips_other_chats_recent_rows() -> None:
    """On a busy database a short chat's turn reads its own rows, not everyone's: its count
    of the rows after its cursor (the newest row held, less the late window) goes through
    the chatId index alone. Were PostgreSQL to range-scan the createdAt index from the cursor
    as well, every turn would read every row any chat wrote in that window (at 2,000 turns/s,
    some 500,000 index entries a turn)."""
    url = await create_database(postgres_server(), prefix="longchat")
    store = await connect(url)
    try:
        chat = await _chat_on_a_busy_database(store, create_llm(provider=FakeProvider()))
        rows, entries = await _reads_by_begin(url, store, chat)
        # The chat holds 40 rows: each read once from its index and once from the table.
        assert rows <= 50 and entries <= 50, (rows, entries)
    finally:
        await store.close()
        await drop_database(url)


@pytest.mark.backend("sql-postgresql")
async def test_a_turn_catching_up_on_postgresql_reads_its_chats_rows_only() -> None:
    """A chat another store wrote to reads what it missed (every row after its cursor) from
    its own rows, on a busy database too: not through the createdAt index's range from the
    cursor, which holds every chat's rows of the late window."""
    url = await create_database(postgres_server(), prefix="longchat")
    mine, theirs = await connect(url), await connect(url)
    try:
        fake = FakeProvider()
        chat = await _chat_on_a_busy_database(mine, create_llm(provider=fake))
        elsewhere = await load_chat(theirs, create_llm(provider=FakeProvider()), chat.id)
        assert elsewhere is not None
        await elsewhere.ask("from the other store")

        def reads_messages(sql: str) -> bool:
            return sql.startswith("SELECT") and 'FROM "LlmMessage"' in sql

        rows, entries = await _reads_of(url, mine, chat.ask("caught up"), reads_messages)
        # The chat holds 44 rows: each read once from its index and once from the table.
        assert rows <= 50 and entries <= 50, (rows, entries)
        assert_caught_up(fake, "from the other store", "caught up")
    finally:
        await mine.close()
        await theirs.close()
        await drop_database(url)


@pytest.mark.backend("sql-postgresql")
@pytest.mark.parametrize(
    "busy",
    [
        pytest.param(0, id="found-in-the-window"),  # among one other chat's turn
        pytest.param(300, id="window-overflows"),  # the chat's own count is taken instead
    ],
)
async def test_another_stores_turn_on_a_long_chat_reaches_the_next_request(busy: int) -> None:
    """A long chat's turn reads the newest rows of every chat first (the window holds at
    most the 100 rows the chat held before): another store's turn on the chat is found
    there, or, when other chats wrote more than the window holds, by the chat's count."""
    url = await create_database(postgres_server(), prefix="longchat")
    mine, theirs = await connect(url), await connect(url)
    try:
        fake = FakeProvider()
        llm = create_llm(provider=fake)
        made = await create_chat(mine, llm)
        await _seed(mine, made.id, 100)  # an hour old: its turns read the window first
        chat = await load_chat(mine, llm, made.id)
        assert chat is not None
        await chat.ask("one")
        neighbour = await create_chat(theirs, create_llm(provider=FakeProvider()))
        await neighbour.ask("another chat's turn")
        await _seed(theirs, neighbour.id, busy, at=datetime.now(UTC))  # newer than the cursor
        other = await load_chat(theirs, create_llm(provider=FakeProvider()), chat.id)
        assert other is not None
        await other.ask("from the other store")
        await chat.ask("two")
        sent = [m.content for m in fake.requests[-1].messages]
        assert len(sent) == 100 + 5
        assert sent[-5:] == [
            "one",
            "(fake) You said: one",
            "from the other store",
            "(fake) You said: from the other store",
            "two",
        ]
    finally:
        await mine.close()
        await theirs.close()
        await drop_database(url)
