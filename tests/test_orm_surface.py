"""The ORM Chat exposes the core chat's whole fluent and hook surface, and each method does on
the ORM Chat what it does on the core chat (so a method added to the core cannot be missing or
behave differently on the ORM one); AgentSession has the JS subset, delegated to its agent.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, Agent, connect, create_agent_session, create_chat
from nodellm_orm.core.chat import Chat as CoreChat
from nodellm_orm.core.chat import ChatConfig, RequestMetrics
from nodellm_orm.core.messages import Message, Response, ToolCall
from nodellm_orm.core.middleware import MiddlewareContext
from nodellm_orm.orm.agent_session import AgentSession
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database
from tests.support.tools import Add


class Answer(BaseModel):
    text: str


class Quiet:
    """A middleware that does nothing."""

    async def on_request(self, ctx: MiddlewareContext) -> None:
        return None


def _hook(*args: Any) -> None:
    return None


# One call per public method of ChatConfig. A method added to the core chat fails the test
# below until it is listed here, so its ORM behaviour is checked from the start.
CALLS: dict[str, tuple[Any, ...]] = {
    "with_instructions": ("Be brief.",),
    "system": ("Be brief.",),
    "with_system_prompt": ("Be brief.",),
    "with_temperature": (0.3,),
    "with_model": ("other-model",),
    "with_provider": ("fake", "provider-model"),
    "with_tool": (Add,),
    "use": (Add,),
    "with_tools": ([Add],),
    "with_schema": (Answer,),
    "with_params": ({"seed": 1},),
    "with_headers": ({"x-a": "1"},),
    "with_request_options": ({"headers": {"x-b": "2"}},),
    "with_thinking": ({"effort": "high", "budget": 2048},),
    "with_effort": ("low",),
    "with_tool_concurrency": (3,),
    "with_tool_execution": ("confirm",),
    "with_tool_choice": ("required",),
    "with_tool_calls": ("one",),
    "with_max_tool_calls": (2,),
    "with_max_tokens": (64,),
    "with_request_timeout": (12.5,),
    "with_middleware": (Quiet(),),
    "on_before_request": (_hook,),
    "before_request": (_hook,),
    "after_response": (_hook,),
    "on_new_message": (_hook,),
    "on_end_message": (_hook,),
    "on_tool_call_start": (_hook,),
    "on_tool_call": (_hook,),
    "on_tool_call_end": (_hook,),
    "on_tool_result": (_hook,),
    "on_tool_call_error": (_hook,),
    "on_confirm_tool_call": (_hook,),
    "on_request": (_hook,),
}


def _surface() -> list[str]:
    return sorted(
        name
        for name, member in vars(ChatConfig).items()
        if not name.startswith("_") and inspect.isfunction(member)
    )


def _state(core: CoreChat) -> dict[str, Any]:
    """What configuring a chat can change, hooks counted per list."""
    hooks = {name: len(value) for name, value in vars(core).items() if name.endswith("_hooks")}
    return {
        "options": core.options,
        "model": core.model,
        "provider": core.provider.name,
        "instructions": core.instructions,
        "tools": sorted(core.tools),
        "middlewares": len(core.middlewares),
        "hooks": hooks,
    }


def test_every_fluent_method_and_hook_of_the_core_chat_is_listed() -> None:
    core_surface = {
        name
        for name in dir(CoreChat)
        if not name.startswith("_") and name.startswith(("with_", "on_", "before_", "after_"))
    }
    assert core_surface <= set(_surface())
    assert set(CALLS) == set(_surface()), "list the new method in CALLS"


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqlStore]:
    # Configuring touches no database: one backend is enough here.
    store = await connect(f"sqlite:///{tmp_path / 'surface.db'}", migrate=True)
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_each_method_does_on_the_orm_chat_what_it_does_on_the_core_chat(
    sqlite: SqlStore, llm: LLM, name: str
) -> None:
    chat = await create_chat(sqlite, llm, model="fake-model")
    reference = llm.chat("fake-model")
    # The ORM's own recorder hooks aside, both start alike.
    orm_before, ref_before = _state(chat.core), _state(reference)
    assert {**orm_before, "hooks": {}} == {**ref_before, "hooks": {}}
    args = CALLS[name]
    assert getattr(chat, name)(*args) is chat  # chainable: returns the ORM chat
    assert getattr(reference, name)(*args) is reference
    orm_after, ref_after = _state(chat.core), _state(reference)
    assert _changes(orm_before, orm_after) == _changes(ref_before, ref_after) != {}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    changed = {k: v for k, v in after.items() if k != "hooks" and before[k] != v}
    added = {
        k: n - before["hooks"][k] for k, n in after["hooks"].items() if n != before["hooks"][k]
    }
    return {**changed, **({"hooks": added} if added else {})}


async def test_every_hook_registered_on_the_orm_chat_runs_in_a_persisted_turn(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    seen: dict[str, list[Any]] = {}

    def record(name: str) -> Callable[..., None]:
        return lambda *args: seen.setdefault(name, []).append(args)

    def keep(messages: list[Message]) -> None:
        seen.setdefault("on_before_request", []).append(len(messages))

    def same(response: Response) -> None:
        seen.setdefault("after_response", []).append(response.content)

    def confirm(call: ToolCall) -> bool:
        seen.setdefault("on_confirm_tool_call", []).append(call.name)
        return True

    def metrics(m: RequestMetrics) -> None:
        seen.setdefault("on_request", []).append(m.status_code)

    chat = await create_chat(database.db, llm, tools=[Add])
    (
        chat.with_tool_execution("confirm")
        .with_max_tool_calls(1)
        .on_before_request(keep)
        .after_response(same)
        .on_new_message(record("on_new_message"))
        .on_end_message(record("on_end_message"))
        .on_tool_call(record("on_tool_call"))
        .on_tool_call_end(record("on_tool_call_end"))
        .on_tool_result(record("on_tool_result"))
        .on_confirm_tool_call(confirm)
        .on_request(metrics)
    )
    fake.reply_tool_call("add", {"a": 2, "b": 3})
    fake.reply("5")
    answer = await chat.ask("2+3?")
    assert answer.content == "5"
    assert seen["on_request"] == [200, 200]
    assert len(seen["on_before_request"]) == len(seen["on_new_message"]) == 2
    assert seen["after_response"] == ["", "5"]
    assert seen["on_confirm_tool_call"] == ["add"]
    assert [c.name for (c,) in seen["on_tool_call"]] == ["add"]
    assert [r for (_, r) in seen["on_tool_call_end"]] == ["5"]
    assert seen["on_tool_result"] == [("5",)]
    assert len(seen["on_end_message"]) == 1
    # with_max_tool_calls binds the persisted turn too: a second tool round is refused.
    fake.reply_tool_call("add", {"a": 1, "b": 1})
    fake.reply_tool_call("add", {"a": 1, "b": 2})
    with pytest.raises(Exception, match="max_tool_calls is 1"):
        await chat.ask("again")


class Helper(Agent):
    model = "helper-model"
    instructions = "Help."


def test_agent_session_has_the_js_subset_of_the_surface() -> None:
    shared = {name for name in _surface() if callable(getattr(AgentSession, name, None))}
    assert shared == {"with_tool", "with_instructions"}  # AgentSession.withTool/withInstructions


async def test_agent_session_configuration_goes_to_its_agent(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(database.db, llm, Helper)
    reference = Helper(llm=llm)
    assert session.with_tool(Add) is session
    assert session.with_instructions("Be brief.") is session
    reference.with_tool(Add).with_instructions("Be brief.")
    assert sorted(session.instance.chat.tools) == sorted(reference.chat.tools) == ["add"]
    assert session.instance.resolve_instructions() == reference.resolve_instructions()
    await session.ask("hi")
    (request,) = fake.requests
    assert request.messages[0].content == "Help.\n\nBe brief."
    assert [t.name for t in request.tools] == ["add"]
