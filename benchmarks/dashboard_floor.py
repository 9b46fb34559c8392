"""The floor under the dashboard's overview: the least SQL any exact overview must run.

    .venv/bin/python benchmarks/dashboard_bench.py --sqlite /tmp/dash/bench.db \
        --pg-database dash_bench                                   # seeds both, once
    .venv/bin/python benchmarks/dashboard_floor.py [--sqlite /tmp/dash/bench.db]
        [--pg-database dash_bench] [--skip-pg]

Over dashboard_bench.py's seeds (550,000 requests, 1,000,000 messages), times single
statements far simpler than the overview's, over every row (its "all" range): a scan that
only sums, one GROUP BY on few values, the latency histogram's GROUP BY (duration, model),
the usage grouping by chat, and the scan of the messages for reasoning tokens. SQLite runs
in this process (CPU time, best of 3); PostgreSQL's figure is the server's own execution time
from EXPLAIN ANALYZE (best of 3), with the overview's settings (work_mem 64MB, no parallel
workers). The overview runs three statements like the last three side by side on a 2-core
machine, so their sum over two is the least its page can take.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from dashboard_bench import _pg_dsn  # the seeds' database, as that script names it

STATEMENTS = {
    "scan, sums only": (
        'SELECT count(*), sum("inputTokens"), sum("outputTokens"), sum(cost) FROM "LlmRequest"'
    ),
    "GROUP BY model": 'SELECT model, count(*), sum(cost) FROM "LlmRequest" GROUP BY model',
    "GROUP BY provider, model": (
        'SELECT provider, model, count(*), sum(cost) FROM "LlmRequest" GROUP BY provider, model'
    ),
    "GROUP BY duration, model (latency histogram)": (
        'SELECT duration, model, count(*) FROM "LlmRequest" GROUP BY duration, model'
    ),
    'GROUP BY "chatId" (usage by chat)': (
        'SELECT "chatId", count(*), sum(cost) FROM "LlmRequest" GROUP BY "chatId"'
    ),
    "messages scanned for reasoning tokens": (
        'SELECT sum("thinkingTokens") FROM "LlmMessage" '
        "WHERE \"thinkingTokens\" IS NOT NULL AND role = 'assistant'"
    ),
}
RUNS = 3


def sqlite_floor(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(f"SQLite {sqlite3.sqlite_version} ({path}), CPU ms, best of {RUNS}")
    for name, sql in STATEMENTS.items():
        best = float("inf")
        for _ in range(RUNS):
            start = time.process_time()
            conn.execute(sql).fetchall()
            best = min(best, time.process_time() - start)
        print(f"  {name:48} {best * 1000:8.1f}")
    conn.close()


async def postgres_floor(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        print(f"PostgreSQL {version}, server execution ms (EXPLAIN ANALYZE), best of {RUNS}")
        await conn.execute("SET work_mem = '64MB'; SET max_parallel_workers_per_gather = 0")
        for name, sql in STATEMENTS.items():
            best = float("inf")
            for _ in range(RUNS):
                plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                best = min(best, json.loads(plan)[0]["Execution Time"])
            print(f"  {name:48} {best:8.1f}")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sqlite", type=Path, default=Path("/tmp/dash/bench.db"))
    parser.add_argument("--pg-database", default="dash_bench")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print("load average:", f.read().strip())
    if not args.sqlite.exists():
        sys.exit(f"{args.sqlite}: no such file; seed it with dashboard_bench.py --sqlite")
    sqlite_floor(args.sqlite)
    if not args.skip_pg:
        server = os.environ.get("NODELLM_TEST_PG_URL")
        if not server:
            sys.exit("set NODELLM_TEST_PG_URL to the server holding --pg-database")
        asyncio.run(postgres_floor(_pg_dsn(server, args.pg_database)))


if __name__ == "__main__":
    main()
