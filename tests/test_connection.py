"""The sql store's connections survive what production throws at them, on SQLite and PostgreSQL.

- a PostgreSQL backend terminated (pg_terminate_backend, only of this test's database)
  between turns and during a turn: the next turn works, no row is lost;
- a call cancelled at each of its await points in turn: the store stays healthy, the next call
  works, no connection leaks (the pool's figures and pg_stat_activity agree);
- 50 chats x 20 turns at once with default settings: no error, every row there, the number of
  connections never above pool_size + max_overflow, and an idle store keeps only pool_size
  once its overflow has sat idle OVERFLOW_IDLE_S (a burst that comes back sooner finds it);
- drivers the store cannot drive are refused at connect, naming the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Coroutine, Generator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from nodellm_orm import TableNames, Tool, connect, create_chat, create_llm
from nodellm_orm.orm.history import PLACEHOLDER_RAW
from nodellm_orm.stores import StoreError, connection
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import postgres_server, sql_dialects, unavailable
from tests.support.postgres import create_database, drop_database

DIALECTS = sql_dialects()


def _admin_dsn(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    name = parsed.database or ""
    dsn = parsed.set(drivername="postgresql", database="postgres")
    return dsn.render_as_string(hide_password=False), name


async def pg_connections(url: str, *, at_most: int | None = None) -> int:
    """Server connections to `url`'s database (what the store holds), seen by the server.

    With `at_most`, waits up to 5 s for the count to fall to it: a backend whose connection
    the client has closed exits after reading the client's Terminate, so the server may list
    it for a moment (a machine under load makes that moment longer)."""
    for _ in range(100):
        count = await _server_count(url)
        if at_most is None or count <= at_most:
            break
        await asyncio.sleep(0.05)
    return count


async def _server_count(url: str) -> int:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
        )
        return count
    finally:
        await conn.close()


async def terminate_backends(url: str) -> int:
    """pg_terminate_backend every session of `url`'s database (this test's own, only)."""
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        return len(rows)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def database(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'conn.db'}"
        return
    url = await create_database(postgres_server(), prefix="conn")
    try:
        yield url
    finally:
        await drop_database(url)


async def settled(store: SqlStore) -> None:
    """Let the pool finish closing what it discarded (closing runs in the background)."""
    pool = store._s.pool
    for _ in range(500):
        if not pool._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the pool never finished closing its discarded connections")


# --- a dropped connection -------------------------------------------------------------------


async def test_terminated_backend_between_turns(tmp_path: Path) -> None:
    async with database("postgresql", tmp_path) as url:
        store = await connect(url)
        try:
            chat = await create_chat(store, create_llm(provider=FakeProvider()))
            await chat.ask("first")
            assert await terminate_backends(url) >= 1
            for i in range(3):
                await chat.ask(f"after the drop {i}")
            rows = await (await store.bind(TableNames())).list_messages(chat.id)
            assert [r.role for r in rows] == ["user", "assistant"] * 4
            assert all(r.content for r in rows)
        finally:
            await store.close()


class Dropper(Tool):
    """A tool whose run terminates the store's server connections (mid-turn)."""

    name = "drop"
    description = "Drop the database connections"
    url = ""

    class Params(BaseModel):
        pass

    async def execute(self, params: Any) -> str:
        await terminate_backends(self.url)
        return "dropped"


async def test_terminated_backend_during_a_turn(tmp_path: Path) -> None:
    async with database("postgresql", tmp_path) as url:
        store = await connect(url)
        try:
            fake = FakeProvider()
            chat = await create_chat(store, create_llm(provider=fake))
            Dropper.url = url
            chat.with_tool(Dropper)
            await chat.ask("warm up")
            for i in range(3):
                fake.reply_tool_call("drop").reply(f"done {i}")
                answer = await chat.ask(f"drop them {i}")
                assert answer.content == f"done {i}"
            bound = await store.bind(TableNames())
            rows = await bound.list_messages(chat.id)
            # A tool turn is one assistant row carrying its tool calls (results on them).
            assert [r.role for r in rows] == ["user", "assistant"] * 4
            assert [r.content for r in rows[3::2]] == ["done 0", "done 1", "done 2"]
            calls = await bound.list_tool_calls([r.id for r in rows if r.role == "assistant"])
            assert [c.result for c in calls] == ["dropped"] * 3
            assert len(await bound.list_requests(chat.id)) == 1 + 2 * 3
        finally:
            await store.close()


# --- cancellation at every await point ------------------------------------------------------


class CancelAt:
    """Await `coro`, cancelling it at its `at`-th suspension, as task.cancel() would there."""

    def __init__(self, coro: Coroutine[Any, Any, Any], at: int) -> None:
        self.coro = coro
        self.at = at
        self.fired = False

    def __await__(self) -> Generator[Any, Any, Any]:
        it = self.coro.__await__()
        suspensions = 0
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = it.throw(error) if error is not None else it.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            suspensions += 1
            if suspensions == self.at:
                # What Task.cancel() does to a task suspended here: cancel what it waits for
                # and throw CancelledError in at that point.
                if isinstance(yielded, asyncio.Future):
                    yielded.cancel()
                self.fired = True
                error = asyncio.CancelledError()
                continue
            try:
                value = yield yielded
            except BaseException as exc:
                error = exc


class Echo(Tool):
    name = "echo"
    description = "Echo a word"

    class Params(BaseModel):
        word: str

    def execute(self, params: Any) -> str:
        return params.word


SQLITE_TURNS = {("sqlite", "plain"), ("sqlite", "tool")}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["plain", "tool", "stream", "transaction"])
async def test_cancelled_at_every_await_point(dialect: str, kind: str, tmp_path: Path) -> None:
    async with database(dialect, tmp_path) as url:
        store = await connect(url)
        try:
            pool = store._s.pool
            bound = await store.bind(TableNames())
            # A provider that takes a moment: its wait is an await point too.
            fake = FakeProvider(latency=0.001)
            llm = create_llm(provider=fake)
            at, swept, leftovers = 1, 0, 0
            while at < 400:
                chat = await create_chat(store, llm)
                chat.with_tool(Echo)
                fake.queue.clear()
                if kind == "tool":
                    fake.reply_tool_call("echo", {"word": "hi"}).reply("done")
                if kind == "transaction":

                    async def block(chat_id: str = chat.id) -> None:
                        async with bound.transaction():
                            await bound.update_chat(chat_id, {"instructions": "x"})
                            await bound.count_messages(chat_id)

                    coro: Coroutine[Any, Any, Any] = block()
                elif kind == "stream":
                    fake.reply_tool_call("echo", {"word": "hi"}).reply("streamed answer")

                    async def consume(target: Any = chat) -> None:
                        async with target.ask_stream("cancel me") as stream:
                            async for _chunk in stream:
                                pass

                    coro = consume()
                else:
                    coro = chat.ask("cancel me")
                cancel = CancelAt(coro, at)
                with contextlib.suppress(asyncio.CancelledError):
                    await cancel
                await settled(store)
                # (Reported, not asserted: what a cancelled turn leaves is the turn's business.)
                leftovers += sum(
                    r.contentRaw == PLACEHOLDER_RAW for r in await bound.list_messages(chat.id)
                )
                # The store is healthy: the next call, on another chat, works.
                after = await create_chat(store, llm)
                fake.queue.clear()
                assert (await after.ask("next")).content == "(fake) You said: next"
                assert await bound.count_messages(after.id) == 2
                assert pool.in_use == 0, f"a connection leaked after a cancel at {at}"
                swept += 1
                if not cancel.fired:
                    break  # the call finished before its at-th await: every point was swept
                at += 1
            # A SQLite turn runs its operations on the event loop's thread without suspending
            # (SqliteLease): there may be no point at which to cancel it half-way.
            assert swept > (0 if (dialect, kind) in SQLITE_TURNS else 2)
            assert not cancel.fired
            print(
                f"{dialect} {kind}: cancelled at each of {swept - 1} await points; "
                f"placeholders left: {leftovers}"
            )
            assert pool.open_count <= pool.limit
            if dialect == "postgresql":
                assert await pg_connections(url, at_most=pool.size) <= pool.size
        finally:
            await store.close()


# --- concurrency and the pool's bound -------------------------------------------------------


async def _monitor(url: str, stop: asyncio.Event, seen: list[int]) -> None:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            seen.append(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
                )
            )
            await asyncio.sleep(0.005)
    finally:
        await conn.close()


async def _chats_at_once(store: SqlStore, chats: int, turns: int) -> list[str]:
    llm = create_llm(provider=FakeProvider())
    created = [await create_chat(store, llm) for _ in range(chats)]

    async def run(chat: Any) -> None:
        for i in range(turns):
            await chat.ask(f"turn {i}")

    results = await asyncio.gather(*(run(c) for c in created), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], f"{len(errors)} chats failed, first: {errors[0]!r}"
    return [c.id for c in created]


async def overflow_closed(store: SqlStore) -> None:
    """Wait (up to 5 s) until the pool keeps no more than its size open."""
    pool = store._s.pool
    for _ in range(500):
        if pool.open_count <= pool.size and not pool._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pool.open_count} connections still open, pool size {pool.size}")


async def backend_pids(url: str) -> set[int]:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        return {r["pid"] for r in rows}
    finally:
        await conn.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_fifty_chats_twenty_turns_at_once(
    dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "OVERFLOW_IDLE_S", 0.3)
    async with database(dialect, tmp_path) as url:
        store = await connect(url)  # default settings
        stop, seen = asyncio.Event(), []
        monitor = (
            asyncio.ensure_future(_monitor(url, stop, seen)) if dialect == "postgresql" else None
        )
        pool = store._s.pool
        opened: list[int] = []
        try:

            async def watch() -> None:
                while not stop.is_set():
                    opened.append(pool.open_count)
                    await asyncio.sleep(0)

            watcher = asyncio.ensure_future(watch())
            ids = await _chats_at_once(store, 50, 20)
            stop.set()
            await watcher
            if monitor is not None:
                await monitor
            bound = await store.bind(TableNames())
            for chat_id in ids:
                rows = await bound.list_messages(chat_id)
                assert [r.role for r in rows] == ["user", "assistant"] * 20
                assert all(r.content for r in rows)
                assert len(await bound.list_requests(chat_id)) == 20
            assert max(opened) <= pool.limit == (15 if dialect == "postgresql" else 1)
            await settled(store)
            # Idle: nothing checked out; once the overflow sat idle, pool_size kept open.
            assert pool.in_use == 0
            await overflow_closed(store)
            if dialect == "postgresql":
                # The client-side bound above is exact. The server may still list, for a
                # moment, a backend whose connection the pool has already closed (it exits
                # after the client's Terminate), so its count may exceed the bound by one.
                assert seen and max(seen) <= 15 + 1
                assert await pg_connections(url, at_most=5) <= 5
        finally:
            stop.set()
            await store.close()


async def test_pool_bound_is_respected_and_callers_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "OVERFLOW_IDLE_S", 0.3)
    async with database("postgresql", tmp_path) as url:
        store = await connect(url, pool_size=2, max_overflow=1)
        stop, seen = asyncio.Event(), []
        monitor = asyncio.ensure_future(_monitor(url, stop, seen))
        try:
            await _chats_at_once(store, 12, 5)
            stop.set()
            await monitor
            assert seen and max(seen) <= 3
            await settled(store)
            assert await pg_connections(url, at_most=2) <= 2
        finally:
            stop.set()
            await store.close()
        assert await pg_connections(url, at_most=0) == 0


async def test_a_burst_that_comes_back_soon_finds_its_overflow_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connections a burst opened beyond pool_size stay while idle for OVERFLOW_IDLE_S:
    the next burst within it runs on the same server processes, none opened anew; then
    they close, and pool_size stay."""
    monkeypatch.setattr(connection, "OVERFLOW_IDLE_S", 2.0)
    async with database("postgresql", tmp_path) as url:
        store = await connect(url)  # 5 + 10
        try:
            await _chats_at_once(store, 50, 3)
            first = await backend_pids(url)
            assert len(first) > store._s.pool.size  # the burst used its overflow
            await _chats_at_once(store, 50, 3)
            assert await backend_pids(url) == first
            await overflow_closed(store)
            assert await pg_connections(url, at_most=5) <= 5
        finally:
            await store.close()


async def test_overflow_kept_idle_that_the_server_dropped_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection the pool keeps idle, its overflow too, killed on the server between
    two bursts (a restart, an idle timeout): the next burst loses no turn, every row is
    there, and each chat's next request carries its whole history. (PostgreSQL only: SQLite
    runs on one connection and has no overflow.)"""
    monkeypatch.setattr(connection, "OVERFLOW_IDLE_S", 30.0)
    async with database("postgresql", tmp_path) as url:
        store = await connect(url)  # 5 + 10
        try:
            fake = FakeProvider()
            llm = create_llm(provider=fake)
            chats = [await create_chat(store, llm) for _ in range(50)]

            async def turns(chat: Any, words: list[str]) -> None:
                for word in words:
                    await chat.ask(word)

            await asyncio.gather(*(turns(c, ["one", "two"]) for c in chats))
            assert store._s.pool.idle_count > store._s.pool.size  # overflow kept idle
            assert await terminate_backends(url) == store._s.pool.idle_count
            await asyncio.gather(*(turns(c, ["three"]) for c in chats))
            bound = await store.bind(TableNames())
            for chat in chats:
                rows = await bound.list_messages(chat.id)
                assert [r.content for r in rows if r.role == "user"] == ["one", "two", "three"]
                assert all(r.content for r in rows if r.role == "assistant")
            await chats[0].ask("four")
            sent = [m.content for m in fake.requests[-1].messages]
            assert sent == [
                "one",
                "(fake) You said: one",
                "two",
                "(fake) You said: two",
                "three",
                "(fake) You said: three",
                "four",
            ]
        finally:
            await store.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_pool_settings_are_checked(dialect: str, tmp_path: Path) -> None:
    async with database(dialect, tmp_path) as url:
        with pytest.raises(ValueError, match="pool_size"):
            await connect(url, pool_size=0)
        with pytest.raises(ValueError, match="max_overflow"):
            await connect(url, max_overflow=-1)
        if dialect == "sqlite":
            with pytest.raises(ValueError, match="one connection"):
                await connect(url, pool_size=4)


# --- drivers the store cannot drive ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql+psycopg://u@127.0.0.1:1/db", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@127.0.0.1:1/db", "postgresql+psycopg2"),
        ("sqlite+pysqlite:///x.db", "sqlite+pysqlite"),
    ],
)
async def test_driver_the_store_cannot_drive_is_refused(url: str, driver: str) -> None:
    with pytest.raises(StoreError) as caught:
        await connect(url)
    message = str(caught.value)
    assert driver in message
    assert ("asyncpg" if driver.startswith("postgresql") else "aiosqlite") in message


async def test_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError, match="mysql"):
        await connect("mysql://u@127.0.0.1:1/db")


# --- a server restart (a throwaway cluster of this test's own) ------------------------------


class Cluster:
    """A PostgreSQL cluster this test may stop and start (never the shared server)."""

    def __init__(self, bindir: Path, root: Path) -> None:
        from tests.support.postgres import _as_user, _free_port, _os_user

        self.bindir, self.user, self.as_user = bindir, _os_user(), _as_user
        self.root, self.data, self.port = root, root / "data", _free_port()
        if self.user is not None:
            import pwd

            info = pwd.getpwnam(self.user)
            os.chown(root, info.pw_uid, info.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        argv = self.as_user(self.user, [str(self.bindir / tool), *args])
        result = subprocess.run(argv, capture_output=True, text=True)
        assert result.returncode == 0, f"{tool} failed: {result.stdout}{result.stderr}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Generator[Cluster, None, None]:
    from tests.support.postgres import find_bindir

    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL binaries to start a throwaway cluster")
    root = Path(tempfile.mkdtemp(prefix="nodellm-restart-"))
    try:
        made = Cluster(bindir, root)
        made.start()
        try:
            yield made
        finally:
            with contextlib.suppress(AssertionError):
                made.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.backend("sql-postgresql")
async def test_server_restart(cluster: Cluster) -> None:
    url = await create_database(cluster.url, prefix="restart")
    store = await connect(url)
    try:
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        await chat.ask("before")
        # Restarted between two turns: the idle connection is dead, the next turn does not see it.
        cluster.stop()
        cluster.start()
        await chat.ask("after a restart")
        # Down during a call: that call fails (there is no server), the store does not.
        other = await create_chat(store, create_llm(provider=FakeProvider()))
        cluster.stop()
        with pytest.raises(OSError):  # connection refused: said as it is
            await other.ask("while down")
        cluster.start()
        await chat.ask("back again")
        rows = await (await store.bind(TableNames())).list_messages(chat.id)
        assert [r.content for r in rows if r.role == "user"] == [
            "before",
            "after a restart",
            "back again",
        ]
        assert all(r.content for r in rows)
        assert store._s.pool.open_count <= store._s.pool.limit
    finally:
        await store.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_closed_store_refuses_every_operation(dialect: str, tmp_path: Path) -> None:
    async with database(dialect, tmp_path) as url:
        store = await connect(url)
        chat = await create_chat(store, create_llm(provider=FakeProvider()))
        await chat.ask("before closing")  # a connection now sits idle in the pool
        await store.close()
        with pytest.raises(StoreError, match="the store is closed"):
            await store.get_chat(chat.id)
        with pytest.raises(StoreError, match="the store is closed"):
            await chat.ask("after closing")
        reopened = await connect(url)
        try:
            rows = await reopened.list_messages(chat.id)
            assert [r.content for r in rows] == [
                "before closing",
                "(fake) You said: before closing",
            ]
        finally:
            await reopened.close()
