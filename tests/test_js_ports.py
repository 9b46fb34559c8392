"""Behaviour cases of the JS package's test/ folder (@node-llm/orm 0.8.0) that the suite did
not cover, ported to real databases (every backend) and the FakeProvider."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import nodellm_orm
import nodellm_orm.prisma
from nodellm_orm import LLM, APIError, Tool, create_chat, load_chat
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database


class Search(Tool):
    name = "search"
    description = "Search"

    class Params(BaseModel):
        q: str

    def execute(self, params: Any) -> str:
        return "Stream results"


async def _tool_rows(database: Database, chat_id: str) -> list[Any]:
    store = await database.store()
    ids = [m.id for m in await store.list_messages(chat_id)]
    return await store.list_tool_calls(ids)


async def test_tool_calls_are_persisted_during_streaming(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("search", {"q": "x"}).reply("Found it.")
    chat = (await create_chat(database.db, llm, model="gpt-4")).with_tool(Search)
    async with chat.ask_stream("Search") as stream:
        text = "".join([c.content async for c in stream])
    assert text == "Found it."
    calls = await _tool_rows(database, chat.id)
    assert [(c.name, c.result) for c in calls] == [("search", "Stream results")]
    assert stream.message is not None and calls[0].messageId == stream.message.id


async def test_a_streaming_failure_before_any_content_cleans_up_the_placeholder(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.fail(400, "Stream Error")
    chat = await create_chat(database.db, llm)
    with pytest.raises(APIError, match="Stream Error"):
        async with chat.ask_stream("Hello!") as stream:
            async for _ in stream:
                pass
    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [("user", "Hello!")]  # no empty assistant
    assert [m.role for m in chat.core.messages] == ["user"]  # memory tells the same story
    fake.reply("Hi.")
    await chat.ask("again")
    assert [r.role for r in await chat.messages()] == ["user", "user", "assistant"]


@pytest.mark.parametrize(
    ("persistence", "tool_rows", "request_rows"),
    [
        ({"toolCalls": False}, 0, 2),  # tool calls off alone (JS spelling)
        ({"requests": False}, 1, 0),  # requests off alone
        ({"tool_calls": False, "requests": True}, 0, 2),
        (None, 1, 2),  # everything by default
    ],
)
async def test_each_persistence_switch_alone(
    database: Database,
    llm: LLM,
    fake: FakeProvider,
    persistence: dict[str, bool] | None,
    tool_rows: int,
    request_rows: int,
) -> None:
    fake.reply_tool_call("search", {"q": "x"}).reply("done")
    chat = await create_chat(database.db, llm, persistence=persistence)
    await chat.with_tool(Search).ask("go")
    store = await database.store()
    assert len(await _tool_rows(database, chat.id)) == tool_rows
    assert len(await store.list_requests(chat.id)) == request_rows
    assert [r.role for r in await chat.messages()] == ["user", "assistant"]


async def test_runtime_options_are_stripped_before_the_insert(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    class Mark:
        name = "Test"

        def on_request(self, ctx: Any) -> None:
            pass

    dirty: dict[str, Any] = {
        "model": "gpt-4o",
        "instructions": "Be helpful",
        "middlewares": [Mark()],
        "maxToolCalls": 10,
        "temperature": 0.7,
        "maxTokens": 500,
        "thinking": {"budget": 1000},
        "headers": {"X-Test": "Value"},
        "requestTimeout": 30000,
        "params": {"custom": "param"},
        "persistence": {"requests": True},
        "tableNames": {},
        "debug": False,
        "toolChoice": "auto",
        "toolCalls": "many",
        "toolConcurrency": False,
        "toolExecution": "auto",
    }
    chat = await create_chat(database.db, llm, dirty)
    store = await database.store()
    record = await store.get_chat(chat.id)
    assert record is not None
    assert (record.model, record.instructions, record.metadata) == ("gpt-4o", "Be helpful", None)
    core = chat.core
    assert (core.temperature, core.max_tokens, core.max_tool_calls) == (0.7, 500, 10)
    assert core.request_timeout == 30 and core.thinking == {"budget_tokens": 1000}
    assert core.headers == {"X-Test": "Value"} and core.params == {"custom": "param"}


async def test_tool_options_are_forwarded_to_the_core_chat_on_create_and_load(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    options = {
        "toolChoice": {"type": "function", "function": {"name": "search"}},
        "toolCalls": "one",
        "toolConcurrency": True,
        "toolExecution": "confirm",
    }
    chat = await create_chat(database.db, llm, options)
    loaded = await load_chat(database.db, llm, chat.id, options)
    assert loaded is not None
    for each in (chat, loaded):
        core = each.core
        assert core.tool_choice == "search" and core.tool_calls == "one"
        assert core.tool_concurrency is None and core.tool_execution == "confirm"
    fake.reply("ok")
    await loaded.with_tool(Search).ask("go")
    sent = fake.requests[-1]
    assert sent.tool_choice == "search" and sent.parallel_tool_calls is False
    fluent = chat.with_tool_choice("required").with_tool_calls(2).with_tool_concurrency(False)
    assert fluent is chat and chat.core.tool_choice == "required"
    assert chat.core.tool_concurrency == 1 and chat.with_tool_execution("dry-run") is chat


def test_the_prisma_module_re_exports_the_same_functions() -> None:
    for name in nodellm_orm.prisma.__all__:
        assert getattr(nodellm_orm.prisma, name) is getattr(nodellm_orm, name), name
    assert {"create_chat", "load_chat", "create_agent_session", "load_agent_session"} <= set(
        nodellm_orm.prisma.__all__
    )
