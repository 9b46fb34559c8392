"""What is particular to the prisma backend: delegates, Json storage, transactions, round trips.

Runs on a real generated client served by the query-engine stand-in, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import StoreError, TableNames, Tool, create_chat, create_llm
from nodellm_orm.orm.ids import new_id, utc_now
from nodellm_orm.stores import open_store
from nodellm_orm.stores.base import AdminStore, TurnBegun, TurnStore
from nodellm_orm.stores.prisma import PrismaStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import BACKENDS, Database, backend_params


class Clock(Tool):
    name = "clock"
    description = "The time"

    class Params(BaseModel):
        zone: str

    def execute(self, params: Any) -> str:
        return f"12:00 in {params.zone}"


@pytest.fixture(params=backend_params(["prisma-sqlite", "prisma-postgresql"]))
async def prisma_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend = BACKENDS[request.param]
    opened = await backend.open(tmp_path, tables=None, chat_columns=())
    try:
        yield opened
    finally:
        await backend.close(opened)


@contextmanager
def engine_requests(client: Any) -> Iterator[list[str]]:
    """Record every HTTP request the client sends its query engine (the engine still runs)."""
    engine = client._engine
    original = engine.request
    seen: list[str] = []

    async def counting(method: str, path: str, **kwargs: Any) -> Any:
        seen.append(path)
        return await original(method, path, **kwargs)

    engine.request = counting
    try:
        yield seen
    finally:
        engine.request = original


def _chat_row(**extra: Any) -> dict[str, Any]:
    now = utc_now()
    return {"id": new_id(), "createdAt": now, "updatedAt": now, **extra}


async def test_a_prisma_client_selects_the_prisma_store(prisma_db: Database) -> None:
    store = await prisma_db.store()
    assert isinstance(store, PrismaStore)
    assert store.dialect == prisma_db.dialect
    # Learned once per client: the same store comes back.
    assert await prisma_db.store() is store


async def test_delegates_are_named_by_an_exact_name_of_their_model(prisma_db: Database) -> None:
    # The model's name, prisma-client-py's attribute and the JS client's delegate name.
    default = await prisma_db.store()
    for chat in ("LlmChat", "llmchat", "llmChat"):
        store = await open_store(prisma_db.db, TableNames(chat=chat, tool_call="LlmToolCall"))
        record = await store.create_chat(_chat_row(model=chat))
        found = await default.get_chat(record.id)
        assert found is not None and found.model == chat


@pytest.mark.parametrize("chat", ["LLMCHAT", "Llmchat", "llmCHAT"])
async def test_a_model_name_differing_in_case_only_is_reported_never_used(
    prisma_db: Database, chat: str
) -> None:
    with pytest.raises(StoreError) as info:
        await open_store(prisma_db.db, TableNames(chat=chat))
    text = str(info.value)
    assert f"model {chat!r} (for chat) does not exist" in text
    assert f"'LlmChat' differs from {chat!r} only in letter case" in text
    store = await prisma_db.store()
    assert await store.list_chats() == []


async def test_missing_delegate_error_lists_the_available_ones(prisma_db: Database) -> None:
    with pytest.raises(StoreError) as info:
        await open_store(prisma_db.db, TableNames(message="Messages"))
    text = str(info.value)
    assert "'Messages'" in text
    for model in ("LlmChat", "LlmMessage", "LlmToolCall", "LlmRequest", "LlmAgentSession"):
        assert model in text
    for delegate in ("llmchat", "llmmessage", "llmtoolcall", "llmrequest", "llmagentsession"):
        assert delegate in text


async def test_json_is_stored_natively_on_postgresql_and_as_text_on_sqlite(
    prisma_db: Database,
) -> None:
    store = await prisma_db.store()
    meta = {"tags": ["a", "é"], "n": 1.5, "nested": {"ok": True}}
    record = await store.create_chat(_chat_row(metadata=meta))
    assert record.metadata == meta
    loaded = await store.get_chat(record.id)
    assert loaded is not None and loaded.metadata == meta

    if prisma_db.dialect == "postgresql":
        rows = await prisma_db.db.query_raw(
            'SELECT jsonb_typeof("metadata") AS t FROM "LlmChat" WHERE "id" = $1', record.id
        )
        assert rows == [{"t": "object"}]
    else:
        rows = await prisma_db.db.query_raw(
            'SELECT "metadata" AS m FROM "LlmChat" WHERE "id" = ?', record.id
        )
        assert json.loads(rows[0]["m"]) == meta


async def test_transaction_commits_together_and_rolls_back_together(prisma_db: Database) -> None:
    store = await prisma_db.store()
    async with store.transaction():
        kept = await store.create_chat(_chat_row(model="kept"))
        async with store.transaction():  # nested: joins the outer one
            await store.update_chat(kept.id, {"model": "kept-2"})

    with pytest.raises(RuntimeError, match="abort"):
        async with store.transaction():
            dropped = await store.create_chat(_chat_row(model="dropped"))
            async with store.transaction():
                await store.update_chat(kept.id, {"model": "changed"})
            # Reads inside see the transaction's own writes.
            assert await store.get_chat(dropped.id) is not None
            raise RuntimeError("abort")

    assert [c.model for c in await store.list_chats()] == ["kept-2"]


async def test_round_trips_per_turn(prisma_db: Database) -> None:
    """Engine requests per turn: begin_turn, finish_turn (update + requests in one batch); a
    tool round adds its insert and its results update. The sql backend's 3 and 5 statements."""
    fake = FakeProvider()
    llm = create_llm(provider=fake)
    chat = await create_chat(prisma_db.db, llm)
    chat.with_tool(Clock)

    with engine_requests(prisma_db.db) as seen:
        await chat.ask("hi")
    assert seen == ["/"] * 2

    fake.reply_tool_call("clock", {"zone": "UTC"}).reply("Noon.")
    with engine_requests(prisma_db.db) as seen:
        await chat.ask("time?")
    assert seen == ["/"] * 4

    rows = await chat.messages()
    assert [r.content for r in rows] == ["hi", "(fake) You said: hi", "time?", "Noon."]


async def test_begin_turn_counts_only_others_rows_after_the_cursor(prisma_db: Database) -> None:
    store = await prisma_db.store()
    chat = await store.create_chat(_chat_row())

    def message(role: str) -> dict[str, Any]:
        return {"id": new_id(), "chatId": chat.id, "role": role, "createdAt": utc_now()}

    first = [message("user"), message("assistant")]
    assert await store.begin_turn(chat.id, first) == TurnBegun(0)
    cursor = (first[1]["createdAt"], first[1]["id"])
    await store.insert_messages([message("user")])  # another writer
    second = [message("user"), message("assistant")]
    assert await store.begin_turn(chat.id, second, after=cursor) == TurnBegun(1)
    assert await store.begin_turn(chat.id, [message("user")]) == TurnBegun(5)
    assert isinstance(store, TurnStore) and isinstance(store, AdminStore)


async def test_custom_columns_are_written_as_given(tmp_path: Path) -> None:
    from tests.conftest import CUSTOM_TABLES

    backend = BACKENDS["prisma-sqlite"]
    db = await backend.open(tmp_path, tables=CUSTOM_TABLES, chat_columns=("userId",))
    try:
        store = await db.store()
        assert "userId" in await store.chat_columns()
        record = await store.create_chat(_chat_row(userId="u-1"))
        assert record["userId"] == "u-1"
        with pytest.raises(StoreError, match="'teamId'"):
            await store.create_chat(_chat_row(teamId="t"))
    finally:
        await backend.close(db)
