"""The sql store's connections: a bounded pool of leases that no failure poisons.

A lease is one database connection the store drives directly (SQLite: the aiosqlite worker
thread; PostgreSQL: asyncpg in autocommit mode), kept open between operations so that an
operation pays no pool checkout or reset.

Guarantees:
- Bounded: at most `size + overflow` connections exist; callers beyond that wait their turn
  (first come, first served, as long as it takes: no timeout). `size` connections stay open
  when idle; an overflow connection is closed once it has sat idle OVERFLOW_IDLE_S (10 s).
- A failed operation never poisons the store. A connection interrupted mid-statement
  (a cancelled call: asyncio.wait_for, task.cancel), one whose server went away
  (pg_terminate_backend, a restart, a proxy's idle timeout) or one whose rollback failed is
  discarded, and the next call gets a healthy one, reconnecting when the server is back.
  An ordinary error (a constraint, bad data) leaves the connection in the pool.
- A connection found dead when an operation starts on it, after it sat in the pool, is
  replaced and the operation retried on a fresh one, so a restart between two calls costs no
  call. (Writes carry client-made primary keys: a write the server did apply before dying can
  only fail on retry, never land twice.)
- On SQLite the one connection runs statements in order in its thread, so a call cancelled
  while its statements run leaves nothing half-done for the next caller: an operation that
  finds a transaction left open by an interrupted block rolls it back first.
- Group commit (SQLite, one connection): the first task's operations in a pass of the event
  loop run at once, as they would alone; other tasks' arriving in the same pass (many chats'
  turns at once) or while a group runs queue, and run in arrival order as one group, in one
  transaction with one commit. Each caller's await still returns only after a commit that
  holds its writes; if any statement of the group fails, the group is rolled back and every
  operation runs again alone, so each caller gets the outcome it would have got alone (one
  operation's error is never another's). A caller cancelled while its operation waits in the
  queue is dropped from it, nothing written; once its group runs it commits, as a call
  cancelled while its statements run in the driver's thread does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .base import StoreError

__all__ = ["BUSY_TIMEOUT_MS", "GroupLease", "Lease", "PgLease", "Pool", "SqliteLease", "Step"]

# (sql, args, what to return: False = rowcount, True = rows, a function = built from rows).
# On SQLite, a step with no sql is a probe: ("", (), fn) runs fn(connection) there, in order
# with the statements (a WriteMark's bookkeeping), and returns None.
Step = tuple[str, tuple[Any, ...], Any]
# One operation's outcome in a group: (True, its results) or (False, the error it raised).
Outcome = tuple[bool, Any]


class Lease(Protocol):
    conn: AsyncConnection
    # Has been in the pool (or handed over) since it opened: it may have died meanwhile.
    reused: bool
    # Interrupted mid-statement or failed to roll back: never reuse.
    broken: bool
    # Bind parameters one statement may carry, as the connection reports it (None: the
    # dialect's documented limit).
    max_params: int | None

    def alive(self) -> bool: ...
    def reusable(self, error: BaseException | None) -> bool: ...
    async def run(self, steps: Sequence[Step], *, in_tx: bool) -> list[Any]: ...
    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self, *, broken: bool) -> None: ...


class GroupLease(Lease, Protocol):
    async def run_group(self, ops: Sequence[Sequence[Step]]) -> list[Outcome]:
        """Each operation's outcome, in order, every success committed when this returns."""
        ...


def fetch_rows(fetchall: Callable[[], Sequence[Any]], build: Any) -> Any:
    """Fetch rows (and build records when `build` is a function) with the GC paused.

    A 10,000-message chat allocates ~200,000 tracked objects; letting the cyclic GC rescan
    them while they are created cost about a third of the load time when measured.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        data = fetchall()
        return build(data) if callable(build) else data
    finally:
        if paused:
            gc.enable()


# --- SQLite ---------------------------------------------------------------------------------


# How long a statement waits for another connection's write lock (PRAGMA busy_timeout).
BUSY_TIMEOUT_MS = 5000
# Writes committed from the event loop's thread between two WAL checkpoints. SQLite's own
# automatic checkpoint (every 1,000 WAL pages, ~250 plain turns) would run inside a commit and
# so block the loop; this one runs at about the same pace on a connection of its own
# (_WalCheckpointer), or in the driver's thread once the log is past WAL_FRAMES_MAX.
CHECKPOINT_EVERY = 250
# Frames the log may hold before the writer checkpoints it itself (~16 MB of 4 KB pages).
WAL_FRAMES_MAX = 4000
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# Passes of the event loop after a group during which every operation queues (Pool).
_GROUP_PASSES = 3


def _sqlite_run(raw: sqlite3.Connection, steps: Sequence[Step], autocommit: bool) -> list[Any]:
    # Every statement and the commit in one call: one hop when it runs in the driver's thread.
    out: list[Any] = []
    if autocommit and raw.in_transaction:
        # Left open by a transaction block cancelled before it could roll back.
        raw.rollback()
    try:
        for sql, args, rows in steps:
            if not sql:  # a probe: Python run on the connection between statements
                rows(raw)
                out.append(None)
                continue
            cur = raw.execute(sql, args)
            out.append(fetch_rows(cur.fetchall, rows) if rows else cur.rowcount)
            cur.close()
        if autocommit and raw.in_transaction:
            raw.commit()
    except BaseException:
        if autocommit and raw.in_transaction:
            raw.rollback()
        raise
    return out


def _sqlite_together(raw: sqlite3.Connection, ops: Sequence[Sequence[Step]]) -> list[list[Any]]:
    """Every operation's statements in one transaction, one commit; on any error nothing is
    left applied and the error is raised."""
    if raw.in_transaction:
        raw.rollback()
    try:
        outs = [_sqlite_run(raw, steps, False) for steps in ops]
        if raw.in_transaction:
            raw.commit()
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise
    return outs


def _sqlite_group(raw: sqlite3.Connection, ops: Sequence[Sequence[Step]]) -> list[Outcome]:
    """The operations together; if that fails, each alone (its own transaction), so a failing
    operation fails by itself and the others commit as they would have without it."""
    if len(ops) > 1:
        with contextlib.suppress(Exception):
            return [(True, out) for out in _sqlite_together(raw, ops)]
    outcomes: list[Outcome] = []
    for steps in ops:
        try:
            outcomes.append((True, _sqlite_run(raw, steps, True)))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


def _sqlite_begin(raw: sqlite3.Connection) -> None:
    if raw.in_transaction:
        raw.rollback()
    # IMMEDIATE takes the write lock up front, so another process cannot make a deferred
    # transaction fail half-way with SQLITE_BUSY; busy_timeout makes this wait instead.
    raw.execute("BEGIN IMMEDIATE").close()


def _sqlite_checkpoint(raw: sqlite3.Connection) -> tuple[bool, int]:
    """A passive checkpoint (it waits for no one): whether another connection's checkpoint
    kept it from running, and the frames the log holds (-1: the database is not in WAL mode)."""
    busy, frames, _ = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return bool(busy), int(frames)


class _WalCheckpointer:
    """Checkpoints a WAL database from a connection and a thread of its own, so that neither
    the writer's connection nor the event loop driving it waits for the copy into the
    database file and its syncs (~16 ms each on the disk measured, every 250 writes).

    A checkpoint from another connection copies what was committed when it began while the
    writer goes on committing; but the log restarts from its start only when a write begins
    with every frame copied, which does not happen while writes never pause. So once the log
    it last saw holds WAL_FRAMES_MAX frames, or when it is still copying as the next
    interval of writes ends (a slow disk: what it saw is stale by then), the writer
    checkpoints on its own connection, between its writes (with little left to copy), and its
    next write restarts the log.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nodellm-wal")
        self._conn: sqlite3.Connection | None = None
        self._running: Future[None] | None = None
        # The log's length at its last checkpoint here; written there, read on the loop.
        self.frames = 0
        self.failed = False

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    def start(self) -> None:
        """Begin a checkpoint (none is running: the writer checks `running` first)."""
        self._running = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                # mode=rw: the database it was made for or none, never a new empty one at
                # that name (the file may have been moved or removed since).
                uri = f"{Path(self._path).as_uri()}?mode=rw"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            busy, frames = _sqlite_checkpoint(self._conn)
            if busy:
                return  # another process's checkpoint is copying the log: it counts too
            if frames < 0:
                raise sqlite3.OperationalError(f"{self._path} is not in WAL mode")
            self.frames = frames
        except Exception:
            # Nothing to report to: the writes it follows are committed. The writer
            # checkpoints on its own connection from now on, as it did before this existed.
            self.failed = True

    async def wait(self) -> None:
        """Until the running checkpoint, if any, is over (one runs at a time anyway)."""
        running = self._running
        if running is not None and not running.done():
            await asyncio.wrap_future(running)

    async def close(self) -> None:
        await self.wait()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._thread.submit(conn.close))
        self._thread.shutdown(wait=True)  # idle by now: its thread ends at once


def _waiting(raw: sqlite3.Connection, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn` willing to wait for the write lock (a connection that also runs statements
    on the event loop's thread keeps busy_timeout at 0 there, so the loop never sleeps)."""
    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}").close()
    try:
        return fn(*args)
    finally:
        raw.execute("PRAGMA busy_timeout=0").close()


def _stmt(steps: Sequence[Step]) -> str:
    """The statement an operation's error names: its first."""
    return next((sql for sql, _, _ in steps if sql), "")


def _db_error(stmt: str, exc: sqlite3.Error) -> sa_exc.StatementError:
    """A sqlite3 error as SQLAlchemy raises it (what callers catch), caused by `exc`."""
    error = sa_exc.DBAPIError.instance(stmt, None, exc, sqlite3.Error)
    error.__cause__ = exc
    return error


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


class SqliteLease:
    """One aiosqlite connection.

    A one-call operation outside a transaction block (a turn's begin and finish, a read) runs
    on the event loop's own thread when the connection allows it (opened with
    check_same_thread=False, as `connect` does): a WAL commit with synchronous=NORMAL takes
    tens of microseconds, less than the hand-over to the driver's thread and back (measured:
    ~40 us in the loop against ~140 us through the thread on this machine, and far worse
    when the machine is busy). It never waits on the loop's thread: busy_timeout is 0 there,
    and an operation that finds the write lock taken (another process writing) is rolled back
    and run again in the driver's thread, which waits up to BUSY_TIMEOUT_MS as before.
    Transaction blocks and user engines without that flag use the thread; WAL checkpoints
    run on a connection of their own (_WalCheckpointer), in the thread only past a bound.
    """

    reused = False
    broken = False
    max_params: int | None = None

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self.conn = conn
        self._driver = driver
        self._raw: sqlite3.Connection = driver._conn
        self.inline = False
        # Calls handed to the driver's thread, and the last one it finished: the loop's
        # thread may use the connection only while the driver's thread is idle (a cancelled
        # caller leaves its call running there).
        self._queued = 0
        self._finished = 0
        self._writes = 0
        # Where WAL checkpoints run off the writer's connection (inline leases on a WAL file).
        self._side: _WalCheckpointer | None = None

    @classmethod
    async def open(cls, conn: AsyncConnection, *, pragmas: bool) -> SqliteLease:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if not hasattr(driver, "_execute") or not hasattr(driver, "_conn"):
            raise StoreError("SqlStore on SQLite needs the aiosqlite driver")
        lease = cls(conn, driver)
        # A connection may have been given a lower limit than the library's (setlimit).
        limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
        lease.max_params = int(await lease._driver._execute(lease._raw.getlimit, limit))
        if pragmas:
            # A user's engine may lack our connect hook; cascades need foreign keys on.
            await lease.run(
                [
                    ("PRAGMA foreign_keys=ON", (), False),
                    (f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", (), False),
                ],
                in_tx=True,
            )
        try:
            lease._raw.execute("PRAGMA busy_timeout=0").close()
        except sqlite3.ProgrammingError:  # opened for its own thread only
            return lease
        lease._raw.execute("PRAGMA wal_autocheckpoint=0").close()
        lease.inline = True
        lease._side = _checkpointer_for(lease._raw)
        return lease

    def alive(self) -> bool:
        return bool(self._driver._running and self._driver._connection is not None)

    def reusable(self, error: BaseException | None) -> bool:
        # Calls run in order in the connection's thread: an interrupted one finishes (and
        # commits or rolls back) before the next starts, so only a dead thread is fatal.
        return not self.broken and self.alive()

    def _tracked(self, ticket: int, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            if self.inline:
                return _waiting(self._raw, fn, *args)
            return fn(*args)
        finally:
            self._finished = ticket

    async def _call(self, fn: Callable[..., Any], *args: Any, steps: Sequence[Step] = ()) -> Any:
        self._queued += 1
        try:
            return await self._driver._execute(self._tracked, self._queued, fn, *args)
        except sqlite3.Error as exc:
            raise _db_error(_stmt(steps), exc) from exc

    async def run(self, steps: Sequence[Step], *, in_tx: bool) -> list[Any]:
        if in_tx or not self.inline or self._finished != self._queued:
            result: list[Any] = await self._call(
                _sqlite_run, self._raw, steps, not in_tx, steps=steps
            )
            return result
        raw = self._raw
        changes = raw.total_changes
        try:
            out = _sqlite_run(raw, steps, True)
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                raise _db_error(_stmt(steps), exc) from exc
            # Rolled back by _sqlite_run: wait for the lock in the driver's thread instead.
            out = await self._call(_sqlite_run, raw, steps, True, steps=steps)
        if self._checkpoint_due(changes, 1):
            await self._checkpoint()
        return out

    def _checkpoint_due(self, changes: int, n: int) -> bool:
        """Count `n` writes if the connection's change counter moved since `changes`; every
        CHECKPOINT_EVERY writes, start a checkpoint on the side connection, or say that this
        one must checkpoint (no side connection, the side still copying, or the log past
        WAL_FRAMES_MAX). Not a
        coroutine: most operations need no await for it."""
        if self._raw.total_changes == changes:
            return False
        self._writes += n
        if self._writes < CHECKPOINT_EVERY:
            return False
        self._writes = 0
        side = self._side
        # Still copying since the last interval: the log it saw is stale and the writes go
        # on growing it, so this one checkpoints (after it) and the log restarts.
        if side is None or side.failed or side.running or side.frames >= WAL_FRAMES_MAX:
            return True
        side.start()
        return False

    async def _checkpoint(self) -> None:
        """Checkpoint on this connection, in the driver's thread, between its writes: all of
        the log is copied, so its next write restarts it (unless another connection wrote
        meanwhile: then a later checkpoint does)."""
        side = self._side
        if side is not None:
            await side.wait()  # one checkpoint at a time: this one must find no other
        await self._call(_sqlite_checkpoint, self._raw)
        if side is not None:
            side.frames = 0

    async def run_group(self, ops: Sequence[Sequence[Step]]) -> list[Outcome]:
        if len(ops) == 1:
            # Alone: exactly `run`, on the loop's thread when it can.
            try:
                return [(True, await self.run(ops[0], in_tx=False))]
            except Exception as exc:
                return [(False, exc)]
        raw = self._raw
        changes = raw.total_changes
        outcomes: list[Outcome] | None = None
        if self.inline and self._finished == self._queued:
            try:
                outcomes = [(True, out) for out in _sqlite_together(raw, ops)]
            except Exception:
                # Rolled back. In the driver's thread the group is tried again, waiting for
                # the write lock if another process holds it, then each operation alone.
                outcomes = None
        if outcomes is None:
            outcomes = await self._call(_sqlite_group, raw, ops)
        if self._checkpoint_due(changes, len(ops)):
            await self._checkpoint()
        return [
            (ok, out if ok or not isinstance(out, sqlite3.Error) else _db_error(_stmt(steps), out))
            for (ok, out), steps in zip(outcomes, ops, strict=True)
        ]

    async def begin(self) -> None:
        await self._call(_sqlite_begin, self._raw)

    async def commit(self) -> None:
        await self._call(self._raw.commit)

    async def rollback(self) -> None:
        await self._call(self._raw.rollback)

    async def close(self, *, broken: bool) -> None:
        side, self._side = self._side, None
        try:
            if side is not None:
                await side.close()
        finally:
            await self.conn.close()


def _checkpointer_for(raw: sqlite3.Connection) -> _WalCheckpointer | None:
    """A side checkpointer for the connection's database, if it is a file in WAL mode."""
    (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
    files = [file for _, name, file in raw.execute("PRAGMA database_list") if name == "main"]
    if str(mode).lower() != "wal" or not files or not files[0]:
        return None  # another journal, or a database in memory: nothing to copy aside
    return _WalCheckpointer(files[0])


# --- PostgreSQL -----------------------------------------------------------------------------


class PgLease:
    reused = False
    broken = False
    max_params: int | None = None

    def __init__(
        self, conn: AsyncConnection, driver: Any, adapter: Any = None, *, owned: bool = True
    ) -> None:
        self.conn = conn
        self._driver = driver
        # SQLAlchemy's wrapper of this connection: it knows how to translate asyncpg's errors.
        self._adapter = adapter
        self._dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
        self._tx: Any = None
        # Whether the connection is closed for good when the lease ends (the store's own
        # engine), rather than handed back to a user's pool.
        self._owned = owned

    @classmethod
    async def open(cls, conn: AsyncConnection, *, owned: bool = True) -> PgLease:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if not hasattr(driver, "transaction") or not hasattr(driver, "is_in_transaction"):
            raise StoreError("SqlStore on PostgreSQL needs the asyncpg driver")
        # TIMESTAMP (without time zone) holds UTC here, and its wire form is timestamptz's:
        # decoded as timestamptz, asyncpg returns aware UTC datetimes itself, sparing a
        # `replace(tzinfo=UTC)` per value read (half of building a loaded history's records
        # when measured). Parameters are then sent aware (SqlDialect.param_datetime): the
        # codec converts them to UTC, whatever the session's TimeZone.
        await driver.set_builtin_type_codec(  # type: ignore[union-attr]
            "timestamp", schema="pg_catalog", codec_name="timestamptz"
        )
        return cls(conn, driver, raw.dbapi_connection, owned=owned)

    def alive(self) -> bool:
        return not self._driver.is_closed() and not self.conn.invalidated

    def reusable(self, error: BaseException | None) -> bool:
        return not self.broken and self.alive() and not self._driver.is_in_transaction()

    async def run(self, steps: Sequence[Step], *, in_tx: bool) -> list[Any]:
        try:
            if len(steps) > 1 and not in_tx:
                async with self._driver.transaction():
                    return await self._exec(steps)
            return await self._exec(steps)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Cancelled mid-statement: the protocol state is unknown.
                self.broken = True
            raise

    async def _exec(self, steps: Sequence[Step]) -> list[Any]:
        # asyncpg itself rather than SQLAlchemy's adapter around it: the adapter's greenlet
        # bridge, cursor emulation and result wrapping cost several times the statement's
        # own round trip (measured: ~1.1 ms against ~0.3 ms per INSERT ... RETURNING). Rows
        # are asyncpg Records (positional, like the adapter's rows); errors are translated as
        # the adapter translates them, so callers see the same SQLAlchemy exceptions.
        driver = self._driver
        out: list[Any] = []
        for sql, args, rows in steps:
            try:
                if rows:
                    records: list[Any] = await driver.fetch(sql, *args)
                    out.append(fetch_rows(functools.partial(list, records), rows))
                else:
                    out.append(_rowcount(await driver.execute(sql, *args)))
            except Exception as exc:
                raise self._translate(exc, sql, args) from exc
        return out

    def _translate(self, exc: Exception, sql: str, args: tuple[Any, ...]) -> Exception:
        try:
            self._adapter._handle_exception(exc)  # raises the DB-API form of `exc`
        except Exception as dbapi_error:
            if isinstance(dbapi_error, self._dbapi_error):
                return sa_exc.DBAPIError.instance(sql, args, dbapi_error, self._dbapi_error)
            return dbapi_error
        return exc

    async def begin(self) -> None:
        self._tx = self._driver.transaction()
        try:
            await self._tx.start()
        except BaseException:
            self.broken = True
            raise

    async def commit(self) -> None:
        tx, self._tx = self._tx, None
        try:
            await tx.commit()
        except BaseException:
            self.broken = True
            raise

    async def rollback(self) -> None:
        tx, self._tx = self._tx, None
        await tx.rollback()

    async def close(self, *, broken: bool) -> None:
        if broken:
            # Drop the socket at once (the server rolls back what was open), then let
            # SQLAlchemy forget the connection.
            with contextlib.suppress(Exception):
                self._driver.terminate()
            await self.conn.invalidate()
        else:
            if not self._owned:
                # Back to a user's pool: SQLAlchemy there expects asyncpg's own codec.
                with contextlib.suppress(Exception):
                    await self._driver.reset_type_codec("timestamp", schema="pg_catalog")
            await self.conn.close()


def _rowcount(status: str) -> int:
    """Rows a statement touched, from PostgreSQL's command tag ("UPDATE 3", "INSERT 0 1")."""
    verb, _, count = status.rpartition(" ")
    if verb.split(" ", 1)[0] in ("INSERT", "UPDATE", "DELETE", "SELECT", "MERGE", "COPY"):
        return int(count)
    return -1


# --- the pool -------------------------------------------------------------------------------


# How long a connection beyond the pool's size may sit idle before it is closed. Closing it
# at once, as soon as nobody waits, made every burst of work open and close its overflow
# again: a new server process, its prepared statements and plans made anew, each time (50 x
# 20 turns at once, bursts in a row on the default 5 + 10 pool: 1,330-1,600 turns/s against
# 1,970-2,050 on 15 connections kept open). node-postgres closes idle clients after 10 s too.
OVERFLOW_IDLE_S = 10.0


class Pool:
    """Bounded leases over one engine, shared by every store bound to it."""

    def __init__(
        self,
        engine: AsyncEngine,
        open_lease: Callable[[AsyncConnection], Awaitable[Lease]],
        *,
        size: int,
        overflow: int,
        group_commit: bool = False,
    ) -> None:
        self.engine = engine
        self.size = size
        self.limit = size + overflow
        self.current: ContextVar[Lease | None] = ContextVar(f"nodellm_tx_{id(self)}", default=None)
        self._open_lease = open_lease
        # Idle leases, the most recently used last (taken first), and when each was released.
        self._idle: list[Lease] = []
        self._idle_since: list[float] = []
        self._reaper: asyncio.TimerHandle | None = None
        self._waiters: deque[asyncio.Future[Lease | None]] = deque()
        self._count = 0  # connections open, opening or closing
        self._closing = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        # Group commit (one connection only): operations waiting to run as the next group,
        # and whether a task is running groups (it takes whatever queued meanwhile next).
        self._group = group_commit and self.limit == 1
        self._queue: list[tuple[Sequence[Step], asyncio.Future[list[Any]]]] = []
        self._grouping = False
        # Operations of task `_ran` ran at once in this pass of the event loop (reset by a
        # callback at the start of the next): another task's arriving meanwhile queue.
        self._pass_marked = False
        self._ran: asyncio.Task[Any] | None = None
        self._pass_id = 0

    # -- figures (tests, monitoring)

    @property
    def open_count(self) -> int:
        """Connections open, being opened or being closed (never above the bound)."""
        return self._count

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return self._count - len(self._idle) - self._closing

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    # -- leases

    def _take_idle(self) -> Lease | None:
        """An idle connection that is still alive, if there is one (the dead are discarded)."""
        idle = self._idle
        while idle:
            lease = idle.pop()
            self._idle_since.pop()
            if lease.alive():
                return lease
            self._discard(lease, broken=True)
        return None

    def _keep_idle(self, lease: Lease) -> None:
        loop = asyncio.get_running_loop()
        self._idle.append(lease)
        self._idle_since.append(loop.time())
        if len(self._idle) > self.size and self._reaper is None:
            self._reaper = loop.call_later(OVERFLOW_IDLE_S, self._reap)

    def _reap(self) -> None:
        """Close the connections beyond `size` that sat idle OVERFLOW_IDLE_S, the longest idle
        first; come back for the rest when theirs is up."""
        self._reaper = None
        idle, since = self._idle, self._idle_since
        loop = asyncio.get_running_loop()
        due = loop.time() - OVERFLOW_IDLE_S
        while len(idle) > self.size and since[0] <= due:
            since.pop(0)
            self._discard(idle.pop(0), broken=False)
        if len(idle) > self.size:
            self._reaper = loop.call_later(since[0] - due, self._reap)

    async def acquire(self) -> Lease:
        if self.closed:
            raise StoreError("the store is closed")
        lease = self._take_idle()
        if lease is not None:
            return lease
        if self._count < self.limit:
            self._count += 1
            return await self._open()
        return await self._wait()

    async def _open(self) -> Lease:
        """Open a connection in a slot the caller already holds."""
        try:
            conn = await self.engine.connect()
        except BaseException:
            self._free_slot()
            raise
        try:
            return await self._open_lease(conn)
        except BaseException:
            self._spawn(_close_quietly(conn))
            self._free_slot()
            raise

    async def _wait(self) -> Lease:
        fut: asyncio.Future[Lease | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            got = await fut
        except BaseException:
            if not fut.done() or fut.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            elif fut.exception() is None:
                # Handed a lease or a slot just as this caller was cancelled: pass it on.
                handed = fut.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed)
            raise
        if got is None:
            return await self._open()  # a freed slot, reserved for this caller
        return got

    def release(self, lease: Lease, reusable: bool = True) -> None:
        if not reusable or self.closed:
            self._discard(lease, broken=not reusable)
            return
        lease.reused = True
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(lease)
                return
        self._keep_idle(lease)

    def _free_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes to this waiter
                return
        self._count -= 1

    def _discard(self, lease: Lease, *, broken: bool) -> None:
        self._closing += 1
        self._spawn(self._close_lease(lease, broken))

    async def _close_lease(self, lease: Lease, broken: bool) -> None:
        try:
            # A connection that fails to close is gone all the same.
            with contextlib.suppress(Exception):
                await lease.close(broken=broken)
        finally:
            self._closing -= 1
            self._free_slot()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- operations

    async def run(self, steps: Sequence[Step]) -> list[Any]:
        lease = self.current.get()
        if lease is not None:
            return await lease.run(steps, in_tx=True)
        if self._group:
            task = asyncio.current_task()
            if self._queue or self._grouping or (self._pass_marked and task is not self._ran):
                return await self._grouped(steps)
            # The first task's operations in this pass of the loop run at once, as they would
            # alone (a lone chat's turn waits for nothing); another task's arriving before the
            # pass is over is one of many at once: it queues, and those queued commit together.
            if not self._pass_marked:
                self._mark_pass(task)
        attempts = self.limit + 1
        while True:
            # An idle connection is taken without a coroutine for `acquire` (most operations);
            # a closed pool has none (close empties it, release discards), so acquire raises.
            lease = self._take_idle() or await self.acquire()
            try:
                out = await lease.run(steps, in_tx=False)
            except BaseException as exc:
                if not self._retry(lease, exc, attempts):
                    raise
                attempts -= 1
                continue
            self.release(lease)
            return out

    async def _grouped(self, steps: Sequence[Step]) -> list[Any]:
        if self.closed:
            raise StoreError("the store is closed")
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((steps, fut))
        if not self._grouping and not self._pass_marked:
            self._start_groups()
        # Cancelled here while queued: the future is done, so its group skips it.
        return await fut

    def _mark_pass(self, task: asyncio.Task[Any] | None, passes: int = 1) -> None:
        """For `passes` passes of the loop, operations of tasks other than `task` queue."""
        self._ran = task
        self._pass_marked = True
        self._pass_id += 1
        asyncio.get_running_loop().call_soon(self._pass_over, self._pass_id, passes)

    def _pass_over(self, pass_id: int, passes: int) -> None:
        if pass_id != self._pass_id:
            return  # a later mark holds until its own passes are over
        if passes > 1:
            asyncio.get_running_loop().call_soon(self._pass_over, pass_id, passes - 1)
            return
        self._pass_marked = False
        self._ran = None
        if self._queue and not self._grouping:
            self._start_groups()

    def _start_groups(self) -> None:
        # The task's first step runs after the callbacks already due: operations arriving
        # until then join its first group; those arriving while a group runs, the next.
        self._grouping = True
        self._spawn(self._run_groups())

    async def _run_groups(self) -> None:
        try:
            while self._queue:
                await self._run_group()
        except BaseException as exc:  # interrupted (never an operation's own error)
            self._fail_queued(exc)
            raise
        finally:
            self._grouping = False
            # Many chats at once: the callers just answered resume a pass or two later (their
            # own wakeup, then the turn's); their next operations queue, so they keep
            # committing together instead of the first to resume running ahead alone.
            self._mark_pass(None, passes=_GROUP_PASSES)

    async def _run_group(self) -> None:
        attempts = self.limit + 1
        try:
            lease = cast(GroupLease, await self.acquire())
        except Exception as exc:  # the store closed
            self._fail_queued(exc)
            return
        group = [(steps, fut) for steps, fut in self._queue if not fut.done()]
        self._queue.clear()
        while True:
            try:
                outcomes = await lease.run_group([steps for steps, _ in group])
            except BaseException as exc:
                if self._retry(lease, exc, attempts):
                    # The connection had died in the pool: the group again, on a fresh one.
                    attempts -= 1
                    try:
                        lease = cast(GroupLease, await self.acquire())
                    except BaseException as again:
                        _fail(group, again)
                        if isinstance(again, Exception):
                            return
                        raise
                    continue
                _fail(group, exc)
                if isinstance(exc, Exception):
                    return
                raise
            self.release(lease)
            break
        for (_, fut), (ok, value) in zip(group, outcomes, strict=True):
            if fut.done():  # its caller was cancelled while the group ran
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _fail_queued(self, exc: BaseException) -> None:
        queued, self._queue = self._queue, []
        _fail(queued, exc)

    def _retry(self, lease: Lease, error: BaseException, attempts: int) -> bool:
        """Release `lease` after `error`; True when the call should run again elsewhere."""
        reusable = lease.reusable(error)
        self.release(lease, reusable)
        # Only a connection that died while it sat in the pool: a fresh one failing means
        # the server is down, and an interrupted or rejected call is the caller's to see.
        return not reusable and lease.reused and isinstance(error, Exception) and attempts > 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self.current.get() is not None:
            yield
            return
        lease = await self._begin()
        token = self.current.set(lease)
        error: BaseException | None = None
        try:
            try:
                yield
            except BaseException:
                try:
                    await lease.rollback()
                except BaseException:
                    lease.broken = True
                raise
            await lease.commit()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.current.reset(token)
            self.release(lease, lease.reusable(error))

    async def _begin(self) -> Lease:
        attempts = self.limit + 1
        while True:
            lease = await self.acquire()
            try:
                await lease.begin()
            except BaseException as exc:
                if not self._retry(lease, exc, attempts):
                    raise
                attempts -= 1
                continue
            return lease

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        idle, self._idle, self._idle_since = self._idle, [], []
        for lease in idle:
            self._discard(lease, broken=False)
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(StoreError("the store is closed"))
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _fail(ops: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    """Give every waiting caller of `ops` the error that stopped their group."""
    for _, fut in ops:
        if fut.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            fut.cancel()
        else:
            fut.set_exception(exc)


async def _close_quietly(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.invalidate()
