"""Property (issue 11.1): for random tenants, chats and operations, nothing done through one
tenant's scoped handle ever reads or changes another tenant's rows (SQLite file, PostgreSQL).

Each example seeds chats (a tool turn each) for a few tenants, snapshots every row, then runs
random operations, each through a random tenant's handle on a random chat (often another
tenant's). Afterwards: every read through a handle returned only that tenant's rows, and the
rows of every chat whose owner did not act on it are exactly the snapshot.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from nodellm_orm import (
    Agent,
    ScopeError,
    Tool,
    connect,
    create_agent_session,
    create_chat,
    create_llm,
    load_agent_session,
    load_chat,
)
from nodellm_orm.stores.base import Store
from nodellm_orm.testing import FakeProvider
from tests.conftest import postgres_server, sql_dialects
from tests.support.postgres import fresh_database


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"Sunny in {params.city}"


class Helper(Agent):
    model = "fake-model"
    instructions = "Help."


OPS = (
    "load",
    "ask",
    "messages",
    "stats",
    "delete",
    "list",
    "usage_all",
    "update_message",
    "delete_message",
    "set_tool_results",
    "list_tool_calls",
    "load_session",
    "update_chat",
)

scenario = st.fixed_dictionaries(
    {
        "tenants": st.integers(min_value=2, max_value=4),
        "chats": st.lists(st.integers(min_value=0, max_value=3), min_size=2, max_size=6),
        "ops": st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=3),
                st.sampled_from(OPS),
                st.integers(min_value=0, max_value=5),
            ),
            min_size=1,
            max_size=12,
        ),
    }
)


async def _snapshot(store: Store, chat_ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chat_id in chat_ids:
        chat = await store.get_chat(chat_id)
        messages = await store.list_messages(chat_id)
        calls = await store.list_tool_calls([m.id for m in messages])
        requests = await store.list_requests(chat_id)
        out[chat_id] = (chat, messages, calls, requests)
    return out


async def _run(url: str, spec: dict[str, Any]) -> None:
    db = await connect(url)
    fake = FakeProvider()
    llm = create_llm(provider=fake)
    try:
        store = await db.bind(_names())
        run = uuid.uuid4().hex[:8]
        tenants = [f"{run}-t{i}" for i in range(spec["tenants"])]
        handles = [db.scoped(userId=t) for t in tenants]
        owner: dict[str, int] = {}
        sessions: dict[str, str] = {}
        for n, who in enumerate(spec["chats"]):
            who %= len(tenants)
            if n % 2:
                session = await create_agent_session(handles[who], llm, Helper)
                chat = session.chat
                sessions[chat.id] = session.id
            else:
                chat = await create_chat(handles[who], llm)
            chat.with_tool(Weather)
            fake.reply_tool_call("get_weather", {"city": "Oslo"})
            fake.reply("Sunny.")
            await chat.ask("Weather?")
            owner[chat.id] = who
        chat_ids = list(owner)
        before = await _snapshot(store, chat_ids)
        acted: set[str] = set()
        deleted: set[str] = set()

        for actor, op, target in spec["ops"]:
            actor %= len(tenants)
            chat_id = chat_ids[target % len(chat_ids)]
            if chat_id in deleted:
                continue  # gone for every tenant: nothing left to read or change
            mine = owner[chat_id] == actor
            handle = handles[actor]
            bound = await handle.bind(_names())
            if mine:
                acted.add(chat_id)
            result: Any = None
            raised = called = False
            try:
                if op == "load":
                    result = await load_chat(handle, llm, chat_id)
                elif op == "ask":
                    loaded = await load_chat(handle, llm, chat_id)
                    if loaded is not None:
                        fake.reply("ok")
                        result = await loaded.ask("again")
                elif op == "messages":
                    result = await bound.list_messages(chat_id)
                elif op == "stats":
                    result = await bound.usage(chat_id)
                elif op == "delete":
                    result = await bound.delete_chat(chat_id)
                    if result:
                        deleted.add(chat_id)
                elif op == "list":
                    listed = await bound.list_chats(limit=100)
                    assert all(c["userId"] == tenants[actor] for c in listed)
                elif op == "usage_all":
                    usage = await bound.usage()
                    expected = 0
                    for c, o in owner.items():
                        if o == actor:
                            expected += (await store.usage(c)).requests
                    assert usage.requests == expected
                elif op in ("update_message", "delete_message", "list_tool_calls"):
                    rows = await store.list_messages(chat_id)
                    if rows:
                        if op == "update_message":
                            called = True
                            await bound.finish_turn(rows[-1].id, {"content": "changed"}, [])
                        elif op == "delete_message":
                            called = True
                            await bound.delete_message(rows[0].id)
                        else:
                            called = True
                            result = await bound.list_tool_calls([r.id for r in rows])
                elif op == "set_tool_results":
                    rows = await store.list_messages(chat_id)
                    calls = await store.list_tool_calls([r.id for r in rows])
                    if calls:
                        called = True
                        await bound.set_tool_results([(calls[0].id, "changed")])
                elif op == "load_session":
                    if chat_id in sessions:
                        result = await load_agent_session(handle, llm, Helper, sessions[chat_id])
                elif op == "update_chat":
                    await bound.update_chat(chat_id, {"instructions": "changed"})
            except ScopeError:
                raised = True
            if mine:
                assert not raised, (op, "refused on the tenant's own chat")
            elif op in ("load", "load_session"):
                assert result is None, (op, "another tenant's chat was loaded")
            elif op == "delete":
                assert result is False
            elif op in ("messages", "stats", "update_chat"):
                assert raised, (op, "went through on another tenant's chat")
            elif op == "ask":
                assert result is None
            elif called:
                assert raised, (op, "went through on another tenant's rows")

        after = await _snapshot(store, chat_ids)
        for chat_id in chat_ids:
            if chat_id not in acted:
                assert after[chat_id] == before[chat_id], "a foreign handle changed rows"
    finally:
        await db.close()
        await llm.aclose()


def _names() -> Any:
    from nodellm_orm import TableNames

    return TableNames()


def _add_user_column(url: str) -> None:
    async def alter() -> None:
        db = await connect(url)
        try:
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
        finally:
            await db.close()

    asyncio.run(alter())


@pytest.fixture(params=sql_dialects())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenants.db'}"
    else:
        server = postgres_server()
        url = fresh_database(server)
    _add_user_column(url)
    return url


@settings(
    max_examples=20,
    # The same examples on every run, so CI is reproducible; raise max_examples to explore.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=scenario)
def test_no_operation_crosses_tenants(database_url: str, spec: dict[str, Any]) -> None:
    asyncio.run(_run(database_url, spec))
