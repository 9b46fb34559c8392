"""The JS API as JS means it (issue: option values, hooks, call shapes), through the ORM.

Each test is written against the rule of `@node-llm/orm` 0.8.0 / `@node-llm/core` 1.17.1 and
tells it from the plausible wrong ones.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, Tool, connect, create_chat, create_llm, load_chat
from nodellm_orm.core.chat import Chat as CoreChat
from nodellm_orm.core.chat import ChatConfig
from nodellm_orm.core.middleware import MiddlewareContext
from nodellm_orm.orm.chat import Chat
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database
from tests.support.tools import Add, Boom


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


async def count(store: SqlStore, table: str) -> int:
    async with store.engine.connect() as conn:
        result = await conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{table}"')
        return int(result.scalar_one())


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


# ---- hooks, with the JS rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        # The first directive wins, every handler runs: STOP then None stops...
        (["STOP", None], "stop"),
        # ...None then STOP stops too (a loop stopping at the first handler that answers
        # would also stop; the next case tells them apart)...
        ([None, "STOP"], "stop"),
        # ...CONTINUE then STOP continues: the first directive wins, not the last / any STOP.
        (["CONTINUE", "STOP"], "continue"),
    ],
)
async def test_on_tool_call_error_runs_every_handler_and_the_first_directive_wins(
    store: SqlStore, llm: LLM, fake: FakeProvider, answers: list[str | None], expected: str
) -> None:
    from nodellm_orm import ToolError

    fake.reply_tool_call("boom").reply("recovered")
    chat = (await create_chat(store, llm)).with_tool(Boom)
    ran: list[int] = []
    for i, answer in enumerate(answers):
        chat.on_tool_call_error(lambda call, error, i=i, a=answer: ran.append(i) or a)  # type: ignore[misc]
    if expected == "stop":
        with pytest.raises(ToolError, match="kaput"):
            await chat.ask("go")
    else:
        assert (await chat.ask("go")).content == "recovered"
    assert ran == [0, 1]  # every handler ran, in order


@pytest.mark.parametrize(
    ("answers", "declined"),
    [
        ([True, False], True),
        ([False, True], True),
        ([None, True], False),  # None does not decline (JS: only `false` does)
        ([True, None], False),
        ([None], False),
    ],
)
async def test_on_confirm_tool_call_declines_on_false_only(
    store: SqlStore,
    llm: LLM,
    fake: FakeProvider,
    answers: list[bool | None],
    declined: bool,
) -> None:
    fake.reply_tool_call("add", {"a": 1, "b": 2}).reply("ok")
    chat = (await create_chat(store, llm)).with_tool(Add).with_tool_execution("confirm")
    for answer in answers:
        chat.on_confirm_tool_call(lambda call, a=answer: a)  # type: ignore[misc]
    await chat.ask("go")
    result = fake.requests[1].messages[-1]
    assert result.role == "tool"
    assert ("declined" in (result.content or "")) is declined
    assert (result.content == "3") is not declined
    stored = await store.list_tool_calls([r.id for r in await chat.messages()])
    assert [c.result for c in stored] == [result.content]


async def test_on_end_message_fires_for_the_final_answer_only(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("add", {"a": 1, "b": 2}).reply_tool_call("add", {"a": 3, "b": 3})
    fake.reply("six")
    ended: list[str] = []
    chat = (await create_chat(store, llm)).with_tool(Add)
    chat.on_end_message(lambda response: ended.append(response.content))
    await chat.ask("go")
    assert ended == ["six"]


async def test_on_tool_call_end_is_for_successful_calls_and_start_is_not_for_declined_ones(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_calls([("add", {"a": 1, "b": 1}), ("boom", {})]).reply("done")
    events: list[str] = []
    chat = (await create_chat(store, llm)).with_tools([Add, Boom])
    chat.with_tool_execution("confirm").on_confirm_tool_call(lambda call: call.name == "add")
    chat.on_tool_call_start(lambda call: events.append(f"start:{call.name}"))
    chat.on_tool_call_end(lambda call, result: events.append(f"end:{call.name}={result}"))
    await chat.ask("go")
    assert events == ["start:add", "end:add=2"]


# ---- option values, down to the request body ------------------------------------------------

OPENAI_TEXT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
ANTHROPIC_TEXT = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
GEMINI_TEXT = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
    "modelVersion": "gemini-2.5-flash",
}
WIRE_REPLIES = {"openai": OPENAI_TEXT, "anthropic": ANTHROPIC_TEXT, "gemini": GEMINI_TEXT}


def wire_llm(provider: str, seen: list[httpx.Request]) -> LLM:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=WIRE_REPLIES[provider])

    return create_llm(
        provider=provider,
        api_key="test-key",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


def body(request: httpx.Request) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(request.content)
    return value


@pytest.mark.parametrize(
    ("provider", "calls", "expected"),
    [
        ("openai", "one", {"parallel_tool_calls": False}),
        ("openai", 1, {"parallel_tool_calls": False}),
        ("openai", "many", {}),
        ("openai", 3, {}),
        ("anthropic", "one", {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}),
        ("anthropic", "many", {}),
    ],
)
async def test_toolCalls_is_mapped_to_what_each_provider_accepts(
    store: SqlStore, provider: str, calls: Any, expected: dict[str, Any]
) -> None:
    seen: list[httpx.Request] = []
    chat = await create_chat(store, wire_llm(provider, seen), {"toolCalls": calls})
    await chat.with_tool(Add).ask("go")
    sent = body(seen[-1])
    for key in ("parallel_tool_calls", "tool_choice"):
        assert sent.get(key) == expected.get(key)
    assert "one" not in json.dumps(sent) and "many" not in json.dumps(sent)


@pytest.mark.parametrize("value", ["several", 0, True, 1.5])
async def test_a_bad_toolCalls_value_raises_naming_it(
    store: SqlStore, llm: LLM, value: Any
) -> None:
    with pytest.raises(ValueError, match="toolCalls"):
        await create_chat(store, llm, {"toolCalls": value})
    chat = await create_chat(store, llm)
    with pytest.raises(ValueError, match="tool_calls"):
        chat.with_tool_calls(value)
    assert await count(store, "LlmChat") == 1  # the failed create wrote nothing


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", {"type": "function", "function": {"name": "add"}}),
        ("anthropic", {"type": "tool", "name": "add"}),
        ("gemini", {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["add"]}}),
    ],
)
async def test_the_toolChoice_object_form_reaches_the_wire(
    store: SqlStore, provider: str, expected: dict[str, Any]
) -> None:
    seen: list[httpx.Request] = []
    choice = {"type": "function", "function": {"name": "add"}}
    chat = await create_chat(store, wire_llm(provider, seen), {"toolChoice": choice})
    await chat.with_tool(Add).ask("go")
    sent = body(seen[-1])
    got = sent.get("toolConfig") if provider == "gemini" else sent.get("tool_choice")
    assert got == expected
    with pytest.raises(TypeError, match="toolChoice"):
        await create_chat(store, wire_llm(provider, seen), {"toolChoice": {"name": "add"}})


@pytest.mark.parametrize(
    ("provider", "path", "expected"),
    [
        ("anthropic", ("thinking", "budget_tokens"), 3000),
        ("gemini", ("generationConfig", "thinkingConfig", "thinkingBudget"), 3000),
    ],
)
async def test_thinking_budget_reaches_the_wire(
    store: SqlStore, provider: str, path: tuple[str, ...], expected: int
) -> None:
    seen: list[httpx.Request] = []
    chat = await create_chat(
        store, wire_llm(provider, seen), thinking={"effort": "low", "budget": 3000}
    )
    await chat.ask("think")
    value: Any = body(seen[-1])
    for key in path:
        value = value[key]
    assert value == expected
    await chat.with_thinking({"budget": 5000}).ask("more")  # with_thinking takes the JS dict
    value = body(seen[-1])
    for key in path:
        value = value[key]
    assert value == 5000
    with pytest.raises(ValueError, match="thinking"):
        chat.with_thinking({"budgte": 1})  # type: ignore[typeddict-unknown-key]


async def test_requestTimeout_is_milliseconds_and_request_timeout_seconds(
    store: SqlStore,
) -> None:
    seen: list[httpx.Request] = []
    llm = wire_llm("openai", seen)
    chat = await create_chat(store, llm, {"requestTimeout": 2500})
    await chat.ask("hi")
    assert seen[-1].extensions["timeout"]["read"] == 2.5
    chat = await create_chat(store, llm, request_timeout=4)
    await chat.ask("hi")
    assert seen[-1].extensions["timeout"]["read"] == 4
    await chat.ask("hi", requestTimeout=500)
    assert seen[-1].extensions["timeout"]["read"] == 0.5


class Slow(Tool):
    name = "slow"
    description = "Yields to the loop between its start and its end"
    log: list[str] = []

    class Params(BaseModel):
        n: int

    async def execute(self, params: Any) -> str:
        self.log.append(f"start{params.n}")
        for _ in range(3):
            await asyncio.sleep(0)
        self.log.append(f"end{params.n}")
        return "ok"


@pytest.mark.parametrize(
    ("options", "concurrent"),
    [
        ({"toolConcurrency": True}, True),
        ({"toolConcurrency": False}, False),
        ({"tool_concurrency": True}, True),
        ({"tool_concurrency": 2}, True),
        ({"toolConcurrency": True, "toolExecution": "confirm"}, False),  # confirm: sequential
        ({}, False),  # JS default
    ],
)
async def test_toolConcurrency_is_a_boolean_as_in_js(
    store: SqlStore,
    llm: LLM,
    fake: FakeProvider,
    options: dict[str, Any],
    concurrent: bool,
) -> None:
    Slow.log = []
    fake.reply_tool_calls([("slow", {"n": 1}), ("slow", {"n": 2})]).reply("done")
    chat = (await create_chat(store, llm, options)).with_tool(Slow)
    await chat.ask("go")
    overlapping = ["start1", "start2", "end1", "end2"]
    assert (Slow.log == overlapping) is concurrent, Slow.log
    assert sorted(Slow.log) == sorted(overlapping)


async def test_maxToolCalls_counts_tool_rounds_with_the_js_default_of_5(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm import ToolCallLimitError

    three = [("add", {"a": 1, "b": 1})] * 3
    for _ in range(5):  # 5 rounds of 3 calls: 15 calls, allowed
        fake.reply_tool_calls(three)
    fake.reply("done")
    chat = (await create_chat(store, llm)).with_tool(Add)
    assert (await chat.ask("go")).content == "done"
    for _ in range(6):
        fake.reply_tool_calls([("add", {"a": 1, "b": 1})])
    with pytest.raises(ToolCallLimitError, match="max_tool_calls is 5"):
        await chat.ask("again")
    chat = (await create_chat(store, llm, {"maxToolCalls": 1})).with_tool(Add)
    fake.reply_tool_calls(three).reply_tool_calls(three)
    with pytest.raises(ToolCallLimitError, match="max_tool_calls is 1"):
        await chat.ask("go")


# ---- middlewares ----------------------------------------------------------------------------


async def test_pii_mask_sends_and_stores_the_user_message_masked(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm.middlewares import PIIMask

    fake.reply("noted")
    chat = await create_chat(database.db, llm, middlewares=[PIIMask()])
    await chat.ask("Mail ana@example.com or call 555-123-4567, card 4111 1111 1111 1111.")
    sent = fake.requests[-1].messages[-1].content or ""
    stored = (await chat.messages())[0].content or ""
    expected = "Mail [REDACTED] or call [REDACTED], card [REDACTED]."
    assert sent == expected
    assert stored == expected  # what the model saw is what the database keeps
    assert chat.core.messages[-2].content == expected  # and the in-memory history
    loaded = await load_chat(database.db, llm, chat.id)
    assert loaded is not None
    fake.reply("again")
    await loaded.ask("next")
    assert "ana@example.com" not in json.dumps([m.content for m in fake.requests[-1].messages])


async def test_cost_guard_stops_the_turn_and_leaves_rows_that_say_so(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm.core.messages import Usage
    from nodellm_orm.middlewares import CostGuard, CostLimitError

    guard = CostGuard(max_cost=0.05)
    chat = await create_chat(database.db, llm, middlewares=[guard])
    fake.reply("cheap", usage=Usage(input_tokens=1, output_tokens=1, cost=0.03))
    await chat.ask("one")
    fake.reply("too much", usage=Usage(input_tokens=1, output_tokens=1, cost=0.03))
    with pytest.raises(CostLimitError, match="budget exceeded"):
        await chat.ask("two")
    store = await database.store()
    requests = await store.list_requests(chat.id)
    assert [r.cost for r in requests] == [0.03, 0.03]  # the paid-for request is kept
    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [
        ("user", "one"),
        ("assistant", "cheap"),
        ("user", "two"),
        ("assistant", "too much"),
    ]
    raw = json.loads(rows[-1].contentRaw or "{}")
    assert "CostLimitError" in raw["error"] and raw["interrupted"] is True
    assert requests[-1].messageId == rows[-1].id  # the request row points at the stopped answer
    # The in-memory history tells the same story as the rows.
    assert [m.content for m in chat.core.messages] == [r.content for r in rows]
    with pytest.raises(ValueError, match="max_cost"):
        CostGuard(max_cost=0)


async def test_middleware_hooks_run_in_the_js_order_and_see_one_context(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    events: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        async def on_request(self, ctx: MiddlewareContext) -> None:
            ctx.state[self.name] = ctx.request_id
            events.append(f"{self.name}.request:{ctx.provider}/{ctx.model}")

        def on_tool_call_start(self, ctx: MiddlewareContext, call: Any) -> None:
            events.append(f"{self.name}.tool_start:{call.name}")

        def on_tool_call_end(self, ctx: MiddlewareContext, call: Any, result: str) -> None:
            events.append(f"{self.name}.tool_end:{result}")

        def on_response(self, ctx: MiddlewareContext, response: Any) -> None:
            assert ctx.state[self.name] == ctx.request_id
            events.append(f"{self.name}.response:{response.content}")

    fake.reply_tool_call("add", {"a": 2, "b": 2}).reply("four")
    chat = await create_chat(store, llm, middlewares=[Recorder("a"), Recorder("b")])
    await chat.with_tool(Add).ask("go")
    assert events == [
        "a.request:fake/fake-model",
        "b.request:fake/fake-model",
        "a.tool_start:add",
        "b.tool_start:add",
        "b.tool_end:4",  # end, error and response hooks run in reverse (a stack)
        "a.tool_end:4",
        "b.response:four",
        "a.response:four",
    ]


async def test_on_response_directives_retry_replace_and_stop(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm.core.messages import Response
    from nodellm_orm.middlewares import MiddlewareStopError, Retry

    class Picky:
        name = "Picky"

        def on_response(self, ctx: MiddlewareContext, response: Response) -> Any:
            if response.content == "bad":
                return Retry("Say it properly.")
            if response.content == "rude":
                return {"action": "REPLACE", "response": Response(content="polite")}
            if response.content == "halt":
                return "STOP"
            return None

    chat = await create_chat(store, llm, middlewares=[Picky()])
    fake.reply("bad").reply("good")
    assert (await chat.ask("q1")).content == "good"
    assert fake.requests[-1].messages[-1].content == "Say it properly."
    fake.reply("rude")
    assert (await chat.ask("q2")).content == "polite"
    fake.reply("halt")
    with pytest.raises(MiddlewareStopError):
        await chat.ask("q3")
    rows = [(r.role, r.content) for r in await chat.messages()]
    # The correction prompt and the rejected answer are not history; the replacement is.
    assert rows[:4] == [
        ("user", "q1"),
        ("assistant", "good"),
        ("user", "q2"),
        ("assistant", "polite"),
    ]
    assert [m.content for m in chat.core.messages] == [c for _, c in rows]


async def test_a_middleware_without_hooks_or_a_bad_directive_is_an_error(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    class Typo:
        name = "Typo"

        def onRequest(self, ctx: Any) -> None:  # JS spelling: would never run
            pass

    with pytest.raises(TypeError, match="none of the hooks"):
        await create_chat(store, llm, middlewares=[Typo()])

    class Odd:
        name = "Odd"

        def on_response(self, ctx: Any, response: Any) -> str:
            return "MAYBE"

    chat = await create_chat(store, llm, middlewares=[Odd()])
    fake.reply("x")
    with pytest.raises(TypeError, match="MAYBE"):
        await chat.ask("q")


async def test_usage_logger_and_schema_self_correction(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm.core.messages import Usage
    from nodellm_orm.middlewares import SchemaSelfCorrection, UsageLogger

    logged: list[tuple[str, dict[str, Any]]] = []
    chat = await create_chat(
        store,
        llm,
        middlewares=[UsageLogger(logger=lambda m, d: logged.append((m, d)), prefix="app")],
    )
    fake.reply("hi", usage=Usage(input_tokens=4, output_tokens=2, cost=0.001))
    await chat.ask("q")
    assert logged[0][0] == "[app] LLM Usage: fake/fake-model"
    assert logged[0][1]["tokens"]["input"] == 4 and logged[0][1]["cost"] == "0.001000"

    class Point(BaseModel):
        x: int

    from nodellm_orm import StructuredOutputError

    chat = await create_chat(
        store, llm, schema=Point, middlewares=[SchemaSelfCorrection(max_retries=0)]
    )
    fake.reply("nope")
    with pytest.raises(StructuredOutputError, match="after 0 correction"):
        await chat.ask("point")  # max_retries=0: no correction round (default would retry)
    chat = await create_chat(
        store, llm, schema=Point, middlewares=[SchemaSelfCorrection(max_retries=3)]
    )
    fake.reply("a").reply("b").reply("c").reply('{"x": 2}')
    assert (await chat.ask("point")).content == '{"x": 2}'


async def test_load_chat_instructions_replace_the_stored_ones_in_rows_and_requests(
    store: SqlStore, llm: LLM, fake: FakeProvider
) -> None:
    chat = await create_chat(store, llm, instructions="Old.")
    loaded = await load_chat(store, llm, chat.id, instructions="New.")
    assert loaded is not None
    fake.reply("ok")
    await loaded.ask("hi")
    assert [m.content for m in fake.requests[-1].messages if m.role == "system"] == ["New."]
    record = await store.get_chat(chat.id)
    assert record is not None and record.instructions == "New."
    with pytest.raises(TypeError, match="metadata"):
        await load_chat(store, llm, chat.id, metadata={"a": 1})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("temperature", "hot"),
        ("maxTokens", 0),
        ("max_tokens", 2.5),
        ("thinking", "high"),
        ("thinking", {"effort": "extreme"}),
        ("thinking", {"budget": -1}),
        ("headers", {"X": 1}),
        ("maxToolCalls", -1),
        ("maxCorrections", True),
        ("requestTimeout", 0),
        ("request_timeout", "30s"),
        ("schema", 42),
        ("params", ["seed"]),
        ("tools", "add"),
        ("toolChoice", ""),
        ("toolChoice", {"type": "function", "function": {}}),
        ("toolCalls", "some"),
        ("toolConcurrency", 4),
        ("tool_concurrency", 0),
        ("toolExecution", "yolo"),
        ("debug", "yes"),
        ("middlewares", "PIIMask"),
    ],
)
async def test_every_value_form_is_checked_with_an_error_naming_the_option(
    store: SqlStore, llm: LLM, option: str, value: Any
) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        await create_chat(store, llm, {option: value})
    assert await count(store, "LlmChat") == 0
    if option in ("temperature", "maxTokens", "thinking", "requestTimeout", "params"):
        chat = await create_chat(store, llm)
        with pytest.raises((TypeError, ValueError), match=option):
            await chat.ask("hi", **{option: value})
