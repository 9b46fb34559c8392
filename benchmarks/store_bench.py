"""Micro-benchmark of SqlStore: microseconds per store operation (not collected by pytest).

    .venv/bin/python benchmarks/store_bench.py [--pg postgresql+asyncpg://...]

A turn is begin_turn (user row + assistant placeholder, one INSERT ... RETURNING) plus
finish_turn (UPDATE + INSERT of a request row, one transaction). The SQLite file lives on
disk under the current directory's `.bench/`, in WAL mode with synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nodellm_orm.migrations.runner import split_sqlite_script
from nodellm_orm.model import TableNames
from nodellm_orm.stores.sql import SqlStore, connect

REF = Path(__file__).resolve().parent.parent / "nodellm_orm" / "migrations"


def _ddl(dialect: str) -> list[str]:
    files = sorted((REF / dialect).glob("*/migration.sql"))
    text = "\n".join(f.read_text() for f in files)
    return [s for s in split_sqlite_script(text) if not s.upper().startswith("CREATE SCHEMA")]


def _uid() -> str:
    return str(uuid.uuid4())


async def _bench(store: SqlStore, label: str, turns: int = 300) -> None:
    now = datetime.now(UTC)
    cid = _uid()
    await store.create_chat({"id": cid, "createdAt": now, "updatedAt": now})
    begin: list[float] = []
    finish: list[float] = []
    for i in range(turns):
        at = now + timedelta(milliseconds=i)
        uid, aid = _uid(), _uid()
        t0 = time.perf_counter()
        await store.begin_turn(
            cid,
            [
                {"id": uid, "chatId": cid, "role": "user", "content": "hi", "createdAt": at},
                {"id": aid, "chatId": cid, "role": "assistant", "createdAt": at},
            ],
        )
        t1 = time.perf_counter()
        await store.finish_turn(
            aid,
            {"content": "hello there", "inputTokens": 10, "outputTokens": 3, "modelId": "m"},
            [
                {
                    "id": _uid(),
                    "chatId": cid,
                    "messageId": aid,
                    "provider": "fake",
                    "model": "m",
                    "statusCode": 200,
                    "duration": 1,
                    "inputTokens": 10,
                    "outputTokens": 3,
                    "createdAt": at,
                }
            ],
        )
        t2 = time.perf_counter()
        begin.append(t1 - t0)
        finish.append(t2 - t1)

    big = _uid()
    await store.create_chat({"id": big, "createdAt": now, "updatedAt": now})
    rows = [
        {
            "id": _uid(),
            "chatId": big,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"message number {i} " * 8,
            "createdAt": now + timedelta(milliseconds=i // 3),
        }
        for i in range(10_000)
    ]
    for k in range(0, len(rows), 500):
        await store.insert_messages(rows[k : k + 500])
    loads: list[float] = []
    for _ in range(7):
        t0 = time.perf_counter()
        listed = await store.list_messages(big)
        loads.append(time.perf_counter() - t0)
    assert len(listed) == 10_000

    def us(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1e6:8.0f} us"

    turn = [b + f for b, f in zip(begin, finish, strict=True)]
    print(f"[{label}] begin_turn          median {us(begin)}")
    print(f"[{label}] finish_turn         median {us(finish)}")
    print(f"[{label}] turn (both)         median {us(turn)}")
    print(f"[{label}] turns 1-10 vs 291-300: {us(turn[:10])} / {us(turn[-10:])}")
    print(f"[{label}] list_messages(10k)  median {statistics.median(loads) * 1e3:8.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=os.environ.get("NODELLM_TEST_PG_URL"))
    args = parser.parse_args()

    workdir = Path(".bench")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    path = workdir / "bench.sqlite"
    with sqlite3.connect(path) as conn:
        for stmt in _ddl("sqlite"):
            conn.execute(stmt)
    store = await (await connect(f"sqlite:///{path}", migrate=False)).bind(TableNames())
    try:
        await _bench(store, "sqlite file")
    finally:
        await store.close()
    shutil.rmtree(workdir, ignore_errors=True)

    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        base = await connect(
            args.pg, migrate=False, connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            async with base.engine.begin() as conn:
                await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                for stmt in _ddl("postgresql"):
                    await conn.exec_driver_sql(stmt)
            await _bench(await base.bind(TableNames()), "postgresql")
        finally:
            async with base.engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await base.close()


if __name__ == "__main__":
    asyncio.run(main())
