"""SQLite operations run on the event loop's thread, yet the loop never waits for a lock and
the WAL stays checkpointed (SqliteLease in nodellm_orm/stores/connection.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from nodellm_orm import connect, create_chat, create_llm
from nodellm_orm.stores.connection import CHECKPOINT_EVERY
from nodellm_orm.testing import FakeProvider
from tests.support.locks import write_lock_held


async def test_a_plain_turn_runs_its_statements_on_the_loops_thread(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        await chat.ask("warm up")
        pool = store._s.pool
        lease = await pool.acquire()
        threads: list[int] = []
        try:
            raw = lease._raw  # type: ignore[attr-defined]
            record = lambda _sql: threads.append(threading.get_ident())  # noqa: E731
            await lease._driver._execute(raw.set_trace_callback, record)  # type: ignore[attr-defined]
        finally:
            pool.release(lease)
        await chat.ask("where do you run?")
        assert len(threads) >= 3  # the turn's statements were seen
        assert set(threads) == {threading.get_ident()}
        assert [m.content for m in await chat.messages()][
            -1
        ] == "(fake) You said: where do you run?"
    finally:
        await store.close()


async def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    store = await connect(f"sqlite:///{path}")
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        await chat.ask("warm up")
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
    finally:
        await store.close()


async def test_the_wal_is_checkpointed_as_turns_commit(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = await connect(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        # Two writes a plain turn: after each block of turns at least one checkpoint ran, so
        # the log is rewritten from its start instead of growing with every turn.
        for _ in range(CHECKPOINT_EVERY):
            await chat.ask("fill")
        size = wal.stat().st_size
        for _ in range(2 * CHECKPOINT_EVERY):
            await chat.ask("more")
        assert wal.stat().st_size <= size * 1.25
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
