"""The prisma backend against the sql backend, per turn, in one run on the same databases.

    .venv/bin/python benchmarks/prisma_bench.py [--turns 100] [--skip-pg]

Needs the query-engine stand-in (tools/query-engine, `npm ci` there) and node. For each
dialect, one database is migrated by our runner and used by both backends:
- round trips per plain turn and per tool turn: prisma = HTTP requests to the query engine
  (what prisma-client-py pays per call), sql = statements the driver executes (SQLite's
  trace callback; on PostgreSQL SQLAlchemy's cursor events);
- overhead per plain `ask`: median(ORM turn) - median(bare core turn), FakeProvider with no
  latency, so what is measured is the library plus the database.
The stand-in is a Node server over the wasm engine, not Prisma's native binary: its latency is
representative of an HTTP hop to a local engine, not of the native engine's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodellm_orm import LLM, SqlStore, Tool, connect, create_chat, create_llm
from nodellm_orm.testing import FakeProvider
from tests.support.postgres import create_database, drop_database, postgres_url
from tests.support.prisma_engine import connected_prisma, prisma_database_url


class Echo(Tool):
    name = "echo"
    description = "Echo a word"

    class Params(BaseModel):
        word: str

    def execute(self, params: Any) -> str:
        return params.word


CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


class Counter:
    """Data statements or requests; transaction control (BEGIN/COMMIT...) is not counted."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, statement: str = "") -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head not in CONTROL:
            self.n += 1


async def count_sql(store: SqlStore, counter: Counter) -> None:
    shared = store._s
    lease = await shared.acquire()
    shared.release(lease)
    if shared.name == "sqlite":
        for lease in shared.all:
            raw = lease._raw  # type: ignore[attr-defined]
            await lease._driver._execute(raw.set_trace_callback, counter)  # type: ignore[attr-defined]
        return
    event.listen(
        store.engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: counter(statement),
    )


def count_prisma(client: Any, counter: Counter) -> None:
    engine = client._engine
    original = engine.request

    async def counting(method: str, path: str, **kwargs: Any) -> Any:
        counter(path)
        return await original(method, path, **kwargs)

    engine.request = counting


async def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def turn_costs(db: Any, counter: Counter) -> tuple[int, int]:
    fake = FakeProvider()
    chat = await create_chat(db, create_llm(provider=fake))
    chat.with_tool(Echo)
    await chat.ask("warm up")
    counter.n = 0
    await chat.ask("plain")
    plain = counter.n
    fake.reply_tool_call("echo", {"word": "hi"}).reply("done")
    counter.n = 0
    await chat.ask("tool")
    return plain, counter.n


async def turn_times(db: Any, llm: LLM | None, turns: int) -> list[float]:
    if db is None:
        chat: Any = create_llm(provider=FakeProvider()).chat()
    else:
        assert llm is not None
        chat = await create_chat(db, llm)
    return [await timed(lambda i=i: chat.ask(f"question {i}")) for i in range(turns)]


def med_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def bench(dialect: str, url: str, work: Path, turns: int) -> list[tuple[str, str, str]]:
    sql = await connect(url, migrate=True)
    rows = []
    try:
        async with connected_prisma(
            provider=dialect, database_url=prisma_database_url(url), work_dir=work
        ) as (client, _):
            sql_counter, prisma_counter = Counter(), Counter()
            await count_sql(sql, sql_counter)
            count_prisma(client, prisma_counter)
            sql_trips = await turn_costs(sql, sql_counter)
            prisma_trips = await turn_costs(client, prisma_counter)
            llm = create_llm(provider=FakeProvider())
            bare = med_ms(await turn_times(None, None, turns))
            sql_ms = med_ms(await turn_times(sql, llm, turns))
            prisma_ms = med_ms(await turn_times(client, llm, turns))
            rows.append(
                (
                    f"sql-{dialect}",
                    f"{sql_trips[0]} / {sql_trips[1]} statements",
                    f"{sql_ms - bare:.2f} ms",
                )
            )
            rows.append(
                (
                    f"prisma-{dialect}",
                    f"{prisma_trips[0]} / {prisma_trips[1]} engine requests",
                    f"{prisma_ms - bare:.2f} ms",
                )
            )
    finally:
        await sql.close()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prisma-bench-"))
    rows = await bench("sqlite", f"sqlite:///{work / 'bench.db'}", work, args.turns)
    server = None if args.skip_pg else postgres_url()
    if server is not None:
        url = await create_database(server, prefix="bench")
        try:
            rows += await bench("postgresql", url, work, args.turns)
        finally:
            await drop_database(url)
    print(f"{'backend':<20} {'round trips (plain / tool turn)':<36} overhead per plain turn")
    for name, trips, overhead in rows:
        print(f"{name:<20} {trips:<36} {overhead}")


if __name__ == "__main__":
    asyncio.run(main())
