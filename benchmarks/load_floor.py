"""The floor under `load_chat` + `messages()` of 10,000 messages: the driver alone.

    .venv/bin/python benchmarks/load_floor.py [--rounds 15] [--messages 10000]
        [--skip-pg | --skip-sqlite]

Seeds bench.py's 10,000-message chat, takes the very SELECT the store runs for it (its own
compiled statement and parameters) and, alternating in one run, times:

- `load_chat` + `messages()` through nodellm-orm;
- the same statement on a plain driver connection, no nodellm-orm at all: `sqlite3` and its
  `fetchall()`, or `asyncpg` and its `fetch()` (binary protocol, prepared statement, the
  same timestamp codec as the store's connections): the rows as tuples or asyncpg Records,
  before any record is built;
- one empty MessageRecord per row, allocated and nothing set: what any list of records
  costs on top of the driver's rows;
- on SQLite, that statement without its ORDER BY (SQLite computes the order key of every row,
  then sorts), and on PostgreSQL `EXPLAIN ANALYZE`'s execution time (the server's share).

Medians of wall and CPU time (this process only: PostgreSQL's own CPU is not in it) are
printed; on a machine shared with other jobs, read the CPU columns.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import seed_messages  # noqa: E402

from nodellm_orm import TableNames, connect, create_llm, load_chat  # noqa: E402
from nodellm_orm.model.records import MessageRecord  # noqa: E402
from nodellm_orm.stores import sql as sql_store  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402

Timed = Callable[[], Awaitable[Any]]
ALLOCATION = "as many empty MessageRecords, allocated alone"


async def measure(cases: dict[str, Timed], rounds: int) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) per case, the cases alternating round after round."""
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        await fn()  # warm: compiled and prepared statements, page cache
    for _ in range(rounds):
        for name, fn in cases.items():
            gc.collect()
            t, c = time.perf_counter(), time.process_time()
            result = await fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            del result  # freeing the rows or records is not the load's time
    return {n: (statistics.median(wall[n]) * 1000, statistics.median(cpu[n]) * 1000) for n in cases}


def report(label: str, figures: dict[str, tuple[float, float]]) -> None:
    print(f"\n{label}: median of the rounds, ms")
    print(f"{'':58} {'wall':>8} {'CPU':>8}")
    for name, (w, c) in figures.items():
        print(f"{name:58} {w:8.1f} {c:8.1f}")


async def store_select(store: Any, chat_id: str) -> tuple[str, tuple[Any, ...]]:
    """The statement and arguments the store's list_messages(chat_id) runs."""
    bound = await store.bind(TableNames())
    assert isinstance(bound, sql_store.SqlStore)
    page = sql_store._MESSAGE_PAGE
    sql, params = bound._page(bound._t.message, page, chat_id, None, None)
    text, args, _ = sql.step(params, True)
    return text, args


async def floor(
    label: str, url: str, rounds: int, count: int
) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """(median wall and CPU ms per case, one-off figures) for one database."""
    store = await connect(url)
    llm = create_llm(provider=FakeProvider())
    try:
        chat_id = await seed_messages(store, llm, count)
        text, args = await store_select(store, chat_id)

        async def orm() -> Any:
            chat = await load_chat(store, llm, chat_id)
            assert chat is not None
            rows = await chat.messages()
            assert len(rows) == count
            return chat, rows

        async def allocate() -> Any:
            # The least any list of records costs: one empty object per row, nothing set.
            new = object.__new__
            return [new(MessageRecord) for _ in range(count)]

        cases: dict[str, Timed] = {
            "load_chat + messages() (nodellm-orm)": orm,
            ALLOCATION: allocate,
        }
        extra: dict[str, float] = {}
        if label == "sqlite":
            raw = sqlite3.connect(url.removeprefix("sqlite:///"))
            unordered = text.split(" ORDER BY ")[0]

            async def bare() -> Any:
                rows = raw.execute(text, args).fetchall()
                assert len(rows) == count
                return rows

            async def bare_unordered() -> Any:
                rows = raw.execute(unordered, args).fetchall()
                assert len(rows) == count
                return rows

            cases["the same SELECT, sqlite3 fetchall() alone"] = bare
            cases["the same SELECT without ORDER BY, sqlite3 alone"] = bare_unordered
        else:
            import asyncpg

            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.set_builtin_type_codec(
                "timestamp", schema="pg_catalog", codec_name="timestamptz"
            )

            async def bare_pg() -> Any:
                rows = await conn.fetch(text, *args)
                assert len(rows) == count
                return rows

            cases["the same SELECT, asyncpg fetch() alone"] = bare_pg
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}", *args)
            extra["server execution (EXPLAIN ANALYZE), once"] = json.loads(plan[0][0])[0][
                "Execution Time"
            ]
        figures = await measure(cases, rounds)
        if label == "sqlite":
            raw.close()
        else:
            await conn.close()
        return figures, extra
    finally:
        await store.close()


def show(label: str, found: tuple[dict[str, tuple[float, float]], dict[str, float]]) -> None:
    figures, extra = found
    report(label, figures)
    for name, value in extra.items():
        print(f"{name:58} {value:8.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the chat")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print("load average:", f.read().strip())
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
            url = f"sqlite:///{Path(tmp) / 'floor.db'}"
            show("sqlite", await floor("sqlite", url, args.rounds, args.messages))
    if not args.skip_pg:
        from tests.support.postgres import create_database, postgres_url

        server = postgres_url()
        if server is None:
            print("no PostgreSQL server (NODELLM_TEST_PG_URL): skipped", file=sys.stderr)
        else:
            url = await create_database(server)
            show("postgresql", await floor("postgresql", url, args.rounds, args.messages))
    with open("/proc/loadavg") as f:
        print("\nload average:", f.read().strip())


if __name__ == "__main__":
    asyncio.run(main())
