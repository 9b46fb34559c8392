"""Another process's hold on a SQLite file's write lock, for tests of how a store waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


@asynccontextmanager
async def write_lock_held(path: Path) -> AsyncIterator[threading.Event]:
    """A second connection (in a thread, as another process would) holds the write lock
    (BEGIN IMMEDIATE) from entry until the yielded event is set, or the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(10)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10), "the lock was not taken"
        yield release
    finally:
        release.set()
        holder.join()
