"""What the library costs per turn, measured against the bare core chat on the same machine.

    .venv/bin/python benchmarks/bench.py [--turns 200] [--pg URL] [--skip-pg] [--skip-prisma]
        [--shapes 50x20,200x10] [--load 10000] [--plot out.png] [--scale N]

Workload: the FakeProvider with zero latency, so what is measured is the library. Printed for
each backend, side by side in one run:
- overhead per plain `ask` turn: median(ORM turn) - median(bare core turn), same history sizes;
- statements per plain turn and per tool turn (BEGIN/COMMIT counted apart), read from the
  database driver itself (SQLite's trace callback, asyncpg's query logger);
- turns 191-200 against turns 1-10 (flat in history length?);
- `load_chat` + `messages()` on a 10,000-message chat;
- time to first chunk of `ask_stream` against the bare core stream;
- many chats at once in one process (`--shapes`, chats x turns each, all concurrent on one
  store with default settings): turns/s, p99 and worst turn;
- peak Python memory (tracemalloc) of that 10,000-message load, in a run of its own.
`--plot out.png` also draws each backend's per-turn cost against turn number (needs the
`bench` extra: `pip install -e '.[bench]'`). `--scale N` instead compares the per-turn cost
on an empty database with the cost on one seeded with N messages across N/100 chats (bulk
inserts; on PostgreSQL then vacuumed, analysed and checkpointed, as a long-lived database is,
see `settle`), alternating rounds between the two so machine noise hits both alike.
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
import contextlib
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import RunStats, Turn, ms, parse_shapes, run_concurrent, sequential  # noqa: E402

from nodellm_orm import LLM, Tool, connect, create_chat, create_llm, load_chat  # noqa: E402
from nodellm_orm.orm.ids import new_id, utc_now  # noqa: E402
from nodellm_orm.stores.sql import SqlStore  # noqa: E402
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
        if sql.startswith("-- "):
            # SQLite traces a statement run inside one of ours (a trigger's, or the PRAGMA
            # behind begin_turn's pragma_data_version()) with this prefix: not one of ours.
            return
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
    transaction control included; on PostgreSQL, asyncpg's query logger sees every data
    statement (its own BEGIN/COMMIT of a multi-statement call are not seen)."""
    if store.dialect == "sqlite":
        pool = store._s.pool  # SQLite: the pool's one connection
        lease = await pool.acquire()
        try:
            raw = lease._raw  # type: ignore[attr-defined]
            await lease._driver._execute(raw.set_trace_callback, counter)  # type: ignore[attr-defined]
        finally:
            pool.release(lease)
        return

    # PostgreSQL: asyncpg's query logger on every connection the store holds or opens (the
    # store talks to asyncpg directly, so SQLAlchemy's cursor events would see nothing).
    def log(driver: Any) -> None:
        driver.add_query_logger(lambda query: counter(query.query))

    for lease in store._s.pool._idle:
        log(lease._driver)  # type: ignore[attr-defined]
    event.listen(
        store.engine.sync_engine,
        "connect",
        lambda dbapi_conn, _record: log(dbapi_conn.driver_connection),
    )


async def timed(fn: Callable[[], Any]) -> float:
    """Seconds until `fn()` returns; what it returned is freed after the clock stops."""
    start = time.perf_counter()
    result = await fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


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


def message_rows(chat_id: str, count: int, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "chatId": chat_id,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"message number {i} with a few words of text",
            "createdAt": start + timedelta(milliseconds=i // 3),
        }
        for i in range(count)
    ]


async def seed_messages(db: Any, llm: LLM, count: int) -> str:
    chat = await create_chat(db, llm)
    rows = message_rows(chat.id, count, utc_now())
    for i in range(0, count, 500):
        await chat.store.insert_messages(rows[i : i + 500])
    return chat.id


async def load_times(db: Any, llm: LLM, chat_id: str, count: int, runs: int = 7) -> list[float]:
    async def load() -> Any:
        chat = await load_chat(db, llm, chat_id)
        assert chat is not None
        rows = await chat.messages()
        assert len(rows) >= count
        return chat, rows  # freed once timed, not inside the time

    await load()
    return [await timed(load) for _ in range(runs)]


async def load_peak_memory(db: Any, llm: LLM, chat_id: str) -> tuple[int, int]:
    """Peak and retained bytes Python allocates for load_chat + messages() (tracemalloc)."""
    tracemalloc.start()
    try:
        chat = await load_chat(db, llm, chat_id)
        assert chat is not None
        rows = await chat.messages()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del rows
    return peak, retained


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


async def new_conversations(db: Any, llm: LLM, chats: int) -> list[Turn]:
    """`chats` new chats on one store, each as a conversation asking question i at turn i."""
    conversations: list[Turn] = []
    for _ in range(chats):
        chat = await create_chat(db, llm)
        conversations.append(lambda i, chat=chat: chat.ask(f"question {i}"))
    return conversations


async def concurrent_turns(db: Any, llm: LLM, chats: int, turns: int, deadline: float) -> RunStats:
    """`chats` chats on one store, each asking `turns` times in a row, all at once."""
    return await run_concurrent(await new_conversations(db, llm, chats), turns, deadline)


def ratio(values: list[float], late: slice, early: slice) -> float:
    if len(values) < (late.stop or 0):
        return float("nan")
    return statistics.median(values[late]) / statistics.median(values[early])


async def bench_backend(
    name: str, db: Any, counter: StatementCounter, args: argparse.Namespace
) -> tuple[dict[str, str], list[float]]:
    """The table's column for one backend, and its per-turn seconds in turn order."""
    turns = args.turns
    llm = create_llm(provider=FakeProvider())
    # Warm caches and compiled statements, and bring SQLite's WAL to its steady state
    # (periodic checkpoints), so early and late turns pay the same amortised costs.
    await orm_turns(db, llm, args.warmup)
    core = await bare_turns(turns)
    orm = await orm_turns(db, llm, turns)
    overhead = ms(orm) - ms(core)
    plain = await count_turn(db, counter, tool=False)
    tool = await count_turn(db, counter, tool=True)
    # Medians: a WAL checkpoint lands on some turn every ~30 turns; it is no history cost.
    late, early = slice(190, 200), slice(0, 10)
    early_s = statistics.median(orm[early])
    late_s = statistics.median(orm[late]) if turns >= 200 else float("nan")
    early_core = statistics.median(core[early])
    late_core = statistics.median(core[late]) if turns >= 200 else float("nan")
    chat_id = await seed_messages(db, llm, args.load)
    loads = await load_times(db, llm, chat_id, args.load)
    peak, retained = await load_peak_memory(db, llm, chat_id)
    core_first, orm_first = await stream_times(db, 50)
    unit = "engine requests" if name.startswith("prisma") else "statements"
    row = {
        "backend": name,
        "ORM turn, median": f"{ms(orm):.3f} ms (mean {statistics.mean(orm) * 1000:.3f})",
        "bare core turn, median": f"{ms(core):.3f} ms",
        "overhead per plain turn": f"{overhead:.3f} ms",
        "round trips / plain turn": f"{plain[0]} {unit} (+{plain[1]} BEGIN/COMMIT)",
        "round trips / tool turn": f"{tool[0]} {unit} (+{tool[1]} BEGIN/COMMIT)",
        "turn 191-200 / turn 1-10": f"{ratio(orm, late, early):.2f}x "
        f"(bare core {ratio(core, late, early):.2f}x)",
        "turn 151-200 / turn 1-50": f"{ratio(orm, slice(150, 200), slice(0, 50)):.2f}x "
        "(steadier on a noisy engine hop)",
        "overhead 191-200 vs 1-10": f"{(late_s - late_core) * 1000:.3f} vs "
        f"{(early_s - early_core) * 1000:.3f} ms",
        f"load_chat+messages() {args.load:,}": f"{ms(loads):.1f} ms (median of {len(loads)})",
        "  peak / retained memory": f"{peak / 2**20:.1f} / {retained / 2**20:.1f} MiB "
        "(tracemalloc)",
        "first chunk: ORM vs core": f"{ms(orm_first):.3f} vs {ms(core_first):.3f} ms",
    }
    for chats, per_chat in args.shapes:
        stats = await concurrent_turns(db, llm, chats, per_chat, args.deadline)
        row[f"{chats} chats x {per_chat} turns"] = stats.summary()
    return row, orm


def print_table(results: list[dict[str, str]]) -> None:
    keys = list(results[0])
    width = max(len(k) for k in keys)
    cols = [max(len(r[k]) for k in keys) for r in results]
    for key in keys:
        cells = "  ".join(r[key].ljust(c) for r, c in zip(results, cols, strict=True))
        print(f"{key.ljust(width)}  {cells}")


def plot(series: dict[str, list[float]], core: list[float], path: Path) -> None:
    """Per-turn cost against turn number: each turn faint, a rolling median of 9 drawn over."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rolling(values: list[float]) -> list[float]:
        return [statistics.median(values[max(0, i - 4) : i + 5]) for i in range(len(values))]

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    for label, values in [*series.items(), ("bare core chat (no database)", core)]:
        xs = range(1, len(values) + 1)
        per_ms = [v * 1000 for v in values]
        (line,) = ax.plot(xs, rolling(per_ms), label=label, linewidth=1.8)
        ax.plot(xs, per_ms, color=line.get_color(), alpha=0.2, linewidth=0.8)
    ax.set_xlabel("turn number (history grows by two messages a turn)")
    ax.set_ylabel("ms per plain turn (zero-latency model)")
    ax.set_yscale("log")
    ax.set_title("nodellm-orm: cost of a turn against turn number")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot written to {path}", file=sys.stderr)


async def open_databases(dialect: str, args: argparse.Namespace, tmp: Path) -> str | None:
    if dialect == "sqlite":
        return f"sqlite:///{tmp / f'bench-{new_id()}.db'}"
    if args.skip_pg:
        return None
    if args.pg and not args.scale:
        return str(args.pg)
    from tests.support.postgres import create_database, postgres_url

    server = args.pg or postgres_url()
    if not server:
        print("no PostgreSQL server: skipped", file=sys.stderr)
        return None
    return str(await create_database(server))


def label_of(dialect: str) -> str:
    return "sql-sqlite (file, WAL)" if dialect == "sqlite" else "sql-postgresql"


async def bench_database(
    dialect: str, url: str, args: argparse.Namespace, series: dict[str, list[float]]
) -> list[dict[str, str]]:
    """Both backends on one database, one after the other."""
    results = []
    store = await connect(url)
    try:
        counter = StatementCounter()
        await attach_counter(store, counter)
        row, per_turn = await bench_backend(label_of(dialect), store, counter, args)
        results.append(row)
        series[label_of(dialect)] = per_turn
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
        row, per_turn = await bench_backend(f"prisma-{dialect}", client, counter, args)
        results.append(row)
        series[f"prisma-{dialect}"] = per_turn
    return results


async def seed_scale(store: SqlStore, total: int, per_chat: int = 100) -> float:
    """`total` messages across total/per_chat chats, in bulk inserts; returns seconds taken."""
    start = time.perf_counter()
    at = utc_now() - timedelta(days=30)
    batch: list[dict[str, Any]] = []
    for first in range(0, total, per_chat):
        chat_id = new_id()
        await store.create_chat({"id": chat_id, "createdAt": at, "updatedAt": at})
        batch += message_rows(chat_id, min(per_chat, total - first), at)
        if len(batch) >= 2000:
            await store.insert_messages(batch)
            batch = []
    if batch:
        await store.insert_messages(batch)
    return time.perf_counter() - start


async def settle(store: SqlStore) -> None:
    """Leave a just-seeded PostgreSQL database as a long-lived one is: vacuumed, analysed and
    checkpointed. Otherwise autovacuum starts on the million fresh rows while the turns are
    timed (seen in pg_stat_activity: `autovacuum: VACUUM ANALYZE public.LlmMessage`), and on
    two cores it takes CPU from the turns on that side only. Measured so (one run, load
    average ~12): 1.11x wall, 1.14x client CPU, 1.17x server CPU per turn against the empty
    database; vacuumed and checkpointed first, 1.07x, 1.02x and 1.12x."""
    if store.dialect != "postgresql":
        return  # SQLite has no background maintenance to wait for
    async with store.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("LlmChat", "LlmMessage"):
            await conn.exec_driver_sql(f'VACUUM (ANALYZE) "{table}"')
        # Needs superuser or pg_checkpoint; without it the seeding's dirty pages are written
        # by the checkpointer whenever it next runs, on both databases' server alike.
        with contextlib.suppress(DBAPIError):
            await conn.exec_driver_sql("CHECKPOINT")


async def scale_times(
    dialect: str, args: argparse.Namespace, tmp: Path
) -> tuple[float, list[float], list[float]] | None:
    """(seconds to seed, turn seconds on an empty database, on one of `--scale` messages)."""
    empty_url = await open_databases(dialect, args, tmp)
    full_url = await open_databases(dialect, args, tmp)
    if empty_url is None or full_url is None:
        return None
    empty, full = await connect(empty_url), await connect(full_url)
    try:
        seconds = await seed_scale(full, args.scale)
        await settle(full)
        llm = create_llm(provider=FakeProvider())
        for store in (empty, full):  # warm both alike
            await orm_turns(store, llm, args.warmup)
        times: dict[int, list[float]] = {0: [], 1: []}
        # Alternate rounds of 50 turns on a fresh chat in each database: noise hits both alike.
        for _ in range(max(1, args.turns // 50)):
            for key, store in enumerate((empty, full)):
                chat = await create_chat(store, llm)
                times[key] += await sequential(lambda i, c=chat: c.ask(f"question {i}"), 50)
    finally:
        await empty.close()
        await full.close()
    return seconds, times[0], times[1]


async def bench_scale(dialect: str, args: argparse.Namespace, tmp: Path) -> dict[str, str] | None:
    """Per-turn cost on an empty database against one holding `--scale` messages."""
    measured = await scale_times(dialect, args, tmp)
    if measured is None:
        return None
    seconds, empty, full = measured
    e, f = ms(empty), ms(full)
    return {
        "backend": label_of(dialect),
        "messages seeded": f"{args.scale:,} in {-(-args.scale // 100):,} chats ({seconds:.1f} s)",
        "turn, empty database": f"{e:.3f} ms (median of {len(empty)})",
        f"turn, {args.scale:,} messages": f"{f:.3f} ms (median of {len(full)})",
        "seeded / empty": f"{f / e:.2f}x",
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=150, help="turns before measuring")
    parser.add_argument("--load", type=int, default=10_000, help="messages in the loaded chat")
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=parse_shapes("50x20,200x10"),
        help="concurrent runs, CHATSxTURNS[,...]; '' for none",
    )
    parser.add_argument(
        "--deadline", type=float, default=60.0, help="seconds before a concurrent run is cut"
    )
    parser.add_argument("--plot", type=Path, help="write per-turn cost by turn number (PNG)")
    parser.add_argument("--scale", type=int, help="per-turn cost empty vs N messages, only")
    parser.add_argument("--pg", help="PostgreSQL URL (default: NODELLM_TEST_PG_URL or a throwaway)")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-prisma", action="store_true")
    args = parser.parse_args()
    results: list[dict[str, str]] = []
    series: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        try:
            for dialect in ("sqlite", "postgresql"):
                if args.scale:
                    row = await bench_scale(dialect, args, Path(tmp))
                    results += [row] if row else []
                    continue
                url = await open_databases(dialect, args, Path(tmp))
                if url is not None:
                    results += await bench_database(dialect, url, args, series)
        finally:
            if not args.skip_pg:  # the PostgreSQL databases open_databases made
                from tests.support.postgres import drop_created

                await drop_created()
    print_table(results)
    if args.plot and series:
        plot(series, await bare_turns(args.turns), args.plot)


if __name__ == "__main__":
    asyncio.run(main())
