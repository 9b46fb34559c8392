"""Many chats at once on PostgreSQL, by pool setting: turns/s and where the CPU goes.

    NODELLM_TEST_PG_URL=postgresql+asyncpg://... .venv/bin/python benchmarks/pg_pool.py \
        [--rounds 4] [--shape 50x20] [--pools 5+10,5+0,15+0]

For each `size+overflow` (connect's pool_size and max_overflow; 5+10 is the default), the
same burst of `--shape` chats x turns (zero-latency FakeProvider) runs `--rounds` times on one
store, and prints the median turns/s and, per turn, the CPU time of this process and of the
PostgreSQL server's processes (read from /proc, so the server must run on this machine; its
figure is missing when backends exit during the burst, as overflow connections do when the
burst ends). The first burst of each setting opens its connections and is left out; with an
overflow, every burst opens the overflow connections again (they close when it ends), as a
long-lived process serving bursts would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import one_shape, postgres_or_exit  # noqa: E402

from nodellm_orm import connect, create_chat, create_llm  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402
from tests.support.postgres import create_database, drop_database  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu() -> float:
    """CPU seconds used so far by the processes named postgres (the server and backends),
    with those of backends that have exited (the postmaster's reaped children)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            total += sum(map(int, fields[11:15]))  # utime, stime, cutime, cstime
    return total / _TICK


async def burst(store: object, chats: int, turns: int) -> tuple[float, float, float]:
    """(turns/s, this process's CPU ms a turn, the server's CPU ms a turn)."""
    llm = create_llm(provider=FakeProvider())

    async def converse() -> None:
        chat = await create_chat(store, llm)  # type: ignore[arg-type]
        for i in range(turns):
            await chat.ask(f"question {i}")

    server, cpu, start = server_cpu(), time.process_time(), time.perf_counter()
    await asyncio.gather(*[converse() for _ in range(chats)])
    wall = time.perf_counter() - start
    n = chats * turns
    return n / wall, (time.process_time() - cpu) / n * 1000, (server_cpu() - server) / n * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--shape", type=one_shape, default=one_shape("50x20"))
    parser.add_argument("--pools", default="5+10,5+0,15+0")
    args = parser.parse_args()
    chats, turns = args.shape
    server = postgres_or_exit()
    url = await create_database(server)
    try:
        for pool in args.pools.split(","):
            size, overflow = map(int, pool.split("+"))
            store = await connect(url, pool_size=size, max_overflow=overflow)
            try:
                await burst(store, chats, turns)  # opens the connections
                runs = [await burst(store, chats, turns) for _ in range(args.rounds)]
            finally:
                await store.close()
            rate, client, backend = (statistics.median(r[i] for r in runs) for i in range(3))
            rounds = ", ".join(f"{r[0]:,.0f}" for r in runs)
            shown = f"{backend:.3f} ms" if backend > 0 else "n/a (backends exited)"
            print(
                f"pool {size}+{overflow}: {rate:,.0f} turns/s (rounds: {rounds}); a turn: "
                f"client CPU {client:.3f} ms, server CPU {shown}"
            )
    finally:
        await drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
