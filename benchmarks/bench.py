"""What the library costs per turn, measured against the bare core chat on the same machine.

    .venv/bin/python benchmarks/bench.py [--turns 200] [--pg URL] [--skip-pg] [--skip-prisma]

Workload: the FakeProvider with zero latency, so what is measured is the library. Printed for
each backend, side by side in one run:
- overhead per plain `ask` turn: median(ORM turn) - median(bare core turn), same history sizes;
- statements per plain turn and per tool turn (BEGIN/COMMIT counted apart), read from the
  database driver itself (SQLite's trace callback, asyncpg's query logger);
- turns 191-200 against turns 1-10 (flat in history length?);
- `load_chat` + `messages()` on a 10,000-message chat;
- time to first chunk of `ask_stream` against the bare core stream.
Backends: sql-sqlite, sql-postgresql, and, when the query-engine stand-in is installed
(`npm ci --prefix tools/query-engine`), prisma-sqlite and prisma-postgresql on the same
databases. For prisma, round trips are HTTP requests to the query engine (what prisma-client-py
pays per call); the stand-in is a Node server over Prisma's wasm engine, so its hop is
representative of a local engine, not of the native binary's speed.
SQLite runs on a file on disk in WAL mode with synchronous=NORMAL (every commit survives a
process crash; a power loss may lose the last commits, never the file's consistency).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodellm_orm import LLM, SqlStore, Tool, connect, create_chat, create_llm, load_chat  # noqa: E402
from nodellm_orm.orm.ids import new_id, utc_now  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class Echo(Tool):
    name = "echo"
    description = "Echo a word"

    class Params(BaseModel):
        word: str

    def execute(self, params: Any) -> str:
        return params.word


class StatementCounter:
    """Counts the statements the driver really executes (data vs transaction control)."""

    def __init__(self) -> None:
        self.data = 0
        self.control = 0
        self.text: list[str] = []

    def __call__(self, sql: str) -> None:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head in CONTROL:
            self.control += 1
        else:
            self.data += 1
            self.text.append(sql.strip().split("\n")[0][:80])

    def reset(self) -> None:
        self.data = self.control = 0
        self.text.clear()


def count_prisma(client: Any, counter: StatementCounter) -> None:
    """Count HTTP requests to the query engine (one per prisma-client-py call or batch)."""
    engine = client._engine
    original = engine.request

    async def counting(method: str, path: str, **kwargs: Any) -> Any:
        counter(f"{method} {path}")
        return await original(method, path, **kwargs)

    engine.request = counting


async def attach_counter(store: SqlStore, counter: StatementCounter) -> None:
    """Count what the driver executes: SQLite's trace callback sees every statement,
    transaction control included; on PostgreSQL, SQLAlchemy's cursor events see every
    data statement (asyncpg's own BEGIN/COMMIT of a multi-statement call are not seen)."""
    if store.dialect == "sqlite":
        pool = store._s.pool  # SQLite: the pool's one connection
        lease = await pool.acquire()
        try:
            raw = lease._raw  # type: ignore[attr-defined]
            await lease._driver._execute(raw.set_trace_callback, counter)  # type: ignore[attr-defined]
        finally:
            pool.release(lease)
        return
    event.listen(
        store.engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: counter(statement),
    )


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def bare_turns(turns: int) -> list[float]:
    llm = create_llm(provider=FakeProvider())
    chat = llm.chat()
    return [await timed(lambda i=i: chat.ask(f"question {i}")) for i in range(turns)]


async def orm_turns(db: Any, llm: LLM, turns: int) -> list[float]:
    chat = await create_chat(db, llm)
    return [await timed(lambda i=i: chat.ask(f"question {i}")) for i in range(turns)]


async def count_turn(db: Any, counter: StatementCounter, tool: bool) -> tuple[int, int]:
    fake = FakeProvider()
    llm = create_llm(provider=fake)
    chat = await create_chat(db, llm)
    if tool:
        chat.with_tool(Echo)
    await chat.ask("warm up")
    if tool:
        fake.reply_tool_call("echo", {"word": "hi"}).reply("done")
    counter.reset()
    await chat.ask("count me")
    return counter.data, counter.control


async def seed_messages(db: Any, llm: LLM, count: int) -> str:
    chat = await create_chat(db, llm)
    store = chat.store
    start = utc_now()
    rows = []
    for i in range(count):
        rows.append(
            {
                "id": new_id(),
                "chatId": chat.id,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"message number {i} with a few words of text",
                "createdAt": start + timedelta(milliseconds=i // 3),
            }
        )
    for i in range(0, count, 500):
        await store.insert_messages(rows[i : i + 500])
    return chat.id


async def load_times(db: Any, llm: LLM, chat_id: str, runs: int = 7) -> list[float]:
    async def load() -> None:
        chat = await load_chat(db, llm, chat_id)
        assert chat is not None
        rows = await chat.messages()
        assert len(rows) >= 10_000

    await load()
    return [await timed(load) for _ in range(runs)]


async def first_chunk(make_stream: Callable[[], Any]) -> float:
    start = time.perf_counter()
    stream = make_stream()
    iterator = stream.__aiter__()
    await iterator.__anext__()
    elapsed = time.perf_counter() - start
    async for _ in iterator:
        pass
    return elapsed


async def stream_times(db: Any, runs: int) -> tuple[list[float], list[float]]:
    bare_llm = create_llm(provider=FakeProvider(chunk_size=4))
    bare = bare_llm.chat()
    orm_llm = create_llm(provider=FakeProvider(chunk_size=4))
    chat = await create_chat(db, orm_llm)
    core_times = [await first_chunk(lambda: bare.stream("stream this")) for _ in range(runs)]
    orm_times = [await first_chunk(lambda: chat.ask_stream("stream this")) for _ in range(runs)]
    return core_times, orm_times


async def bench_backend(
    name: str, db: Any, counter: StatementCounter, turns: int
) -> dict[str, str]:
    llm = create_llm(provider=FakeProvider())
    # Warm caches and compiled statements, and bring SQLite's WAL to its steady state
    # (periodic checkpoints), so early and late turns pay the same amortised costs.
    await orm_turns(db, llm, 150)
    core = await bare_turns(turns)
    orm = await orm_turns(db, llm, turns)
    overhead = ms(orm) - ms(core)
    plain = await count_turn(db, counter, tool=False)
    tool = await count_turn(db, counter, tool=True)
    # Medians: a WAL checkpoint lands on some turn every ~30 turns; it is no history cost.
    early = statistics.median(orm[:10])
    late = statistics.median(orm[190:200]) if turns >= 200 else float("nan")
    early_core = statistics.median(core[:10])
    late_core = statistics.median(core[190:200]) if turns >= 200 else float("nan")
    wide = (
        statistics.median(orm[150:200]) / statistics.median(orm[:50])
        if turns >= 200
        else float("nan")
    )
    chat_id = await seed_messages(db, llm, 10_000)
    loads = await load_times(db, llm, chat_id)
    core_first, orm_first = await stream_times(db, 50)
    unit = "engine requests" if name.startswith("prisma") else "statements"
    return {
        "backend": name,
        "ORM turn, median": f"{ms(orm):.3f} ms (mean {statistics.mean(orm) * 1000:.3f})",
        "bare core turn, median": f"{ms(core):.3f} ms",
        "overhead per plain turn": f"{overhead:.3f} ms",
        "round trips / plain turn": f"{plain[0]} {unit} (+{plain[1]} BEGIN/COMMIT)",
        "round trips / tool turn": f"{tool[0]} {unit} (+{tool[1]} BEGIN/COMMIT)",
        "turn 191-200 / turn 1-10": f"{late / early:.2f}x "
        f"(bare core {late_core / early_core:.2f}x)",
        "turn 151-200 / turn 1-50": f"{wide:.2f}x (steadier on a noisy engine hop)",
        "overhead 191-200 vs 1-10": f"{(late - late_core) * 1000:.3f} vs "
        f"{(early - early_core) * 1000:.3f} ms",
        "load_chat+messages() 10k": f"{ms(loads):.1f} ms (median of {len(loads)})",
        "first chunk: ORM vs core": f"{ms(orm_first):.3f} vs {ms(core_first):.3f} ms",
    }


def print_table(results: list[dict[str, str]]) -> None:
    keys = list(results[0])
    width = max(len(k) for k in keys)
    cols = [max(len(r[k]) for k in keys) for r in results]
    for key in keys:
        cells = "  ".join(r[key].ljust(c) for r, c in zip(results, cols, strict=True))
        print(f"{key.ljust(width)}  {cells}")


async def bench_database(dialect: str, url: str, args: argparse.Namespace) -> list[dict[str, str]]:
    """Both backends on one database, one after the other."""
    results = []
    store = await connect(url)
    try:
        counter = StatementCounter()
        await attach_counter(store, counter)
        label = "sql-sqlite (file, WAL)" if dialect == "sqlite" else "sql-postgresql"
        results.append(await bench_backend(label, store, counter, args.turns))
    finally:
        await store.close()
    if args.skip_prisma:
        return results
    from tests.support.prisma_engine import (
        connected_prisma,
        engine_unavailable_reason,
        prisma_database_url,
    )

    reason = engine_unavailable_reason()
    if reason is not None:
        print(f"prisma-{dialect} skipped: {reason}", file=sys.stderr)
        return results
    work = Path(tempfile.mkdtemp(prefix="nodellm-bench-prisma-"))
    async with connected_prisma(
        provider=dialect, database_url=prisma_database_url(url), work_dir=work
    ) as (client, _):
        counter = StatementCounter()
        count_prisma(client, counter)
        results.append(await bench_backend(f"prisma-{dialect}", client, counter, args.turns))
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--pg", help="PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-prisma", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        results += await bench_database("sqlite", sqlite_url, args)
        if not args.skip_pg:
            pg = args.pg
            if pg is None:
                from tests.support.postgres import create_database, postgres_url

                server = postgres_url()
                pg = await create_database(server) if server else None
            if pg:
                results += await bench_database("postgresql", pg, args)
            else:
                print("no PostgreSQL server: skipped", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
