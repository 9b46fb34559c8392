"""SQLite operations run on the event loop's thread, yet the loop never waits for a lock and
the WAL stays checkpointed (SqliteLease in nodellm_orm/stores/connection.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from nodellm_orm import connect, create_chat, create_llm
from nodellm_orm.stores import connection
from nodellm_orm.stores.connection import CHECKPOINT_EVERY
from nodellm_orm.testing import FakeProvider
from tests.support.locks import write_lock_held


@asynccontextmanager
async def warm_chat(path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """A store on the SQLite file `path` and a chat that has had one turn; closed after."""
    store = await connect(f"sqlite:///{path}")
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        await chat.ask("warm up")
        yield store, chat
    finally:
        await store.close()


async def trace_statements(store: Any, record: Callable[[str], object]) -> None:
    """Have the store's one SQLite connection call `record` with each statement it runs."""
    pool = store._s.pool
    lease = await pool.acquire()
    try:
        raw = lease._raw
        await lease._driver._execute(raw.set_trace_callback, record)
    finally:
        pool.release(lease)


async def test_a_plain_turn_runs_its_statements_on_the_loops_thread(tmp_path: Path) -> None:
    async with warm_chat(tmp_path / "x.db") as (store, chat):
        threads: list[int] = []
        await trace_statements(store, lambda _sql: threads.append(threading.get_ident()))
        await chat.ask("where do you run?")
        assert len(threads) >= 3  # the turn's statements were seen
        assert set(threads) == {threading.get_ident()}
        assert [m.content for m in await chat.messages()][
            -1
        ] == "(fake) You said: where do you run?"


async def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    async with warm_chat(path) as (_, chat):
        async with write_lock_held(path) as release:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1
                    if ticks == 20:
                        release.set()  # the other writer lets go once the loop has run a while

            tick = asyncio.create_task(ticker())
            try:
                reply = await chat.ask("after the lock")
            finally:
                tick.cancel()
        # The turn waited for the lock (in the driver's thread) while the loop kept running.
        assert ticks >= 20
        assert reply.content == "(fake) You said: after the lock"
        rows = await chat.messages()
        assert [m.content for m in rows][-2:] == ["after the lock", reply.content]


async def test_checkpoints_copy_the_log_into_the_file_off_the_writers_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    async with warm_chat(path) as (store, chat):
        on_writer: list[str] = []
        await trace_statements(store, on_writer.append)
        size = path.stat().st_size
        # Two writes a plain turn: three checkpoints due, the log still short of its bound.
        for _ in range(3 * CHECKPOINT_EVERY // 2):
            await chat.ask("fill")
        for _ in range(500):  # the copy runs in a thread of its own: wait for it to land
            if path.stat().st_size > size:
                break
            await asyncio.sleep(0.01)
        assert path.stat().st_size > size  # the turns' pages reached the database file
        assert not [sql for sql in on_writer if "wal_checkpoint" in sql]
        assert len([sql for sql in on_writer if sql.startswith("INSERT")]) >= CHECKPOINT_EVERY
    assert not [t for t in threading.enumerate() if t.name.startswith("nodellm-wal")]


async def test_a_database_moved_while_open_is_checkpointed_by_its_writer(tmp_path: Path) -> None:
    path, moved = tmp_path / "x.db", tmp_path / "moved.db"
    async with warm_chat(path) as (store, chat):
        on_writer: list[str] = []
        await trace_statements(store, on_writer.append)
        path.rename(moved)  # the open connection keeps writing to the file it has open
        for _ in range(3 * CHECKPOINT_EVERY // 2):
            await chat.ask("after the move")
        # The side connection found nothing at the old name and made nothing there, so the
        # writer checkpoints its own file again, in its own connection.
        assert not path.exists()
        assert [sql for sql in on_writer if "wal_checkpoint" in sql]
        rows = await chat.messages()
        assert len(rows) == 2 + 3 * CHECKPOINT_EVERY
        assert rows[-1].content == "(fake) You said: after the move"
    # (What follows the last checkpoint stays in the log under the old name: SQLite does not
    # checkpoint a renamed database's log when it closes, with or without this library.)


@pytest.mark.parametrize(
    "side_delay",
    [
        pytest.param(0.0, id="side-checkpoints-keep-up"),
        # Slower than an interval of writes (a busy disk's syncs): seen in a full suite run.
        pytest.param(0.05, id="side-checkpoints-lag"),
    ],
)
async def test_the_wal_stays_bounded_while_writes_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side_delay: float
) -> None:
    # Smaller than the defaults, so that a few hundred turns pass the bound several times.
    monkeypatch.setattr(connection, "CHECKPOINT_EVERY", 20)
    monkeypatch.setattr(connection, "WAL_FRAMES_MAX", 200)
    checkpoint = connection._sqlite_checkpoint

    def slow_on_the_side(raw: sqlite3.Connection) -> tuple[bool, int]:
        if threading.current_thread().name.startswith("nodellm-wal"):
            threading.Event().wait(side_delay)
        return checkpoint(raw)

    monkeypatch.setattr(connection, "_sqlite_checkpoint", slow_on_the_side)
    path = tmp_path / "x.db"
    store = await connect(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        frames_of = sqlite3.connect(path)
        try:
            (page,) = frames_of.execute("PRAGMA page_size").fetchone()
        finally:
            frames_of.close()
        written = 0
        for _ in range(600):
            await chat.ask("fill")
            written += 2
        # A checkpoint from the side copies the log while turns go on, but only the writer's
        # own restarts it: without them the log would hold every frame of 1,200 writes (each
        # commit appends one at least). With them it holds the bound and what the writes of
        # the two intervals before the writer saw it passed add.
        frames = wal.stat().st_size // (page + 24)
        assert frames < 3 * connection.WAL_FRAMES_MAX < written
        rows = await chat.messages()
        assert len(rows) == 1200 and rows[-1].content == "(fake) You said: fill"
    finally:
        await store.close()


async def test_a_plain_turn_takes_no_more_passes_of_the_loop_than_the_bare_chat(
    tmp_path: Path,
) -> None:
    # Its writes need not wait on SQLite, so they run in the turn's own step (orm.turn.settle):
    # no task per write, whose scheduling and shield cost three passes each.
    async def passes(ask: Callable[[], Awaitable[object]]) -> int:
        count, ticking = 0, True

        def tick() -> None:
            nonlocal count
            count += 1
            if ticking:
                loop.call_soon(tick)

        loop = asyncio.get_running_loop()
        loop.call_soon(tick)
        await asyncio.sleep(0)  # the ticker runs once per pass from here
        start = count
        await ask()
        ticking = False
        return count - start

    llm = create_llm(provider=FakeProvider())
    bare = llm.chat()
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        chat = await create_chat(store, llm)
        await chat.ask("warm up")
        await bare.ask("warm up")
        assert await passes(lambda: chat.ask("how many?")) <= await passes(
            lambda: bare.ask("how many?")
        )
        assert [m.content for m in await chat.messages()][-2:] == [
            "how many?",
            "(fake) You said: how many?",
        ]
    finally:
        await store.close()
