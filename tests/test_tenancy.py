"""Scoped access (issue 11.1): a handle bound to a tenant never reads or changes another's rows.

Every test runs on the four backends with custom tables carrying `userId` and `orgId`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    Agent,
    ScopeError,
    StoreError,
    Tool,
    create_agent_session,
    create_chat,
    load_agent_session,
    load_chat,
    scoped_store,
)
from nodellm_orm.stores.base import Store
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import CUSTOM_TABLES, Backend, Database


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


@pytest.fixture
async def tenants(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await backend.open(tmp_path, tables=CUSTOM_TABLES, chat_columns=("userId", "orgId"))
    try:
        yield opened
    finally:
        await backend.close(opened)


async def _seed(database: Database, llm: LLM, fake: FakeProvider) -> tuple[Any, Any, str]:
    """Alice's and Bob's handles, and a chat of Bob's with a tool turn in it."""
    alice = scoped_store(database.db, userId="alice")
    bob = scoped_store(database.db, userId="bob")
    chat = await create_chat(bob, llm, table_names=database.table_names)
    chat.with_tool(Weather)
    fake.reply_tool_call("get_weather", {"city": "Oslo"})
    fake.reply("Sunny.")
    await chat.ask("Weather in Oslo?")
    return alice, bob, chat.id


async def test_create_stamps_the_scope_and_load_hides_other_tenants(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    alice, bob, bob_chat = await _seed(tenants, llm, fake)
    names = tenants.table_names
    mine = await create_chat(alice, llm, table_names=names)
    assert mine.record["userId"] == "alice"

    assert await load_chat(alice, llm, bob_chat, table_names=names) is None
    again = await load_chat(bob, llm, bob_chat, table_names=names)
    assert again is not None and again.record["userId"] == "bob"
    assert await load_chat(bob, llm, mine.id, table_names=names) is None

    store = await tenants.store()
    listed = await (await alice.bind(names)).list_chats()
    assert [c.id for c in listed] == [mine.id]
    everything = {c.id for c in await store.list_chats()}
    assert everything == {mine.id, bob_chat}


async def test_a_stamp_naming_another_tenant_is_refused(tenants: Database, llm: LLM) -> None:
    alice = scoped_store(tenants.db, userId="alice")
    with pytest.raises(ScopeError, match="userId"):
        await create_chat(alice, llm, table_names=tenants.table_names, userId="bob")
    store = await tenants.store()
    assert await store.list_chats() == []


async def test_stats_and_delete_stay_inside_the_scope(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    alice, bob, bob_chat = await _seed(tenants, llm, fake)
    names = tenants.table_names
    a = await alice.bind(names)
    assert (await a.usage()).requests == 0
    assert (await (await bob.bind(names)).usage()).requests == 2
    assert not await a.delete_chat(bob_chat)
    with pytest.raises(ScopeError):
        await a.usage(bob_chat)
    with pytest.raises(ScopeError):
        await a.list_messages(bob_chat)
    store = await tenants.store()
    assert await store.get_chat(bob_chat) is not None
    assert await store.count_messages(bob_chat) == 2


async def test_row_level_operations_on_another_tenants_rows_write_nothing(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    alice, _, bob_chat = await _seed(tenants, llm, fake)
    store = await tenants.store()
    a = await alice.bind(tenants.table_names)
    messages = await store.list_messages(bob_chat)
    calls = await store.list_tool_calls([m.id for m in messages])
    assert calls
    now = datetime.now(UTC)
    attempts = [
        a.delete_message(messages[0].id),
        a.set_tool_results([(calls[0].id, "pwned")]),
        a.list_tool_calls([messages[1].id]),
        a.finish_turn(messages[-1].id, {"content": "pwned"}, []),
        a.begin_turn(bob_chat, [{"id": "x1", "role": "user", "content": "hi", "createdAt": now}]),
        a.insert_messages([{"id": "x2", "chatId": bob_chat, "role": "user", "createdAt": now}]),
        a.create_tool_calls(
            [
                {
                    "id": "x3",
                    "messageId": messages[1].id,
                    "toolCallId": "c",
                    "name": "n",
                    "arguments": "{}",
                    "createdAt": now,
                }
            ]
        ),
        a.update_chat(bob_chat, {"instructions": "pwned"}),
        a.count_messages(bob_chat),
        a.list_requests(bob_chat),
    ]
    for attempt in attempts:
        with pytest.raises(ScopeError):
            await attempt
    after = await store.list_messages(bob_chat)
    assert [(m.id, m.content) for m in after] == [(m.id, m.content) for m in messages]
    assert [c.result for c in await store.list_tool_calls([m.id for m in after])] == [
        c.result for c in calls
    ]
    chat = await store.get_chat(bob_chat)
    assert chat is not None and chat.instructions is None


async def test_agent_sessions_are_scoped(tenants: Database, llm: LLM, fake: FakeProvider) -> None:
    alice = scoped_store(tenants.db, userId="alice", orgId="acme")
    bob = scoped_store(tenants.db, userId="bob", orgId="acme")
    names = tenants.table_names
    session = await create_agent_session(alice, llm, Helper, table_names=names)
    assert session.chat.record["userId"] == "alice"
    assert session.chat.record["orgId"] == "acme"
    assert await load_agent_session(bob, llm, Helper, session.id, table_names=names) is None
    same = await load_agent_session(alice, llm, Helper, session.id, table_names=names)
    assert same is not None
    fake.reply("Hi.")
    await same.ask("hello")
    assert (await (await bob.bind(names)).usage()).requests == 0


async def test_a_scope_column_the_table_lacks_fails_at_first_use(
    tenants: Database, llm: LLM
) -> None:
    wrong = scoped_store(tenants.db, tenant="alice")
    with pytest.raises(StoreError, match=r"'tenant'.*userId"):
        await create_chat(wrong, llm, table_names=tenants.table_names)
    store = await tenants.store()
    assert await store.list_chats() == []


def test_scope_values_are_checked_at_once() -> None:
    with pytest.raises(ValueError, match="at least one"):
        scoped_store(object())
    with pytest.raises(ValueError, match="None"):
        scoped_store(object(), userId=None)


async def test_connect_store_has_scoped(tmp_path: Path, llm: LLM) -> None:
    from nodellm_orm import connect

    db = await connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert isinstance(db, SqlStore)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
        scoped = db.scoped(userId="carol")
        assert isinstance(scoped, Store)
        chat = await create_chat(scoped, llm)
        assert chat.record["userId"] == "carol"
        assert await load_chat(db.scoped(userId="dave"), llm, chat.id) is None
        assert await load_chat(db, llm, chat.id) is not None
    finally:
        await db.close()
