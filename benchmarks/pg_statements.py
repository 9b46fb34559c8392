"""The server's time per statement, burst after burst of many chats on one growing store.

    .venv/bin/python benchmarks/pg_statements.py [--bursts 12] [--shape 50x20] [--top 4]

Needs pg_stat_statements loaded by the server (`shared_preload_libraries=pg_stat_statements`
in its configuration, then a restart); the database is created, and dropped after, on
NODELLM_TEST_PG_URL's server. Each burst is `--shape` chats x turns at once on new chats of
the same store (connect()'s defaults), so the tables grow by that many turns every burst;
after each, for the statements that took most of the burst's server time: the calls, the
mean execution time per call and the shared buffers each touched. A statement whose time
grows with the tables while the chats stay the same size reads more than its chat: its
plan is the place to look (EXPLAIN under `SET plan_cache_mode = force_generic_plan`, as
asyncpg's prepared statements run once PostgreSQL has seen five executions).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import concurrent_turns  # noqa: E402
from harness import one_shape, postgres_or_exit  # noqa: E402

from nodellm_orm import connect, create_llm  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402

STATS = """
SELECT queryid, regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time,
       shared_blks_hit + shared_blks_read AS blocks
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg_stat_statements%'
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bursts", type=int, default=12)
    parser.add_argument("--shape", type=one_shape, default=one_shape("50x20"))
    parser.add_argument("--top", type=int, default=4, help="statements shown per burst")
    args = parser.parse_args()
    chats, turns = args.shape
    server = postgres_or_exit()
    import asyncpg

    url = await create_database(server)
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    store = await connect(url)
    try:
        try:
            await raw.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await raw.fetch(STATS)
        except asyncpg.PostgresError as exc:
            sys.exit(f"pg_stat_statements is not usable on this server: {exc}")
        llm = create_llm(provider=FakeProvider())
        seen: dict[int, tuple[int, float, int]] = {}
        for burst in range(args.bursts):
            stats = await concurrent_turns(store, llm, chats, turns, deadline=60)
            print(f"burst {burst + 1}: {stats.summary()}")
            now = {r["queryid"]: r for r in await raw.fetch(STATS)}
            deltas = []
            for qid, r in now.items():
                calls, total, blocks = seen.get(qid, (0, 0.0, 0))
                if r["calls"] > calls:
                    n = r["calls"] - calls
                    per_call = (r["total_exec_time"] - total) / n * 1000
                    deltas.append((n, per_call, (r["blocks"] - blocks) / n, r["query"]))
                seen[qid] = (r["calls"], r["total_exec_time"], r["blocks"])
            deltas.sort(key=lambda d: d[0] * d[1], reverse=True)  # the burst's time in each
            for n, per_call, blocks, query in deltas[: args.top]:
                print(f"  {n:6,} calls {per_call:8.1f} us {blocks:6.1f} blocks  {query[:60]}")
    finally:
        await store.close()
        await raw.close()
        await drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
