"""Agents and agent sessions as the JS package means them: lazy tools and instructions,
lifecycle hooks at the JS points, define_agent, the statics, and session overrides."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nodellm_orm import (
    LLM,
    Agent,
    Tool,
    connect,
    create_agent_session,
    create_llm,
    load_agent_session,
)
from nodellm_orm.core.agent import define_agent
from nodellm_orm.core.messages import Response, Thinking, ToolCall
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.support.tools import Add, Boom


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    db = await connect(f"sqlite:///{tmp_path / 'agents.db'}", migrate=True)
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


class Calculator(Agent):
    model = "calc-model"

    @staticmethod
    def tools(inputs: dict[str, Any]) -> list[type[Tool]]:  # type: ignore[override]
        return [Add] if inputs.get("math") else []

    @staticmethod
    def instructions(inputs: dict[str, Any]) -> str:  # type: ignore[override]
        return f"Help {inputs.get('user', 'someone')}."


async def test_lazy_tools_and_instructions_follow_the_inputs(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(store, llm, Calculator, metadata={"math": True})
    fake.reply("ok").reply("ok")
    await session.ask("1+1")
    assert [t.name for t in fake.requests[-1].tools] == ["add"]
    assert fake.requests[-1].messages[0].content == "Help someone."
    await session.ask("words", inputs={"math": False, "user": "Ana"})
    assert fake.requests[-1].tools == []
    assert fake.requests[-1].messages[0].content == "Help Ana."
    loaded = await load_agent_session(store, llm, Calculator, session.id)
    assert loaded is not None
    fake.reply("ok")
    await loaded.ask("again")
    assert [t.name for t in fake.requests[-1].tools] == ["add"]  # metadata from the database


async def test_tools_added_with_with_tools_survive_lazy_tools(llm: LLM, fake: FakeProvider) -> None:
    # Each turn resolves the lazy tools again: what the agent was given with with_tools (and
    # with_tool) stays beside them, and replace=True leaves only the given ones.
    agent = Calculator(llm=llm, inputs={"math": True}).with_tools(Boom)
    fake.reply("ok").reply("ok").reply("ok")
    await agent.ask("1+1")
    assert sorted(t.name for t in fake.requests[-1].tools) == ["add", "boom"]
    await agent.ask("words", inputs={"math": False})
    assert [t.name for t in fake.requests[-1].tools] == ["boom"]
    agent.with_tools([Add], replace=True)
    await agent.ask("again", inputs={"math": False})
    assert [t.name for t in fake.requests[-1].tools] == ["add"]


class Watched(Agent):
    model = "watch-model"
    tools = [Add, Boom]
    events: list[str] = []

    def on_start(self, context: dict[str, Any]) -> None:
        self.events.append(f"start:{len(context['messages'])}")

    def on_tool_start(self, call: ToolCall) -> None:
        self.events.append(f"tool_start:{call.name}")

    async def on_tool_end(self, call: ToolCall, result: str) -> None:
        self.events.append(f"tool_end:{result}")

    def on_tool_error(self, call: ToolCall, error: Exception) -> str:
        self.events.append(f"tool_error:{error}")
        return "STOP"  # JS ignores what it returns: it observes, it does not direct

    def on_thinking(self, thinking: Thinking, response: Response) -> None:
        self.events.append(f"thinking:{thinking.text}")

    def on_complete(self, response: Response) -> None:
        self.events.append(f"complete:{response.content}")


async def test_lifecycle_hooks_are_called_at_the_js_points(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    Watched.events = []
    session = await create_agent_session(store, llm, Watched)
    fake.reply_tool_calls([("add", {"a": 1, "b": 2}), ("boom", {})])
    fake.reply("three", thinking="adding")
    answer = await session.ask("go")
    assert answer.content == "three"  # on_tool_error's "STOP" did not stop the turn
    assert Watched.events == [
        "start:1",
        "tool_start:add",
        "tool_end:3",
        "tool_start:boom",
        "tool_error:kaput",
        "thinking:adding",
        "complete:three",  # once, for the final answer only
    ]


async def test_define_agent_builds_a_class_with_the_statics(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm.middlewares import PIIMask

    Helper = define_agent(
        {
            "name": "Helper",
            "model": "helper-model",
            "instructions": "Be helpful.",
            "tools": [Add],
            "maxTokens": 50,
            "headers": {"X-Team": "a"},
            "toolConcurrency": True,
            "middlewares": [PIIMask()],
            "inputs": ["user"],
        }
    )
    assert issubclass(Helper, Agent) and Helper.__name__ == "Helper"
    assert Helper.input_names == ["user"]
    session = await create_agent_session(store, llm, Helper)
    assert session.agent_class == "Helper"
    fake.reply("hi")
    await session.ask("mail me at a@b.io")
    request = fake.requests[-1]
    assert request.model == "helper-model" and request.max_tokens == 50
    assert request.headers["X-Team"] == "a"
    assert request.messages[-1].content == "mail me at [REDACTED]"
    assert session.instance.chat.tool_concurrency is None  # True: all at once
    with pytest.raises(TypeError, match="modle"):
        define_agent(modle="x")


async def test_session_overrides_are_stored_and_reapplied_on_load(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    class Support(Agent):
        model = "class-model"
        instructions = "Class instructions."
        tools = [Add]

    session = await create_agent_session(
        store, llm, Support, model="override-model", instructions="Override.", max_tool_calls=1
    )
    loaded = await load_agent_session(store, llm, Support, session.id, debug=True)
    assert loaded is not None
    assert loaded.model_id == "override-model"
    assert loaded.instance.chat.max_tool_calls == 1
    assert loaded.instance.chat.debug is True
    fake.reply("ok")
    await loaded.ask("hi")
    assert fake.requests[-1].messages[0].content == "Override."
    assert fake.requests[-1].model == "override-model"
    plain = await create_agent_session(store, llm, Support)
    reloaded = await load_agent_session(store, llm, Support, plain.id)
    assert reloaded is not None and reloaded.model_id == "class-model"  # code wins otherwise


async def test_load_debug_logs_round_trips(
    store: SqlStore, llm: LLM, fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    class Quiet(Agent):
        model = "quiet-model"

    session = await create_agent_session(store, llm, Quiet)
    loaded = await load_agent_session(store, llm, Quiet, session.id, {"debug": True})
    assert loaded is not None
    fake.reply("ok")
    with caplog.at_level(logging.INFO, logger="nodellm_orm"):
        await loaded.ask("hi")
    assert any("quiet-model" in r.getMessage() for r in caplog.records)


async def test_a_js_options_dict_in_the_metadata_position_is_an_error(
    store: SqlStore, llm: LLM
) -> None:
    class Support(Agent):
        model = "m"

    with pytest.raises(TypeError, match="keys of the JS options object"):
        await create_agent_session(
            store, llm, Support, {"metadata": {"user": "a"}, "maxToolCalls": 3}
        )
    async with store.engine.connect() as conn:
        rows = await conn.exec_driver_sql('SELECT COUNT(*) FROM "LlmAgentSession"')
        assert rows.scalar_one() == 0


async def test_with_instructions_appends_by_default_as_in_js(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    class Support(Agent):
        model = "m"
        instructions = "Be kind."

    session = await create_agent_session(store, llm, Support)
    fake.reply("a").reply("b")
    await session.with_instructions("Be brief.").ask("one")
    assert fake.requests[-1].messages[0].content == "Be kind.\n\nBe brief."
    await session.with_instructions("Only this.", replace=True).ask("two")
    assert fake.requests[-1].messages[0].content == "Only this."
