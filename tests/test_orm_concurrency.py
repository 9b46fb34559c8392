"""Concurrent writers on one chat: other objects, other processes, one agent session."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nodellm_orm import Agent, connect, create_agent_session, create_chat, create_llm, load_chat
from nodellm_orm.stores.base import TurnBegun
from nodellm_orm.testing import FakeProvider
from tests.conftest import SQL_BACKENDS, Database, SqlBackend, on_backends, sql_dialects

REPO = Path(__file__).resolve().parents[1]


class HeldStore:
    """A real store whose begin_turn waits for `release` once `hold` is set."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.hold = False
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def begin_turn(self, *args: Any, **kwargs: Any) -> TurnBegun:
        if self.hold:
            self.reached.set()
            await self.release.wait()
        result: TurnBegun = await self._store.begin_turn(*args, **kwargs)
        return result


def sent(fake: FakeProvider) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in fake.requests[-1].messages]


@on_backends(*SQL_BACKENDS)  # the late insert is staged through the sql store
async def test_a_turn_that_lands_late_reaches_the_other_writer(database: Database) -> None:
    fake_a, fake_b = FakeProvider(), FakeProvider()
    created = await create_chat(database.db, create_llm(provider=fake_a))
    a = await load_chat(database.db, create_llm(provider=fake_a), created.id)
    b = await load_chat(database.db, create_llm(provider=fake_b), created.id)
    assert a is not None and b is not None
    await a.ask("first")
    await b.ask("second")
    held = HeldStore(a.store)
    a.store = a._recorder.store = held  # type: ignore[assignment]
    held.hold = True
    # A's turn is stamped now, but its INSERT waits (a pool, a lock, a slow network)...
    late = asyncio.ensure_future(a.ask("late question"))
    await held.reached.wait()
    await asyncio.sleep(0.01)
    # ... while B runs a whole turn stamped later, so B's cursor passes A's rows.
    await b.ask("quick question")
    held.release.set()
    await late
    await b.ask("and now?")
    fresh = FakeProvider()
    reloaded = await load_chat(database.db, create_llm(provider=fresh), created.id)
    assert reloaded is not None
    await reloaded.ask("and now?")
    assert ("user", "late question") in sent(fake_b)
    assert ("assistant", "(fake) You said: late question") in sent(fake_b)
    # B's history equals a reload's, in the reload's order.
    assert sent(fake_b) == [*sent(fresh)[: len(sent(fake_b)) - 1], ("user", "and now?")]
    # And A, which answered late, sees B's quick turn at its next turn, as a reload does.
    await a.ask("anything else?")
    reload_a = FakeProvider()
    again = await load_chat(database.db, create_llm(provider=reload_a), created.id)
    assert again is not None
    await again.ask("anything else?")
    history_a = sent(fake_a)[:-1]
    assert history_a == sent(reload_a)[: len(history_a)]


# Both processes stamp every row with one millisecond (a fixed clock), as two processes starting
# turns in the same millisecond do: ordering then falls to the ids alone.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
import nodellm_orm.orm.ids as ids
import nodellm_orm.orm.turn as turn
from nodellm_orm import connect, create_llm, load_chat
from nodellm_orm.testing import FakeProvider

FIXED = datetime(2026, 1, 1, tzinfo=UTC)
ids.time = type("Clock", (), {"time_ns": staticmethod(lambda: 1767225600000 * 1_000_000)})
turn.utc_now = lambda: FIXED

async def main():
    db = await connect(sys.argv[1])
    chat = await load_chat(db, create_llm(provider=FakeProvider()), sys.argv[2])
    for i in range(6):
        await chat.ask(f"{sys.argv[3]} question {i}")
    await db.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("dialect", sql_dialects())
async def test_turns_of_two_processes_never_interleave(dialect: str, tmp_path: Path) -> None:
    url = await SqlBackend(dialect).url(tmp_path)
    db = await connect(url, migrate=True)
    chat = await create_chat(db, create_llm(provider=FakeProvider()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, url, chat.id, name], env=env)
        for name in ("p0", "p1")
    ]
    for child in children:
        assert child.wait(120) == 0
    rows = await chat.messages()
    assert len(rows) == 24
    pairs = [(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]
    for question, answer in pairs:
        assert question.role == "user"
        assert (answer.role, answer.content) == (
            "assistant",
            f"(fake) You said: {question.content}",
        )
    # And the replay a reload sends keeps every answer after its question.
    fake = FakeProvider()
    reloaded = await load_chat(db, create_llm(provider=fake), chat.id)
    assert reloaded is not None
    await reloaded.ask("done?")
    history = sent(fake)[:-1]
    for (role_q, q), (role_a, a) in zip(history[::2], history[1::2], strict=True):
        assert (role_q, role_a) == ("user", "assistant")
        assert a == f"(fake) You said: {q}"
    await db.close()


class Concierge(Agent):
    model = "concierge-model"

    @staticmethod
    def instructions(inputs: dict[str, Any]) -> str:  # type: ignore[override]
        return f"Serve {inputs.get('user', 'nobody')}."


async def test_concurrent_session_turns_each_see_their_own_inputs(database: Database) -> None:
    fake = FakeProvider(latency=0.01)
    session = await create_agent_session(database.db, create_llm(provider=fake), Concierge)
    users = ["ann", "bob", "cid", "dee"]
    await asyncio.gather(*(session.ask(f"hello from {u}", inputs={"user": u}) for u in users))
    assert len(fake.requests) == len(users)
    for request in fake.requests:
        system = [m.content for m in request.messages if m.role == "system"]
        asker = [m.content for m in request.messages if m.role == "user"][-1]
        assert asker is not None
        assert system == [f"Serve {asker.removeprefix('hello from ')}."]
