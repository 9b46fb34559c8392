"""Python function calls a plain turn makes, counted by cProfile: a figure that does not move
with the machine's load, so two checkouts compare exactly where timings are noisy.

    .venv/bin/python benchmarks/turn_calls.py [--checkout PATH] [--turns 1000] [--top 25]
        [--skip-pg]

Imports nodellm-orm from `--checkout` (default: this one), runs `--turns` plain turns through
the ORM (zero-latency FakeProvider, SQLite file in WAL mode; PostgreSQL too when
NODELLM_TEST_PG_URL names a server) and as many bare core chat turns, and prints the calls
per turn of each and their difference (what the ORM adds), then the functions that add the
most calls of their own. Only the public API is used, so any version compares. SQLite's
driver thread is not profiled (cProfile sees the calling thread only): what runs there is
the driver's own C and our short step loop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def calls_by_function(profile: cProfile.Profile) -> dict[str, int]:
    stats = pstats.Stats(profile)
    out: dict[str, int] = {}
    for (path, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        out[f"{Path(path).name}:{line}({name})"] = row[1]  # primitive + recursive calls
    return out


async def counted(turns: int, ask: Any) -> dict[str, int]:
    profile = cProfile.Profile()
    profile.enable()
    for i in range(turns):
        await ask(f"question {i}")
    profile.disable()
    return calls_by_function(profile)


async def measure(url: str, turns: int) -> tuple[dict[str, int], dict[str, int]]:
    from nodellm_orm import connect, create_chat, create_llm
    from nodellm_orm.testing import FakeProvider

    store = await connect(url)
    try:
        llm = create_llm(provider=FakeProvider())
        chat = await create_chat(store, llm)
        bare = llm.chat()
        for i in range(50):  # warm: caches filled, statements compiled
            await chat.ask(f"warm {i}")
            await bare.ask(f"warm {i}")
        return await counted(turns, chat.ask), await counted(turns, bare.ask)
    finally:
        await store.close()


def report(label: str, orm: dict[str, int], bare: dict[str, int], turns: int, top: int) -> None:
    total_orm, total_bare = sum(orm.values()) / turns, sum(bare.values()) / turns
    print(
        f"{label}: {total_orm:.0f} calls a plain turn through nodellm-orm, "
        f"{total_bare:.0f} a bare core turn: {total_orm - total_bare:.0f} are the ORM's"
    )
    added = {k: orm.get(k, 0) - bare.get(k, 0) for k in orm.keys() | bare.keys()}
    for name, n in sorted(added.items(), key=lambda kv: -kv[1])[:top]:
        if n > 0:
            print(f"  {n / turns:7.2f}  {name}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--checkout", type=Path, default=HERE.parent)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    root = args.checkout.resolve()
    sys.path.insert(0, str(root))
    import nodellm_orm

    where = Path(nodellm_orm.__file__ or "")
    assert where.is_relative_to(root), f"imported {where}, not from {root}"
    print(f"checkout {root}")
    with tempfile.TemporaryDirectory() as tmp:
        orm, bare = await measure(f"sqlite:///{tmp}/calls.db", args.turns)
        report("SQLite", orm, bare, args.turns, args.top)
    if not args.skip_pg:
        sys.path.insert(0, str(HERE.parent))
        from tests.support.postgres import create_database, drop_database, postgres_url

        server = postgres_url()
        if server:
            url = await create_database(server)
            try:
                orm, bare = await measure(url, args.turns)
                report("PostgreSQL", orm, bare, args.turns, args.top)
            finally:
                await drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
