"""The JS API as JS means it (issue: option values, hooks, call shapes), through the ORM.

Each test is written against the rule of `@node-llm/orm` 0.8.0 / `@node-llm/core` 1.17.1 and
tells it from the plausible wrong ones.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, Tool, connect, create_chat, create_llm, load_chat
from nodellm_orm.core.chat import Chat as CoreChat
from nodellm_orm.core.chat import ChatConfig
from nodellm_orm.orm.chat import Chat
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider


class Add(Tool):
    name = "add"
    description = "Add two numbers"

    class Params(BaseModel):
        a: int
        b: int

    def execute(self, params: Any) -> str:
        return str(params.a + params.b)


class Boom(Tool):
    name = "boom"
    description = "Always fails"

    def execute(self, params: Any) -> str:
        raise RuntimeError("kaput")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    db = await connect(f"sqlite:///{tmp_path / 'js.db'}", migrate=True)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def llm(fake: FakeProvider) -> LLM:
    return create_llm(provider=fake)


# ---- one fluent API, not a hand-kept copy ---------------------------------------------------


def _fluent_names() -> list[str]:
    return [
        name
        for name, member in vars(ChatConfig).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


async def test_the_orm_chat_exposes_every_fluent_method_and_hook_of_the_core_chat(
    store: SqlStore, llm: LLM
) -> None:
    core_public = {n for n in dir(CoreChat) if n.startswith(("with_", "on_", "before_", "after_"))}
    assert core_public <= set(_fluent_names())  # the core chat defines none of its own
    chat = await create_chat(store, llm)
    # Inherited, not re-declared: only the three that also mark a chat column changed.
    redeclared = {n for n in _fluent_names() if n in vars(Chat)}
    assert redeclared == {"with_instructions", "with_model", "with_provider"}
    assert all(hasattr(chat, name) for name in core_public)
    # Each one configures the core chat and returns the ORM chat (chainable).
    assert chat.with_temperature(0.3) is chat and chat.core.temperature == 0.3
    assert chat.with_max_tool_calls(3) is chat and chat.core.max_tool_calls == 3
    hook = lambda m: None  # noqa: E731
    assert chat.on_request(hook) is chat and chat.core.request_hooks[-1] is hook
    assert chat.with_tools([Add], choice="required") is chat
    assert "add" in chat.core.tools and chat.core.tool_choice == "required"


# ---- per-call options ---------------------------------------------------------------------


async def test_ask_takes_js_spelt_options_and_rejects_unknown_ones(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    chat = await create_chat(store, llm)
    fake.reply("short")
    await chat.ask("hi", maxTokens=5, requestTimeout=1500)
    assert fake.requests[-1].max_tokens == 5
    assert fake.requests[-1].timeout == 1.5  # milliseconds in the JS spelling
    fake.reply("x")
    await chat.ask("hi", request_timeout=2, max_tokens=7)
    assert fake.requests[-1].timeout == 2 and fake.requests[-1].max_tokens == 7
    before = len(await chat.messages())
    with pytest.raises(TypeError, match="temprature"):
        await chat.ask("hi", temprature=0.2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="maxTokens"):
        await chat.ask("hi", maxTokens="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="temprature"):
        chat.ask_stream("hi", temprature=0.2)  # type: ignore[call-arg]
    assert len(await chat.messages()) == before  # nothing written


# ---- create_chat / load_chat call shapes ----------------------------------------------------


async def test_load_chat_takes_table_names_positionally_or_as_the_tableNames_option(
    store: SqlStore, llm: LLM
) -> None:
    chat = await create_chat(store, llm)
    names = {"chat": "LlmChat", "message": "LlmMessage", "toolCall": "LlmToolCall"}
    by_position = await load_chat(store, llm, chat.id, names)
    assert by_position is not None and by_position.id == chat.id
    by_option = await load_chat(store, llm, chat.id, {"tableNames": names, "maxTokens": 9})
    assert by_option is not None and by_option.core.max_tokens == 9
    missing = {"chat": "NoSuchChat"}
    with pytest.raises(Exception, match="NoSuchChat"):
        await load_chat(store, llm, chat.id, missing)  # really used, not dropped
    with pytest.raises(TypeError, match="neither an option nor a table name"):
        await load_chat(store, llm, chat.id, {"chat": "LlmChat", "userId": "bob"})
    with pytest.raises(TypeError, match="neither an option nor a table name"):
        await load_chat(store, llm, chat.id, {"where": {"userId": "bob"}})


async def test_load_chat_rejects_unknown_keywords(store: SqlStore, llm: LLM) -> None:
    chat = await create_chat(store, llm)
    with pytest.raises(TypeError, match="userId"):
        await load_chat(store, llm, chat.id, userId="bob")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="toolConcurrency must be True or False"):
        await load_chat(store, llm, chat.id, toolConcurrency=3)  # type: ignore[typeddict-item]


async def test_create_chat_takes_tableNames_in_its_options(store: SqlStore, llm: LLM) -> None:
    with pytest.raises(Exception, match="NoSuchChat"):
        await create_chat(store, llm, {"tableNames": {"chat": "NoSuchChat"}})
    chat = await create_chat(store, llm, {"tableNames": {"chat": "LlmChat"}, "maxTokens": 3})
    assert chat.core.max_tokens == 3
    assert chat.record.metadata is None  # tableNames is not a column
