"""nodellm-orm against the Python peers on one workload, in one run, on SQLite files on disk.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/peers.py [--rounds 3] [--shapes 50x20,200x10] [--turns 200]

Peers: OpenAI Agents' `SQLiteSession` (package openai-agents) and LangChain's
`SQLChatMessageHistory` (langchain-community, on an aiosqlite engine). A turn is what each
library's own runner does around a model call, with a zero-latency fake model:
- nodellm-orm: `await chat.ask(q)` (FakeProvider): the chat keeps its history in memory and
  writes the user message, the assistant message and a request row (usage, duration);
- SQLiteSession: `get_items()` (the whole session, as `Runner.run(session=...)` reads it), the
  fake model, `add_items([user, assistant])`;
- SQLChatMessageHistory: `aget_messages()`, the fake model, `aadd_messages([human, ai])`
  (what `RunnableWithMessageHistory` does).
Durability is printed with each row: nodellm-orm and the LangChain engine here run WAL with
synchronous=NORMAL; SQLiteSession runs WAL with SQLite's default synchronous=FULL, and once
more with synchronous=NORMAL (its connection setup overridden), so like is compared with like.

Printed: per-turn cost of one conversation (median of `--turns`, and turns 191-200 against 1-10,
since the peers re-read the history every turn), and turns/s with many conversations at once in
one process for each `--shapes` (median over `--rounds` alternating rounds, each on a fresh
database file), then nodellm-orm's ratio to the best peer.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import Turn, ms, parse_shapes, run_concurrent, sequential  # noqa: E402

from nodellm_orm import connect, create_chat, create_llm  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)  # langchain-community's notice


def fake_model(question: str) -> str:
    """The peers' zero-latency model: the same answer the FakeProvider gives."""
    return f"(fake) You said: {question}"


# A system opens a database file and returns (make a conversation, close, durability).
Opened = tuple[Callable[[], Awaitable[Turn]], Callable[[], Awaitable[None]], str]


async def open_nodellm(path: Path) -> Opened:
    store = await connect(f"sqlite:///{path}")
    llm = create_llm(provider=FakeProvider())

    async def conversation() -> Turn:
        chat = await create_chat(store, llm)
        return lambda i: chat.ask(f"question {i}")

    return conversation, store.close, sqlite_modes(path, "synchronous=NORMAL (set by connect)")


def sqlite_modes(path: Path, how: str) -> str:
    with sqlite3.connect(path) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return f"journal={journal}, {how}"


async def open_agents(path: Path, synchronous: str | None) -> Opened:
    from agents import SQLiteSession

    cls: Any = SQLiteSession
    if synchronous is not None:

        class Tuned(SQLiteSession):  # type: ignore[misc]
            @staticmethod
            def _configure_connection(conn: sqlite3.Connection) -> None:
                SQLiteSession._configure_connection(conn)
                conn.execute(f"PRAGMA synchronous={synchronous}")

        cls = Tuned
    sessions: list[Any] = []

    async def conversation() -> Turn:
        session = cls(f"session-{len(sessions)}", db_path=path)
        sessions.append(session)

        async def turn(i: int) -> None:
            history = await session.get_items()
            question = f"question {i}"
            answer = fake_model(question)
            assert isinstance(history, list)
            await session.add_items(
                [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            )

        return turn

    async def close() -> None:
        for session in sessions:
            session.close()

    level = synchronous or "FULL (SQLite's default)"
    return conversation, close, f"journal=wal, synchronous={level}"


async def open_langchain(path: Path) -> Opened:
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    count = 0

    async def conversation() -> Turn:
        nonlocal count
        count += 1
        history = SQLChatMessageHistory(f"session-{count}", connection=engine)

        async def turn(i: int) -> None:
            messages = await history.aget_messages()
            question = f"question {i}"
            answer = fake_model(question)
            assert isinstance(messages, list)
            await history.aadd_messages([HumanMessage(question), AIMessage(answer)])

        return turn

    return conversation, engine.dispose, "journal=wal, synchronous=NORMAL (engine pragmas)"


SYSTEMS: dict[str, Callable[[Path], Awaitable[Opened]]] = {
    "nodellm-orm": open_nodellm,
    "openai-agents SQLiteSession": lambda p: open_agents(p, None),
    "openai-agents SQLiteSession, synchronous=NORMAL": lambda p: open_agents(p, "NORMAL"),
    "langchain SQLChatMessageHistory": open_langchain,
}


async def warm(conversation: Callable[[], Awaitable[Turn]], turns: int) -> None:
    await sequential(await conversation(), turns)


async def per_turn(name: str, tmp: Path, args: argparse.Namespace) -> tuple[list[float], str]:
    conversation, close, modes = await SYSTEMS[name](tmp / f"{abs(hash(name))}-seq.db")
    try:
        await warm(conversation, 20)
        return await sequential(await conversation(), args.turns), modes
    finally:
        await close()


async def concurrent(
    name: str, tmp: Path, chats: int, turns: int, round_no: int
) -> tuple[float, str]:
    path = tmp / f"{abs(hash(name))}-{chats}x{turns}-{round_no}.db"
    conversation, close, _ = await SYSTEMS[name](path)
    try:
        await warm(conversation, 5)
        conversations = [await conversation() for _ in range(chats)]
        stats = await run_concurrent(conversations, turns)
        return stats.turns_per_second, stats.summary()
    finally:
        await close()


async def bare_core(turns: int) -> list[float]:
    chat = create_llm(provider=FakeProvider()).chat()
    return await sequential(lambda i: chat.ask(f"question {i}"), turns)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=200, help="turns of the one conversation")
    parser.add_argument("--rounds", type=int, default=3, help="alternating concurrent rounds")
    parser.add_argument("--shapes", type=parse_shapes, default=parse_shapes("50x20,200x10"))
    parser.add_argument("--only", action="append", choices=list(SYSTEMS), help="run just these")
    args = parser.parse_args()
    names = args.only or list(SYSTEMS)
    rows: dict[str, dict[str, str]] = {name: {"system": name} for name in names}
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp_name:
        tmp = Path(tmp_name)
        core = ms(await bare_core(args.turns))
        for name in names:
            times, modes = await per_turn(name, tmp, args)
            base = core if name == "nodellm-orm" else 0.0
            late = statistics.median(times[190:200]) if len(times) >= 200 else float("nan")
            rows[name]["durability"] = modes
            rows[name]["turn, median"] = f"{ms(times):.3f} ms"
            rows[name]["overhead per turn"] = f"{ms(times) - base:.3f} ms"
            rows[name]["turn 191-200 / 1-10"] = f"{late / statistics.median(times[:10]):.2f}x"
        rates: dict[tuple[str, int, int], list[float]] = {}
        for chats, turns in args.shapes:
            for round_no in range(args.rounds):
                # Alternate the order every round so no system always runs on a warmer machine.
                order = names if round_no % 2 == 0 else names[::-1]
                for name in order:
                    rate, text = await concurrent(name, tmp, chats, turns, round_no)
                    rates.setdefault((name, chats, turns), []).append(rate)
                    print(f"round {round_no + 1} {chats}x{turns} {name}: {text}", file=sys.stderr)
        for (name, chats, turns), values in rates.items():
            rows[name][f"{chats} x {turns}, turns/s"] = (
                f"{statistics.median(values):,.0f} (rounds: "
                + ", ".join(f"{v:,.0f}" for v in values)
                + ")"
            )
    keys = list(rows[names[0]])
    width = max(len(k) for k in keys)
    for name in names:
        print()
        for key in keys:
            print(f"{key.ljust(width)}  {rows[name][key]}")
    if "nodellm-orm" in names and len(names) > 1:
        print()
        print(f"per-turn overhead of the bare core chat itself: {core:.3f} ms")
        for chats, turns in args.shapes:
            ours = statistics.median(rates[("nodellm-orm", chats, turns)])
            best_name, best = max(
                (
                    (n, statistics.median(rates[(n, chats, turns)]))
                    for n in names
                    if n != "nodellm-orm"
                ),
                key=lambda item: item[1],
            )
            print(
                f"{chats} x {turns}: nodellm-orm {ours:,.0f} turns/s / best peer {best:,.0f} "
                f"({best_name}) = {ours / best:.2f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
