"""The core chat without a database: tool loop, execution modes, hooks, schema, agents."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

import nodellm_orm
from nodellm_orm import (
    Agent,
    ConfigurationError,
    Message,
    Response,
    Tool,
    ToolCallLimitError,
    ToolError,
    create_llm,
    register_provider,
)
from nodellm_orm.core.chat import RequestMetrics
from nodellm_orm.testing import FakeProvider, FakeResponse


class Add(Tool):
    name = "add"
    description = "Add two numbers"

    class Params(BaseModel):
        a: int
        b: int

    def execute(self, params: Any) -> int:
        return int(params.a + params.b)


class Slow(Tool):
    name = "slow"
    description = "Sleeps"

    class Params(BaseModel):
        seconds: float

    async def execute(self, params: Any) -> str:
        await asyncio.sleep(params.seconds)
        return "slept"


class Broken(Tool):
    name = "broken"
    description = "Always fails"

    def execute(self, params: Any) -> str:
        raise RuntimeError("disk on fire")


def test_public_names_are_sorted_and_importable() -> None:
    names = nodellm_orm.__all__
    # isort-style order (constants, classes, functions), as ruff's RUF022 keeps it.
    expected = sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert names == expected
    for name in names:
        assert getattr(nodellm_orm, name) is not None


async def test_tool_round_trip_sends_results_back() -> None:
    fake = FakeProvider().reply_tool_call("add", {"a": 2, "b": 3}).reply("5")
    chat = create_llm(provider=fake).chat().with_tool(Add)
    response = await chat.ask("2+3?")
    assert response.content == "5"
    second = fake.requests[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    assert second[1].tool_calls[0].arguments == {"a": 2, "b": 3}
    assert (second[2].content, second[2].tool_call_id) == ("5", second[1].tool_calls[0].id)
    assert fake.requests[0].tools[0].parameters["required"] == ["a", "b"]


async def test_invalid_tool_arguments_go_back_to_the_model_as_an_error() -> None:
    fake = FakeProvider().reply_tool_call("add", {"a": "x"}).reply("sorry")
    chat = create_llm(provider=fake).chat().with_tool(Add)
    await chat.ask("add")
    tool_message = fake.requests[1].messages[-1]
    assert tool_message.is_error
    assert "invalid arguments for tool 'add'" in (tool_message.content or "")


async def test_max_tool_calls_stops_a_looping_model() -> None:
    fake = FakeProvider()
    for _ in range(5):
        fake.reply_tool_call("add", {"a": 1, "b": 1})
    chat = create_llm(provider=fake).chat(max_tool_calls=2).with_tool(Add)
    with pytest.raises(ToolCallLimitError, match="max_tool_calls is 2"):
        await chat.ask("loop")


async def test_tool_error_directives() -> None:
    fake = FakeProvider().reply_tool_call("broken").reply("handled")
    chat = create_llm(provider=fake).chat().with_tool(Broken)
    await chat.ask("go")
    assert fake.requests[1].messages[-1].content == "Error: disk on fire"

    stop = FakeProvider().reply_tool_call("broken")
    chat = create_llm(provider=stop).chat().with_tool(Broken)
    chat.on_tool_call_error(lambda call, exc: None)  # no opinion: the next hook decides
    chat.on_tool_call_error(lambda call, exc: "STOP")
    chat.on_tool_call_error(lambda call, exc: "CONTINUE")
    with pytest.raises(ToolError, match="disk on fire"):
        await chat.ask("go")


async def test_retry_directive_runs_the_tool_again() -> None:
    attempts = []

    class Flaky(Tool):
        name = "flaky"
        description = "fails once"

        def execute(self, params: Any) -> str:
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("transient")
            return "ok"

    fake = FakeProvider().reply_tool_call("flaky").reply("done")
    chat = create_llm(provider=fake).chat().with_tool(Flaky)
    chat.on_tool_call_error(lambda call, exc: "RETRY")
    await chat.ask("go")
    assert len(attempts) == 2
    assert fake.requests[1].messages[-1].content == "ok"


async def test_confirm_mode_needs_every_hook_to_approve() -> None:
    fake = FakeProvider().reply_tool_call("add", {"a": 1, "b": 2}).reply("declined")
    chat = create_llm(provider=fake).chat(tool_execution="confirm").with_tool(Add)
    chat.on_confirm_tool_call(lambda call: True)
    chat.on_confirm_tool_call(lambda call: call.arguments["a"] > 5)
    await chat.ask("go")
    assert "declined by the user" in (fake.requests[1].messages[-1].content or "")


async def test_dry_run_does_not_execute() -> None:
    ran = []

    class Side(Tool):
        name = "side"
        description = "has side effects"

        def execute(self, params: Any) -> str:
            ran.append(1)
            return "done"

    fake = FakeProvider().reply_tool_call("side").reply("ok")
    chat = create_llm(provider=fake).chat().with_tool(Side).with_tool_execution("dry-run")
    await chat.ask("go")
    assert ran == []
    assert "[dry-run]" in (fake.requests[1].messages[-1].content or "")
    with pytest.raises(ValueError, match="unknown tool execution mode"):
        chat.with_tool_execution("yolo")


async def test_tools_run_concurrently_when_allowed() -> None:
    fake = FakeProvider().reply_tool_calls([("slow", {"seconds": 0.2})] * 3).reply("done")
    chat = create_llm(provider=fake).chat(tool_concurrency=3).with_tool(Slow)
    started = asyncio.get_running_loop().time()
    await chat.ask("go")
    assert asyncio.get_running_loop().time() - started < 0.5


async def test_hooks_run_in_order_and_may_replace() -> None:
    fake = FakeProvider().reply_tool_call("add", {"a": 1, "b": 1}).reply("two")
    chat = create_llm(provider=fake).chat().with_tool(Add)
    events: list[str] = []
    chat.on_new_message(lambda: events.append("new"))
    chat.on_end_message(lambda r: events.append(f"end:{r.content}"))
    chat.on_tool_call_start(lambda call: events.append(f"start:{call.name}"))
    chat.on_tool_call_end(lambda call, result: events.append(f"done:{result}"))
    chat.on_tool_result(lambda result: events.append(f"result:{result}"))

    async def prefix(messages: list[Message]) -> list[Message]:
        return [Message(role="system", content="injected"), *messages]

    chat.on_before_request(prefix)
    chat.after_response(lambda r: Response(content=r.content.upper()) if r.content else None)
    metrics: list[RequestMetrics] = []
    chat.on_request(metrics.append)
    response = await chat.ask("1+1")
    assert response.content == "TWO"
    # As in JS: on_end_message only for the final answer; on_tool_result is an end hook,
    # so it runs in registration order with on_tool_call_end.
    assert events == ["new", "start:add", "done:2", "result:2", "new", "end:TWO"]
    assert fake.requests[0].messages[0].content == "injected"
    assert [m.status_code for m in metrics] == [200, 200]


async def test_with_schema_parses_structured_output() -> None:
    class City(BaseModel):
        name: str
        population: int

    fake = FakeProvider().reply('{"name": "Oslo", "population": 700000}')
    chat = create_llm(provider=fake).chat().with_schema(City)
    response = await chat.ask("A city")
    assert response.parsed == City(name="Oslo", population=700000)
    assert fake.requests[0].schema is not None
    assert fake.requests[0].schema["name"] == "City"


async def test_stream_ends_with_usage_of_the_whole_turn() -> None:
    fake = FakeProvider(chunk_size=3).reply_tool_call("add", {"a": 1, "b": 1}).reply("abcdef")
    chat = create_llm(provider=fake).chat().with_tool(Add)
    chunks = [chunk async for chunk in chat.stream("go")]
    assert "".join(str(c) for c in chunks) == "abcdef"
    assert any(c.tool_calls for c in chunks)
    last = chunks[-1]
    assert last.done and last.usage is not None
    assert last.usage.output_tokens == chat.total_usage.output_tokens


async def test_unknown_provider_and_missing_key_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="known providers: anthropic"):
        create_llm(provider="nope")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = create_llm(provider="openai")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        llm.chat()


async def test_registered_provider_is_used_by_name() -> None:
    class Scripted(FakeProvider):
        name = "scripted"
        default_model = "scripted-1"

    register_provider("scripted", Scripted)
    chat = create_llm(provider="scripted").chat()
    assert chat.model == "scripted-1"
    assert (await chat.ask("hi")).content == "(fake) You said: hi"


async def test_fake_provider_errors_carry_status() -> None:
    fake = FakeProvider([FakeResponse(status_code=503, error="overloaded")])
    chat = create_llm(provider=fake).chat()
    with pytest.raises(nodellm_orm.ServerError) as info:
        await chat.ask("x")
    assert info.value.status_code == 503
    assert "overloaded" in str(info.value)


class Planner(Agent):
    model = "planner-1"
    tools = [Add]
    temperature = 0.2

    @staticmethod
    def instructions(inputs: dict[str, Any]) -> str:  # type: ignore[override]
        return f"Plan for {inputs['who']}."


async def test_agent_uses_class_configuration_and_lazy_instructions() -> None:
    fake = FakeProvider().reply_tool_call("add", {"a": 2, "b": 2}).reply("four")
    agent = Planner(llm=create_llm(provider=fake), inputs={"who": "Ada"})
    response = await agent.ask("2+2", inputs={"who": "Grace"})
    assert response.content == "four"
    first = fake.requests[0]
    assert (first.model, first.temperature) == ("planner-1", 0.2)
    assert first.messages[0].content == "Plan for Grace."
    assert [m.role for m in agent.history] == ["user", "assistant", "tool", "assistant"]
    assert agent.total_usage.output_tokens > 0
    assert agent.model_id == "planner-1"
    history = [Message(role="user", content="earlier"), Message(role="assistant", content="ok")]
    resumed = Planner(llm=create_llm(provider=fake), messages=history, inputs={"who": "Ada"})
    await resumed.ask("again")
    assert [m.content for m in fake.requests[-1].messages][:3] == [
        "Plan for Ada.",
        "earlier",
        "ok",
    ]


async def test_request_timeout_option_reaches_the_http_request() -> None:
    import httpx

    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        )

    llm = create_llm(
        provider="openai",
        api_key="sk-test",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    chat = llm.chat("gpt-4o-mini", request_timeout=2.5)
    assert (await chat.ask("hi")).content == "hi"
    assert seen["read"] == 2.5


async def test_answers_missing_the_schema_are_sent_back_for_correction() -> None:
    class Point(BaseModel):
        x: int
        y: int

    fake = FakeProvider().reply("not json").reply('{"x": 1}').reply('{"x": 1, "y": 2}')
    chat = create_llm(provider=fake).chat().with_schema(Point)
    metrics: list[RequestMetrics] = []
    chat.on_request(metrics.append)
    response = await chat.ask("a point")
    assert response.parsed == Point(x=1, y=2)
    assert [m.correction_rounds for m in metrics] == [0, 1, 2]
    correction = fake.requests[1].messages[-1]
    assert correction.role == "user" and "does not match the requested schema" in (
        correction.content or ""
    )
    # The failed attempts do not stay in the history.
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "a point"),
        ("assistant", '{"x": 1, "y": 2}'),
    ]

    stubborn = FakeProvider(["no", "still no"])
    chat = create_llm(provider=stubborn).chat(max_corrections=1).with_schema(Point)
    with pytest.raises(nodellm_orm.StructuredOutputError, match="after 1 correction"):
        await chat.ask("a point")
    assert [m.role for m in chat.messages] == ["user"]


async def test_debug_logs_each_round_trip(caplog: pytest.LogCaptureFixture) -> None:
    chat = create_llm(provider=FakeProvider()).chat(debug=True)
    with caplog.at_level("INFO", logger="nodellm_orm"):
        await chat.ask("hello")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("-> fake fake-model: 1 messages")
    assert lines[1].startswith("<- fake fake-model: HTTP 200")
