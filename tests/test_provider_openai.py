"""The Chat Completions protocol and the providers that speak it, over a mock HTTP transport.

Response bodies live in tests/wire/openai/ in the exact shape the real APIs send them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from nodellm_orm import Tool, create_llm
from nodellm_orm.core import errors
from nodellm_orm.core.messages import (
    ChatRequest,
    Message,
    StreamDelta,
    ToolCall,
    Usage,
)
from nodellm_orm.core.providers import base as base_module
from nodellm_orm.core.providers.base import Provider, RetryPolicy
from nodellm_orm.core.providers.openai import (
    DeepSeekProvider,
    OllamaProvider,
    OpenAIProtocol,
    OpenAIProvider,
    OpenRouterProvider,
)
from nodellm_orm.core.sse import SSEEvent
from tests.support.wire import WEATHER

WIRE = Path(__file__).parent / "wire" / "openai"
FAST = RetryPolicy(attempts=3, base_delay=0, jitter=0)


def wire(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def json_reply(name: str, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=wire(name), headers={"content-type": "application/json", **headers}
    )


def sse_reply(name: str) -> httpx.Response:
    return httpx.Response(200, content=wire(name), headers={"content-type": "text/event-stream"})


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class Server:
    """A scripted server: answers requests in order and keeps what it received."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply(request) if callable(reply) else reply

    def body(self, i: int = -1) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.requests[i].content)
        return parsed

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def make(cls: type[Provider], server: Server, **kwargs: Any) -> Provider:
    kwargs.setdefault("api_key", None if cls is OllamaProvider else "sk-test")
    return cls(http=server.client(), retry=FAST, **kwargs)


@dataclass
class Folded:
    content: str = ""
    thinking: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    id: str | None = None
    raw: dict[str, Any] | None = None
    deltas: list[StreamDelta] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=c["id"], name=c["name"], arguments=json.loads(c["arguments"] or "{}"))
            for _, c in sorted(self.calls.items())
        ]


def fold(deltas: list[StreamDelta]) -> Folded:
    """Just enough accumulation to read a turn: concatenation, calls by index, last usage wins."""
    out = Folded(deltas=deltas)
    for d in deltas:
        out.content += d.content
        out.thinking += d.thinking
        for tc in d.tool_calls:
            call = out.calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = tc.id or call["id"]
            call["name"] = tc.name or call["name"]
            call["arguments"] += tc.arguments
        out.usage = d.usage or out.usage
        out.finish_reason = d.finish_reason or out.finish_reason
        out.model = d.model or out.model
        out.id = d.id or out.id
        out.raw = d.raw or out.raw
    return out


async def run(provider: Provider, request: ChatRequest) -> Folded:
    exchange = await provider.open(request)
    assert exchange.status_code == 200
    return fold([d async for d in exchange.deltas])


def ask(text: str = "Hi", **kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", "gpt-4o-mini")
    return ChatRequest(messages=[Message(role="user", content=text)], **kwargs)


# -- OpenAI: plain JSON ------------------------------------------------------------------------


async def test_completion_reads_text_usage_and_metadata() -> None:
    server = Server([json_reply("completion.json")])
    provider = make(OpenAIProvider, server)

    out = await run(provider, ask("Capital of France?", temperature=0.2, max_tokens=64))

    request = server.requests[0]
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert server.body() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "temperature": 0.2,
        "max_completion_tokens": 64,
    }
    assert out.content == "Paris is the capital of France."
    assert out.finish_reason == "stop"
    assert out.model == "gpt-4o-mini-2024-07-18"
    assert out.id == "chatcmpl-BQx3a1fKp0yWc8hZ2mT9LrVnE4sUd"
    assert out.usage == Usage(input_tokens=1310, output_tokens=8, cached_tokens=1152)
    assert out.raw == {
        "id": "chatcmpl-BQx3a1fKp0yWc8hZ2mT9LrVnE4sUd",
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0392822090",
        "finish_reason": "stop",
    }


async def test_tool_round_renders_history_and_reads_two_calls() -> None:
    server = Server([json_reply("completion_tool_calls.json")])
    provider = make(OpenAIProvider, server)
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Paris and Lyon?"),
            Message(
                role="assistant",
                content=None,
                tool_calls=[
                    ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
                    ToolCall(id="call_2", name="get_weather", arguments={"city": "Lyon"}),
                ],
            ),
            Message(role="tool", tool_call_id="call_1", name="get_weather", content="18°C"),
            Message(role="tool", tool_call_id="call_2", name="get_weather", content="21°C"),
            Message(role="assistant", content="Paris 18°C, Lyon 21°C."),
            Message(role="user", content="And Paris and Tokyo?"),
        ],
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=True,
    )

    out = await run(provider, request)

    body = server.body()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21°C"},
        {"role": "assistant", "content": "Paris 18°C, Lyon 21°C."},
        {"role": "user", "content": "And Paris and Tokyo?"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert "stream" not in body

    assert out.content == ""
    assert out.finish_reason == "tool_calls"
    assert out.tool_calls == [
        ToolCall(
            id="call_8aXq2ZkLr4TnVw0yBc6HdE1s",
            name="get_weather",
            arguments={"city": "Paris", "unit": "celsius"},
        ),
        ToolCall(
            id="call_Jm3pQ9sWf7GkYt1uNa5RxC2v",
            name="get_weather",
            arguments={"city": "Tokyo", "unit": "celsius"},
        ),
    ]
    assert out.usage == Usage(input_tokens=82, output_tokens=52)


def test_assistant_text_with_tool_calls_keeps_both() -> None:
    message = Message(
        role="assistant",
        content="Let me check.",
        tool_calls=[ToolCall(id="c", name="get_weather", arguments={"city": "Zürich"})],
    )
    rendered = OpenAIProtocol().render_message(message)
    assert rendered["content"] == "Let me check."
    assert json.loads(rendered["tool_calls"][0]["function"]["arguments"]) == {"city": "Zürich"}


@pytest.mark.parametrize(
    ("choice", "wire_value"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: str, wire_value: Any) -> None:
    body = OpenAIProtocol().render(ask(tools=[WEATHER], tool_choice=choice))
    assert body["tool_choice"] == wire_value


def test_tool_options_are_left_out_without_tools() -> None:
    # The API answers 400 to tool_choice / parallel_tool_calls on a request without tools.
    body = OpenAIProtocol().render(ask(tool_choice="auto", parallel_tool_calls=False))
    assert "tool_choice" not in body
    assert "parallel_tool_calls" not in body
    assert "tools" not in body


def test_reasoning_schema_and_params() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = OpenAIProtocol().render(
        ask(
            model="o4-mini",
            thinking={"effort": "high"},
            schema={"name": "answer", "schema": schema},
            params={"seed": 7, "temperature": 1.0},
            temperature=0.1,
        )
    )
    assert body["reasoning_effort"] == "high"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    # params are the caller's escape hatch, so they win over what the request rendered.
    assert body["seed"] == 7
    assert body["temperature"] == 1.0


# -- OpenAI: streaming -------------------------------------------------------------------------


async def test_stream_text_and_final_usage_chunk() -> None:
    server = Server([sse_reply("stream_text.sse")])
    provider = make(OpenAIProvider, server)

    out = await run(provider, ask(stream=True))

    body = server.body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert out.content == "Hello! How can I help you today?"
    assert [d.content for d in out.deltas if d.content] == [
        "Hello",
        "!",
        " How can I",
        " help you today?",
    ]
    assert out.finish_reason == "stop"
    assert out.model == "gpt-4o-mini-2024-07-18"
    assert out.id == "chatcmpl-BQx5nT2vLq8cWz1aKp4HmY7rE0dFs"
    assert out.usage == Usage(input_tokens=9, output_tokens=9)
    # Usage arrives last, after the finish_reason chunk.
    assert out.deltas[-1].usage is not None
    assert out.raw is not None and out.raw["system_fingerprint"] == "fp_0392822090"


async def test_stream_assembles_two_parallel_tool_calls() -> None:
    server = Server([sse_reply("stream_tool_calls.sse")])
    provider = make(OpenAIProvider, server)

    out = await run(provider, ask("Weather in Paris, time in Tokyo", tools=[WEATHER], stream=True))

    assert out.tool_calls == [
        ToolCall(
            id="call_Qw2eR4tY6uI8oP0aS1dF3gH5", name="get_weather", arguments={"city": "Paris"}
        ),
        ToolCall(
            id="call_Zx9cV7bN5mL3kJ1hG0fD8sA6",
            name="get_time",
            arguments={"timezone": "Asia/Tokyo"},
        ),
    ]
    pieces = [tc for d in out.deltas for tc in d.tool_calls]
    # The first piece of each call names it; the rest only carry argument text.
    assert [(p.index, p.id is not None, p.name) for p in pieces] == [
        (0, True, "get_weather"),
        (0, False, None),
        (0, False, None),
        (0, False, None),
        (1, True, "get_time"),
        (1, False, None),
        (1, False, None),
        (1, False, None),
    ]
    assert out.finish_reason == "tool_calls"
    assert out.usage == Usage(input_tokens=97, output_tokens=49)


def test_done_and_empty_chunks_yield_nothing() -> None:
    protocol = OpenAIProtocol()
    state: dict[str, Any] = {}
    assert protocol.parse_event(SSEEvent(data="[DONE]"), state) == []
    first = protocol.parse_event(
        SSEEvent(
            data='{"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}'
        ),
        state,
    )
    assert [(d.id, d.model) for d in first] == [("x", "m")]
    again = '{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":""}}]}'
    assert protocol.parse_event(SSEEvent(data=again), state) == []


# -- errors and retries ------------------------------------------------------------------------


async def test_400_is_not_retried() -> None:
    server = Server([json_reply("error_400.json", 400)])
    provider = make(OpenAIProvider, server)

    with pytest.raises(errors.BadRequestError) as caught:
        await provider.open(ask())

    assert len(server.requests) == 1
    assert caught.value.status_code == 400
    assert caught.value.provider == "openai"
    assert caught.value.message.startswith("Invalid value for 'tool_choice'")


async def test_401_raises_authentication_error() -> None:
    server = Server([json_reply("error_401.json", 401)])
    provider = make(OpenAIProvider, server, api_key="sk-proj-wrong")

    with pytest.raises(errors.AuthenticationError) as caught:
        await provider.open(ask())

    assert len(server.requests) == 1
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in caught.value.message


async def test_429_waits_retry_after_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(base_module, "asyncio", SimpleNamespace(sleep=sleep))
    server = Server(
        [json_reply("error_429.json", 429, **{"retry-after": "2"}), json_reply("completion.json")]
    )
    provider = make(OpenAIProvider, server)

    out = await run(provider, ask())

    assert len(server.requests) == 2
    assert slept == [2.0]
    assert out.content == "Paris is the capital of France."
    assert server.body(0) == server.body(1)


@pytest.mark.parametrize(
    "header", ["Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 -0000"]
)
async def test_429_with_a_past_http_date_retries_at_once(
    monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    # "-0000" parses to a naive datetime: it is UTC all the same, not a crash of the retry loop.
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(base_module, "asyncio", SimpleNamespace(sleep=sleep))
    server = Server(
        [
            json_reply("error_429.json", 429, **{"retry-after": header}),
            json_reply("completion.json"),
        ]
    )
    provider = make(OpenAIProvider, server)

    out = await run(provider, ask())

    assert len(server.requests) == 2
    assert slept == [0.0]
    assert out.content == "Paris is the capital of France."


async def test_500_is_retried_then_raises_server_error() -> None:
    server = Server([json_reply("error_500.json", 500)])
    provider = make(OpenAIProvider, server)

    with pytest.raises(errors.ServerError) as caught:
        await provider.open(ask())

    assert len(server.requests) == FAST.attempts
    assert caught.value.status_code == 500
    assert caught.value.message == (
        "The server had an error while processing your request. Sorry about that!"
    )


async def test_500_then_success_recovers() -> None:
    server = Server([json_reply("error_500.json", 500), json_reply("completion.json")])
    out = await run(make(OpenAIProvider, server), ask())
    assert len(server.requests) == 2
    assert out.content == "Paris is the capital of France."


async def test_timeout_is_retried_then_raises_timeout_error() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    server = Server([hang])
    provider = make(OpenAIProvider, server)

    with pytest.raises(errors.LLMTimeoutError) as caught:
        await provider.open(ask())

    assert len(server.requests) == FAST.attempts
    assert caught.value.provider == "openai"
    assert caught.value.status_code is None


async def test_error_inside_stream_raises_after_partial_content() -> None:
    server = Server([sse_reply("openrouter_stream_error.sse")])
    provider = make(OpenRouterProvider, server)
    exchange = await provider.open(ask(model="meta-llama/llama-3.3-70b-instruct", stream=True))

    seen: list[str] = []
    with pytest.raises(errors.ServerError) as caught:
        async for delta in exchange.deltas:
            seen.append(delta.content)

    assert "".join(seen) == "Once upon"
    assert caught.value.status_code == 502
    assert caught.value.message == "Provider returned error"
    assert caught.value.provider == "openrouter"


def test_error_event_without_numeric_code_is_api_error() -> None:
    event = SSEEvent(data='{"error":{"message":"overloaded","type":"server_error","code":null}}')
    with pytest.raises(errors.APIError) as caught:
        OpenAIProtocol(provider="openai").parse_event(event, {})
    assert caught.value.message == "overloaded"
    assert caught.value.status_code is None


def test_missing_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(errors.ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIProvider()


async def test_api_key_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_API_BASE", "https://gateway.internal/openai/v1/")
    server = Server([json_reply("completion.json")])
    provider = OpenAIProvider(http=server.client(), retry=FAST)

    await run(provider, ask())

    assert str(server.requests[0].url) == "https://gateway.internal/openai/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer sk-env"


# -- compatible providers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "default_url"),
    [
        (OpenAIProvider, "https://api.openai.com/v1/chat/completions"),
        (OpenRouterProvider, "https://openrouter.ai/api/v1/chat/completions"),
        (DeepSeekProvider, "https://api.deepseek.com/v1/chat/completions"),
        (OllamaProvider, "http://localhost:11434/v1/chat/completions"),
    ],
)
async def test_default_and_custom_base_url(
    cls: type[Provider], default_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    server = Server([json_reply("completion.json")])

    await run(make(cls, server), ask(model=cls.default_model))
    await run(make(cls, server, base_url="http://127.0.0.1:8080/v1/"), ask(model=cls.default_model))

    assert [str(r.url) for r in server.requests] == [
        default_url,
        "http://127.0.0.1:8080/v1/chat/completions",
    ]
    assert server.body()["model"] == cls.default_model


@pytest.mark.parametrize(
    ("cls", "field_name"),
    [
        (OpenAIProvider, "max_completion_tokens"),
        (OpenRouterProvider, "max_tokens"),
        (DeepSeekProvider, "max_tokens"),
        (OllamaProvider, "max_tokens"),
    ],
)
def test_output_cap_field(cls: type[Provider], field_name: str) -> None:
    body = cls.protocol.render(ask(max_tokens=100))
    assert body[field_name] == 100
    assert {"max_tokens", "max_completion_tokens"} & body.keys() == {field_name}


async def test_openrouter_asks_for_usage_accounting_and_reads_cost() -> None:
    server = Server([json_reply("openrouter_completion.json")])
    provider = make(OpenRouterProvider, server, api_key="sk-or-v1-test")

    out = await run(provider, ask("Why is the sky blue?", model="openai/gpt-4o-mini"))

    assert server.requests[0].headers["authorization"] == "Bearer sk-or-v1-test"
    assert server.body()["usage"] == {"include": True}
    assert out.content.startswith("The sky looks blue")
    assert out.usage == Usage(input_tokens=14, output_tokens=13, cost=0.0000099)
    assert out.raw is not None and out.raw["provider"] == "OpenAI"


def test_openrouter_params_override_usage_accounting() -> None:
    body = OpenRouterProvider.protocol.render(ask(params={"usage": {"include": False}}))
    assert body["usage"] == {"include": False}


async def test_openrouter_stream_reasoning_and_cost() -> None:
    server = Server([sse_reply("openrouter_stream.sse")])
    provider = make(OpenRouterProvider, server)

    out = await run(provider, ask("2+2?", model="deepseek/deepseek-r1", stream=True))

    assert server.body()["usage"] == {"include": True}
    assert server.body()["stream_options"] == {"include_usage": True}
    assert out.thinking == "Two plus two is four."
    assert out.content == "4"
    assert out.finish_reason == "stop"
    assert out.usage == Usage(
        input_tokens=11, output_tokens=23, reasoning_tokens=19, cost=0.00006174
    )


async def test_deepseek_reasoner_stream() -> None:
    server = Server([sse_reply("deepseek_reasoner_stream.sse")])
    provider = make(DeepSeekProvider, server, api_key="sk-ds")

    out = await run(provider, ask("9.11 or 9.8?", model="deepseek-reasoner", stream=True))

    assert str(server.requests[0].url) == "https://api.deepseek.com/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer sk-ds"
    assert out.thinking == "The user asks for 9.11 vs 9.8; 0.80 > 0.11."
    assert out.content == "9.8 is greater."
    assert out.model == "deepseek-reasoner"
    assert out.usage == Usage(input_tokens=18, output_tokens=57, reasoning_tokens=41)


async def test_deepseek_cache_hits_count_as_cached() -> None:
    body = json.loads(wire("deepseek_completion.json"))
    # Older DeepSeek responses report cache hits only in their own counter.
    del body["usage"]["prompt_tokens_details"]
    server = Server([httpx.Response(200, json=body)])

    out = await run(make(DeepSeekProvider, server), ask(model="deepseek-chat"))

    assert out.content == "Bonjour !"
    assert out.usage == Usage(input_tokens=140, output_tokens=4, cached_tokens=128)


def test_deepseek_structured_output_uses_json_object() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = DeepSeekProvider.protocol.render(ask(schema={"name": "n", "schema": schema}))
    assert body["response_format"] == {"type": "json_object"}


async def test_ollama_needs_no_key_and_sends_no_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    server = Server([json_reply("completion.json")])

    await run(OllamaProvider(http=server.client(), retry=FAST), ask(model="llama3.2"))

    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    "env_value", ["http://gpu-box:11434", "http://gpu-box:11434/", "http://gpu-box:11434/v1"]
)
async def test_ollama_base_from_environment_with_or_without_v1(
    env_value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_BASE", env_value)
    server = Server([json_reply("completion.json")])

    await run(OllamaProvider(http=server.client(), retry=FAST), ask(model="llama3.2"))

    assert str(server.requests[0].url) == "http://gpu-box:11434/v1/chat/completions"


async def test_ollama_stream_tool_calls_all_numbered_zero() -> None:
    server = Server([sse_reply("ollama_stream_tool_calls.sse")])
    provider = make(OllamaProvider, server)

    out = await run(provider, ask("Write two files", model="llama3.2", stream=True))

    assert out.tool_calls == [
        ToolCall(
            id="call_k3v9x2qa",
            name="write_file",
            arguments={"content": 'print("hello")', "path": "hello.py"},
        ),
        ToolCall(
            id="call_p8m1d7wz",
            name="write_file",
            arguments={"content": 'print("world")', "path": "world.py"},
        ),
    ]
    assert out.usage == Usage(input_tokens=161, output_tokens=48)


def test_tool_calls_without_index_get_their_own_slots() -> None:
    protocol = OpenAIProtocol()
    state: dict[str, Any] = {}
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
                        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
                    ]
                },
            }
        ]
    }
    deltas = protocol.parse_event(SSEEvent(data=json.dumps(chunk)), state)
    assert [(tc.index, tc.id, tc.arguments) for tc in deltas[0].tool_calls] == [
        (0, "a", '{"x": 1}'),
        (1, "b", "{}"),
    ]


async def test_ollama_model_not_found() -> None:
    server = Server([json_reply("ollama_error_404.json", 404)])

    with pytest.raises(errors.BadRequestError) as caught:
        await make(OllamaProvider, server).open(ask(model="llama3.2"))

    assert caught.value.status_code == 404
    assert caught.value.provider == "ollama"
    assert caught.value.message == 'model "llama3.2" not found, try pulling it first'


# -- end to end through the core chat ----------------------------------------------------------


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str
        unit: str = "celsius"

    def execute(self, params: Weather.Params) -> str:
        return f"{params.city}: {len(params.city) * 3}°{params.unit[0].upper()}"


class LocalTime(Tool):
    name = "get_time"
    description = "Current local time in a time zone"

    class Params(BaseModel):
        timezone: str

    def execute(self, params: LocalTime.Params) -> str:
        return f"14:05 in {params.timezone}"


def final_text(name: str) -> str:
    body: dict[str, Any] = json.loads(wire(name))
    content: str = body["choices"][0]["message"]["content"]
    return content


@pytest.mark.parametrize(
    ("provider", "url", "first", "final"),
    [
        (
            "openai",
            "https://api.openai.com/v1/chat/completions",
            "completion_tool_calls.json",
            "completion.json",
        ),
        (
            "openrouter",
            "https://openrouter.ai/api/v1/chat/completions",
            "completion_tool_calls.json",
            "openrouter_completion.json",
        ),
        (
            "deepseek",
            "https://api.deepseek.com/v1/chat/completions",
            "completion_tool_calls.json",
            "deepseek_completion.json",
        ),
        (
            "ollama",
            "http://localhost:11434/v1/chat/completions",
            "ollama_tool_calls.json",
            "ollama_completion.json",
        ),
    ],
)
async def test_tool_round_trip_through_core_chat(
    provider: str, url: str, first: str, final: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    server = Server([json_reply(first), json_reply(final)])
    llm = create_llm(
        provider=provider,
        api_key=None if provider == "ollama" else "k",
        http=server.client(),
        retry=FAST,
    )
    chat = llm.chat().with_tool(Weather)

    response = await chat.ask("Weather in Paris and Tokyo?")

    assert [str(r.url) for r in server.requests] == [url, url]
    first_calls = json.loads(wire(first))["choices"][0]["message"]["tool_calls"]
    ids = [c["id"] for c in first_calls]
    second = server.body(1)
    assert second["tools"][0]["function"]["name"] == "get_weather"
    user, assistant, *results = second["messages"]
    assert user == {"role": "user", "content": "Weather in Paris and Tokyo?"}
    assert assistant["role"] == "assistant"
    assert not assistant["content"]
    assert [c["id"] for c in assistant["tool_calls"]] == ids
    assert [json.loads(c["function"]["arguments"])["city"] for c in assistant["tool_calls"]] == [
        "Paris",
        "Tokyo",
    ]
    assert results == [
        {"role": "tool", "tool_call_id": ids[0], "content": "Paris: 15°C"},
        {"role": "tool", "tool_call_id": ids[1], "content": "Tokyo: 15°C"},
    ]
    if provider == "ollama":
        assert "authorization" not in server.requests[0].headers
    else:
        assert server.requests[0].headers["authorization"] == "Bearer k"

    assert response.content == final_text(final)
    assert response.provider == provider
    assert response.tool_calls == []
    final_usage = json.loads(wire(final))["usage"]
    assert response.usage.input_tokens == final_usage["prompt_tokens"]
    assert response.usage.output_tokens == final_usage["completion_tokens"]
    if provider == "openrouter":
        assert response.usage.cost == final_usage["cost"]


async def test_streamed_tool_round_trip_through_core_chat() -> None:
    server = Server([sse_reply("stream_tool_calls.sse"), sse_reply("stream_text.sse")])
    llm = create_llm(provider="openai", api_key="k", http=server.client(), retry=FAST)
    chat = llm.chat("gpt-4o-mini").with_tool(Weather).with_tool(LocalTime)

    chunks = [chunk async for chunk in chat.stream("Weather in Paris, time in Tokyo")]

    assert all(server.body(i)["stream_options"] == {"include_usage": True} for i in (0, 1))
    messages = server.body(1)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert messages[1]["content"] is None
    assert [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in messages[1]["tool_calls"]
    ] == [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Asia/Tokyo"})]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_Qw2eR4tY6uI8oP0aS1dF3gH5", "content": "Paris: 15°C"},
        {
            "role": "tool",
            "tool_call_id": "call_Zx9cV7bN5mL3kJ1hG0fD8sA6",
            "content": "14:05 in Asia/Tokyo",
        },
    ]
    assert "".join(c.content for c in chunks) == "Hello! How can I help you today?"
    assert chunks[-1].done
    # The turn's usage sums both round trips.
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (97 + 9, 49 + 9)
