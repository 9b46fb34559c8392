"""How long each dashboard page takes to render over 10,000 chats and 1,000,000 messages.

    .venv/bin/python benchmarks/dashboard_bench.py [--chats 10000] [--turns 50] [--skip-pg]
        [--sqlite /tmp/bench.db] [--pg-database dash_bench]   # keep the seeds, reuse them

Seeds a fresh SQLite file and a fresh PostgreSQL database (NODELLM_TEST_PG_URL, else a
throwaway local cluster) with bulk inserts: chats spread over the last 90 days, each with
`--turns` turns (a user and an assistant message per turn, so 50 turns = 100 messages), one
request row per round trip (a tenth of the turns call a tool: two requests and a tool-call
row; 2% of requests fail with 429/500), reasoning tokens on one model, a custom `userId`
column, and an agent session on every tenth chat. Then it requests each page through the
ASGI app in-process (SQL, grouping and template rendering included; no network) and prints
the first (cold) time and the median of the next runs, in wall-clock time and in this
process's CPU time (which includes SQLite's work, done in the driver's threads, but not the
PostgreSQL server's). The machine's load average is printed too: on a shared machine the
wall-clock figures measure the neighbours as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy.engine import make_url

from nodellm_orm import connect
from nodellm_orm.dashboard import create_app

MODELS = [  # (provider, model, input $/token, output $/token, thinks)
    ("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6, False),
    ("openai", "o3-mini", 1.1e-6, 4.4e-6, True),
    ("anthropic", "claude-sonnet-4", 3e-6, 15e-6, False),
    ("gemini", "gemini-2.0-flash", 0.1e-6, 0.4e-6, False),
]
AGENTS = ["SupportAgent", "ResearchAgent", "BillingAgent"]
RUNS = 7


def turns_of(c: int, turns: int, long_turns: int) -> int:
    """Chat 0 is the long one; the chats after it are empty, as many as keep the total of
    turns at chats x turns."""
    if long_turns <= turns:
        return turns
    if c == 0:
        return long_turns
    return 0 if c <= (long_turns - turns) // turns else turns


def rows(
    chats: int, turns: int, long_turns: int = 0, seed: int = 7
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """(table, batch) pairs: every row of the seeded database, one chat at a time."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=90)
    for c in range(chats):
        provider, model, pin, pout, thinks = MODELS[c % len(MODELS)]
        chat_id = f"chat-{c:06d}"
        n_turns = turns_of(c, turns, long_turns)
        span = (now - start).total_seconds() - n_turns * 120
        t0 = start + timedelta(seconds=rng.uniform(0, span))
        chat = [(chat_id, model, provider, "You are a helpful assistant.", t0, f"u-{c % 500}")]
        messages: list[tuple[Any, ...]] = []
        calls: list[tuple[Any, ...]] = []
        requests: list[tuple[Any, ...]] = []
        at = t0
        for t in range(n_turns):
            base = f"{chat_id}-{t:04d}"
            at += timedelta(seconds=rng.uniform(20, 110))
            messages.append(
                (
                    f"{base}-u",
                    chat_id,
                    "user",
                    f"Question {t} of chat {c}?",
                    None,
                    None,
                    None,
                    None,
                    None,
                    at,
                )
            )
            inp = 200 + 40 * t + rng.randint(0, 200)
            out = rng.randint(20, 400)
            think = rng.randint(50, 800) if thinks else None
            tool = t % 10 == 3
            raw: dict[str, Any] = {"model": model, "provider": provider, "finishReason": "stop"}
            if tool:
                raw["rounds"] = [{"toolCallIds": [f"call-{base}"]}]
            answer_at = at + timedelta(seconds=2)
            messages.append(
                (
                    f"{base}-a",
                    chat_id,
                    "assistant",
                    f"Answer {t}: " + "lorem " * 12,
                    json.dumps(raw),
                    think,
                    inp,
                    out,
                    model,
                    answer_at,
                )
            )
            rounds = 2 if tool else 1
            if tool:
                calls.append(
                    (
                        f"tc-{base}",
                        f"{base}-a",
                        f"call-{base}",
                        "lookup",
                        json.dumps({"query": f"item {t}"}),
                        json.dumps({"found": t}),
                        answer_at,
                    )
                )
            for r in range(rounds):
                failed = rng.random() < 0.02
                status = rng.choice((429, 500)) if failed else 200
                duration = int(rng.lognormvariate(6.5, 0.6))
                ri, ro = (0, 0) if failed else (inp, out)
                cost = None if failed else ri * pin + ro * pout
                requests.append(
                    (
                        f"rq-{base}-{r}",
                        chat_id,
                        f"{base}-a",
                        provider,
                        model,
                        status,
                        duration,
                        ri,
                        ro,
                        cost,
                        answer_at,
                    )
                )
        yield "chat", chat
        if c % 10 == 0:
            yield (
                "session",
                [(f"ses-{c:06d}", AGENTS[c % 3], chat_id, json.dumps({"ticket": c}), t0)],
            )
        yield "message", messages
        yield "tool_call", calls
        yield "request", requests


COLUMNS = {
    "chat": ("LlmChat", ["id", "model", "provider", "instructions", "createdAt", "userId"]),
    "session": ("LlmAgentSession", ["id", "agentClass", "chatId", "metadata", "createdAt"]),
    "message": (
        "LlmMessage",
        [
            "id",
            "chatId",
            "role",
            "content",
            "contentRaw",
            "thinkingTokens",
            "inputTokens",
            "outputTokens",
            "modelId",
            "createdAt",
        ],
    ),
    "tool_call": (
        "LlmToolCall",
        ["id", "messageId", "toolCallId", "name", "arguments", "result", "createdAt"],
    ),
    "request": (
        "LlmRequest",
        [
            "id",
            "chatId",
            "messageId",
            "provider",
            "model",
            "statusCode",
            "duration",
            "inputTokens",
            "outputTokens",
            "cost",
            "createdAt",
        ],
    ),
}
UPDATED = {"chat", "session"}  # tables with an updatedAt column (set to createdAt)


def _with_updated(key: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    if key not in UPDATED:
        return row
    created = row[COLUMNS[key][1].index("createdAt")]
    return (*row, created)


def _names(key: str) -> list[str]:
    return COLUMNS[key][1] + (["updatedAt"] if key in UPDATED else [])


def seed_sqlite(path: Path, chats: int, turns: int, long_turns: int) -> None:
    asyncio.run(_migrate(f"sqlite:///{path}"))
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
    conn.execute("PRAGMA synchronous=OFF")
    sql = {}
    for key, (table, _) in COLUMNS.items():
        cols = _names(key)
        quoted = ", ".join(f'"{c}"' for c in cols)
        sql[key] = f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join("?" * len(cols))})'
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    with conn:
        for key, batch in rows(chats, turns, long_turns):
            conn.executemany(
                sql[key],
                [
                    tuple(
                        (v - epoch) // timedelta(milliseconds=1) if isinstance(v, datetime) else v
                        for v in _with_updated(key, row)
                    )
                    for row in batch
                ],
            )
    conn.execute("ANALYZE")
    conn.close()


async def seed_postgres(url: str, chats: int, turns: int, long_turns: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    await _migrate(url)
    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    try:
        await conn.execute('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
        pending: dict[str, list[tuple[Any, ...]]] = {k: [] for k in COLUMNS}

        async def flush(key: str) -> None:
            if pending[key]:
                await conn.copy_records_to_table(
                    COLUMNS[key][0], records=pending[key], columns=_names(key)
                )
                pending[key] = []

        for key, batch in rows(chats, turns, long_turns):
            pending[key].extend(
                tuple(
                    v.replace(tzinfo=None) if isinstance(v, datetime) else v
                    for v in _with_updated(key, row)
                )
                for row in batch
            )
            if len(pending[key]) >= 20_000:
                # Parents first: the foreign keys are checked row by row.
                for k in ("chat", "session", "message", "tool_call", "request"):
                    await flush(k)
        for k in ("chat", "session", "message", "tool_call", "request"):
            await flush(k)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _pg_dsn(url: str, database: str) -> str:
    u = make_url(url)
    port = f":{u.port}" if u.port else ""
    auth = u.username or ""
    if u.password:
        auth += f":{u.password}"
    return f"postgresql://{auth}@{u.host}{port}/{database}"


async def pg_seeded(server: str, name: str) -> bool:
    """Whether the server holds database `name` with a seeded message table."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_pg_dsn(server, name))
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        return bool(await conn.fetchval('SELECT EXISTS (SELECT 1 FROM "LlmRequest")'))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


async def pg_create(server: str, name: str) -> str:
    """Database `name` on the server, created empty (dropped first if a seed was cut short)."""
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(server, "postgres"))
    try:
        quoted = name.replace('"', '""')
        await conn.execute(f'DROP DATABASE IF EXISTS "{quoted}"')
        await conn.execute(f'CREATE DATABASE "{quoted}"')
    finally:
        await conn.close()
    return make_url(server).set(database=name).render_as_string(False)


async def _migrate(url: str) -> None:
    store = await connect(url)
    await store.close()


PAGES = [
    ("overview, last 24 hours by hour", "/?range=24h"),
    ("overview, last 7 days (default)", "/"),
    ("overview, last 30 days", "/?range=30d"),
    ("overview, last 90 days by week", "/?range=90d"),
    ("overview, all 90 days by week", "/?range=all"),
    ("chats, page 1", "/chats"),
    ("chats, page 100", "/chats?page=100"),
    ("chats, userId = u-42", "/chats?column=userId&value=u-42"),
    ("chats, model + date range", "/chats?model=o3-mini&from={from}&to={to}"),
    ("chats, agent class", "/chats?agent=SupportAgent"),
    ("conversation (one chat's turns)", "/chats/{chat}"),
    ("conversation, long chat, page 1", "/chats/chat-000000"),
    ("conversation, long chat, last page", "/chats/chat-000000?page={last}"),
]


async def measure(url: str, chats: int, last: int) -> list[tuple[str, float, float, float, int]]:
    app = create_app(url)
    today = datetime.now(UTC).date()
    out = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        for label, path in PAGES:
            path = path.format(
                chat=f"chat-{chats // 2:06d}",
                last=last,
                **{"from": today - timedelta(days=20), "to": today},
            )
            times = []
            cpu = []
            size = 0
            for _ in range(RUNS):
                t, c = time.perf_counter(), time.process_time()
                response = await client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text}")
                size = len(response.content)
            out.append(
                (label, times[0], statistics.median(times[1:]), statistics.median(cpu[1:]), size)
            )
    await app.state.reader.engine.dispose()
    return out


async def counts(url: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from nodellm_orm.stores.urls import async_url

    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            parts = []
            for table in ("LlmChat", "LlmMessage", "LlmRequest", "LlmToolCall", "LlmAgentSession"):
                n = (await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
                parts.append(f"{table} {n:,}")
            return ", ".join(parts)
    finally:
        await engine.dispose()


def report(
    name: str, seed_s: float, summary: str, results: list[tuple[str, float, float, float, int]]
) -> None:
    print(f"\n{name}: seeded in {seed_s:.1f} s ({summary})")
    print(f"  {'page':<36} {'first':>9} {'median':>9} {'cpu':>9} {'html':>8}")
    for label, first, median, cpu, size in results:
        flag = "" if median < 300 else "  (over 300 ms)"
        print(
            f"  {label:<36} {first:>7.1f}ms {median:>7.1f}ms {cpu:>7.1f}ms "
            f"{size // 1024:>6}KB{flag}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=50, help="turns per chat (2 messages each)")
    parser.add_argument(
        "--long-turns",
        type=int,
        default=5000,
        help="turns of chat 0, the long conversation (the next chats are left empty so the "
        "total stays chats x turns)",
    )
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--sqlite", type=Path, default=None, help="keep the SQLite file here (reused if present)"
    )
    parser.add_argument(
        "--pg-database",
        default=None,
        help="keep the PostgreSQL database under this name on the server (reused if seeded)",
    )
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cpus")
    print(
        f"{args.chats:,} chats x {args.turns} turns = {args.chats * args.turns * 2:,} messages; "
        f"each page requested {RUNS} times (first = cold, median of the rest)"
    )
    from nodellm_orm.dashboard._queries import MESSAGES_PER_PAGE

    long_messages = 2 * max(args.long_turns, args.turns)
    last = max(1, -(-long_messages // MESSAGES_PER_PAGE))
    print(f"chat-000000 holds {long_messages:,} messages ({last} pages)")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            path = args.sqlite or Path(tmp) / "dashboard-bench.db"
            t = time.perf_counter()
            if path.exists():
                print(f"\nreusing {path} (seeded earlier; delete it to seed again)")
            else:
                seed_sqlite(path, args.chats, args.turns, args.long_turns)
            seeded = time.perf_counter() - t
            url = f"sqlite:///{path}"
            summary = asyncio.run(counts(url))
            report("SQLite (file)", seeded, summary, asyncio.run(measure(url, args.chats, last)))
        if not args.skip_pg:
            from tests.support.postgres import fresh_database, postgres_url

            server = postgres_url()
            if server is None:
                print("\nPostgreSQL: no server available (set NODELLM_TEST_PG_URL); skipped")
                return
            t = time.perf_counter()
            if args.pg_database and asyncio.run(pg_seeded(server, args.pg_database)):
                url = make_url(server).set(database=args.pg_database).render_as_string(False)
                print(f"\nreusing database {args.pg_database} (seeded earlier; drop it to reseed)")
            else:
                if args.pg_database:
                    url = asyncio.run(pg_create(server, args.pg_database))
                else:
                    url = fresh_database(server)
                asyncio.run(seed_postgres(url, args.chats, args.turns, args.long_turns))
            seeded = time.perf_counter() - t
            summary = asyncio.run(counts(url))
            report("PostgreSQL", seeded, summary, asyncio.run(measure(url, args.chats, last)))


if __name__ == "__main__":
    main()
