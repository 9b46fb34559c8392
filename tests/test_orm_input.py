"""Bad input is refused with a clear error and writes nothing; custom tables and columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, StoreError, TableNames, Tool, create_chat, load_chat
from nodellm_orm.testing import FakeProvider
from tests.conftest import CUSTOM_TABLES, Backend, Database


class Clock(Tool):
    name = "clock"
    description = "The time"

    class Params(BaseModel):
        zone: str

    def execute(self, params: Any) -> str:
        return f"12:00 in {params.zone}"


@pytest.fixture
async def custom(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await backend.open(tmp_path, tables=CUSTOM_TABLES, chat_columns=("userId",))
    try:
        yield opened
    finally:
        await backend.close(opened)


async def test_unknown_column_is_named_and_nothing_is_written(database: Database, llm: LLM) -> None:
    with pytest.raises(ValueError, match="'projectId'"):
        await create_chat(database.db, llm, projectId="p1")
    store = await database.store()
    assert await store.list_chats() == []


async def test_non_json_metadata_is_refused(database: Database, llm: LLM) -> None:
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        await create_chat(database.db, llm, metadata={"at": object()})
    store = await database.store()
    assert await store.list_chats() == []


async def test_wrong_argument_types_are_refused(database: Database, llm: LLM) -> None:
    with pytest.raises(TypeError, match="llm must be an LLM"):
        await create_chat(database.db, "gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must be a string"):
        await create_chat(database.db, llm, model=4)
    with pytest.raises(TypeError, match="db must be"):
        await create_chat("sqlite:///x.db", llm)
    with pytest.raises(TypeError, match="chat_id must be a string"):
        await load_chat(database.db, llm, 42)  # type: ignore[arg-type]
    chat = await create_chat(database.db, llm)
    with pytest.raises(TypeError, match="message must be a string"):
        await chat.ask(["not", "text"])  # type: ignore[arg-type]
    assert await chat.messages() == []


async def test_unknown_table_name_lists_the_available_ones(database: Database, llm: LLM) -> None:
    with pytest.raises(StoreError, match=r"(?i)llmchat") as info:
        await create_chat(database.db, llm, table_names=TableNames(chat="NoSuchChat"))
    assert "NoSuchChat" in str(info.value)
    store = await database.store()
    assert await store.list_chats() == []


async def test_unknown_table_names_key_is_refused(database: Database, llm: LLM) -> None:
    with pytest.raises(ValueError, match="unknown table_names key 'chats'"):
        await create_chat(database.db, llm, table_names={"chats": "X"})


async def test_custom_tables_for_every_model(custom: Database, fake: FakeProvider) -> None:
    llm = _llm(fake)
    fake.reply_tool_call("clock", {"zone": "UTC"}).reply("It is noon.")
    # JS spelling of the keys, as in @node-llm/orm's README.
    names = {
        "chat": CUSTOM_TABLES["chat"],
        "message": CUSTOM_TABLES["message"],
        "toolCall": CUSTOM_TABLES["tool_call"],
        "request": CUSTOM_TABLES["request"],
        "agentSession": CUSTOM_TABLES["agent_session"],
    }
    chat = await create_chat(custom.db, llm, table_names=names, userId="user-7")
    chat.with_tool(Clock)
    answer = await chat.ask("Time?")

    store = await custom.store()
    record = await store.get_chat(chat.id)
    assert record is not None and record["userId"] == "user-7"
    assert [r.role for r in await store.list_messages(chat.id)] == ["user", "assistant"]
    assert len(await store.list_tool_calls([answer.id])) == 1
    assert len(await store.list_requests(chat.id)) == 2
    # The default tables were not touched.
    default = await open_default(custom)
    assert await default.list_chats() == []

    reloaded = await load_chat(custom.db, llm, chat.id, table_names=names)
    assert reloaded is not None
    assert reloaded.record["userId"] == "user-7"


async def open_default(database: Database) -> Any:
    from nodellm_orm.stores import open_store

    return await open_store(database.db, TableNames())


def _llm(fake: FakeProvider) -> LLM:
    from nodellm_orm import create_llm

    return create_llm(provider=fake)
