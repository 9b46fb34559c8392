"""The floor under a plain turn on SQLite: its statements and commits alone.

    .venv/bin/python benchmarks/turn_floor.py [--rounds 5] [--turns 200]

Records the statements and parameters one plain turn hands the SQLite driver (begin_turn's
INSERT ... RETURNING and its commit, finish_turn's UPDATE and INSERT and their commit) and,
alternating in one run on the same database file, times per turn (median):

- a plain turn through nodellm-orm (zero-latency FakeProvider), and the bare core chat;
- the recorded statements replayed on a plain `sqlite3` connection (same pragmas: WAL,
  synchronous=NORMAL, foreign keys on), with fresh ids each turn: no nodellm-orm at all.

The ORM's overhead less the statements' own time is the Python of ours a turn runs; the rest
is SQLite's. Each turn's chat is a new one every `--turns` turns, as in bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodellm_orm import connect, create_chat, create_llm  # noqa: E402
from nodellm_orm.stores import connection  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402

Steps = list[tuple[str, tuple[Any, ...]]]


async def record_turn(store: Any, llm: Any) -> tuple[Steps, str]:
    """The statements (and arguments) of one plain turn, and its chat's id."""
    chat = await create_chat(store, llm)
    await chat.ask("warm up")
    seen: Steps = []
    real = connection._sqlite_run

    def recording(raw: sqlite3.Connection, steps: Any, autocommit: bool) -> list[Any]:
        seen.extend((sql, args) for sql, args, _ in steps if sql)  # not probes
        seen.append(("COMMIT", ()))
        return real(raw, steps, autocommit)

    connection._sqlite_run = recording
    try:
        await chat.ask("record me")
    finally:
        connection._sqlite_run = real
    return seen, chat.id


def _mark_slots(steps: Steps) -> dict[str, dict[str, int]]:
    """Per statement that checks the write mark (SQLite's `total_changes() = ? AND
    (SELECT data_version ...) = ?`), the positions of those two parameters."""
    slots = {}
    for sql, _ in steps:
        at = sql.find("total_changes() = ?")
        if at >= 0:
            changes = sql.count("?", 0, at)
            slots[sql] = {"changes": changes, "version": changes + 1}
    return slots


def replay(db: Path, steps: Steps, chat_id: str, turns: int) -> list[float]:
    """Per-turn wall time of `steps` on a plain sqlite3 connection, in a new chat, with new
    row ids every turn."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    chat = str(uuid.uuid4())
    conn.execute(
        'INSERT INTO "LlmChat" (id, "createdAt", "updatedAt") SELECT ?, "createdAt", '
        '"updatedAt" FROM "LlmChat" WHERE id = ?',
        (chat, chat_id),
    )
    row_ids = {a for _, args in steps for a in args if isinstance(a, str) and a != chat_id}
    row_ids = {a for a in row_ids if len(a) == 36 and a.count("-") == 4}  # the rows' UUIDs
    marks = _mark_slots(steps)
    times = []
    for _ in range(turns):
        fresh = {a: str(uuid.uuid4()) for a in row_ids} | {chat_id: chat}
        # The write mark's counters as this connection has them, so that begin_turn's INSERT
        # skips its count as it does in the ORM (else every turn would count the chat).
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        now = {"changes": conn.total_changes, "version": version}
        start = time.perf_counter()
        open_tx = False
        for sql, args in steps:
            if sql == "COMMIT":
                conn.execute("COMMIT")
                open_tx = False
                continue
            if not open_tx:
                conn.execute("BEGIN")
                open_tx = True
            new = [fresh.get(a, a) if isinstance(a, str) else a for a in args]
            for name, at in marks.get(sql, {}).items():
                new[at] = now[name]
            conn.execute(sql, new).fetchall()
        times.append(time.perf_counter() - start)
    conn.close()
    return times


async def orm_turns(store: Any, llm: Any, turns: int) -> list[float]:
    chat = await create_chat(store, llm)
    times = []
    for i in range(turns):
        start = time.perf_counter()
        await chat.ask(f"question {i}")
        times.append(time.perf_counter() - start)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        db = Path(tmp) / "floor.db"
        store = await connect(f"sqlite:///{db}")
        llm = create_llm(provider=FakeProvider())
        bare = llm.chat()
        try:
            steps, chat_id = await record_turn(store, llm)
            await orm_turns(store, llm, args.turns)  # warm
            figures: dict[str, list[float]] = {"orm": [], "bare": [], "statements": []}
            for _ in range(args.rounds):
                figures["orm"].append(statistics.median(await orm_turns(store, llm, args.turns)))
                core = []
                for i in range(args.turns):
                    start = time.perf_counter()
                    await bare.ask(f"question {i}")
                    core.append(time.perf_counter() - start)
                figures["bare"].append(statistics.median(core))
                replayed = replay(db, steps, chat_id, args.turns)
                figures["statements"].append(statistics.median(replayed))
        finally:
            await store.close()
    ms = {k: statistics.median(v) * 1000 for k, v in figures.items()}
    overhead = ms["orm"] - ms["bare"]
    statements = sum(1 for sql, _ in steps if sql != "COMMIT")
    print(
        f"plain turn through nodellm-orm      {ms['orm']:.3f} ms (median of {args.rounds} rounds)"
    )
    print(f"bare core chat turn                 {ms['bare']:.3f} ms")
    print(f"overhead per plain turn             {overhead:.3f} ms")
    print(
        f"its {statements} statements and 2 commits alone {ms['statements']:.3f} ms "
        "(plain sqlite3, same file and pragmas)"
    )
    print(f"the rest: nodellm-orm's Python      {overhead - ms['statements']:.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
