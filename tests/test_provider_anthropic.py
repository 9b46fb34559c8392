"""The Anthropic Messages protocol against bodies shaped like the API's, over httpx mocks.

Streams are kept byte for byte in tests/wire/anthropic/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from nodellm_orm.core import errors
from nodellm_orm.core.messages import (
    ChatRequest,
    Message,
    StreamDelta,
    Thinking,
    ToolCall,
)
from nodellm_orm.core.providers.anthropic import AnthropicProtocol, AnthropicProvider
from nodellm_orm.core.providers.base import RetryPolicy
from nodellm_orm.core.sse import SSEEvent
from tests.support.wire import (
    WEATHER,
    Handler,
    Weather,
    collect,
    fold,
    json_reply,
    sent_body,
    sse_reply,
)

WIRE = Path(__file__).parent / "wire" / "anthropic"
MODEL = "claude-sonnet-4-5-20250929"


def wire(name: str) -> str:
    return (WIRE / name).read_text()


def make_provider(handler: Handler, **kwargs: Any) -> AnthropicProvider:
    kwargs.setdefault("retry", RetryPolicy(attempts=1))
    return AnthropicProvider(
        api_key=kwargs.pop("api_key", "sk-ant-test"),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        **kwargs,
    )


# -- plain JSON ---------------------------------------------------------------------------------

TEXT_RESPONSE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Paris is the capital of France."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 21,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1800,
        "output_tokens": 11,
        "service_tier": "standard",
    },
}


async def test_plain_response_with_usage_and_request_shape() -> None:
    seen: list[httpx.Request] = []
    provider = make_provider(json_reply(TEXT_RESPONSE, seen=seen))
    request = ChatRequest(
        model=MODEL,
        messages=[
            Message(role="system", content="You are terse."),
            Message(role="system", content="Answer in English."),
            Message(role="user", content="Capital of France?"),
        ],
        temperature=0.2,
    )

    result = fold(await collect(provider, request))

    assert result["content"] == "Paris is the capital of France."
    assert result["finish_reason"] == "stop"
    assert result["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert result["model"] == MODEL
    usage = result["usage"]
    # input_tokens is the whole prompt: the uncached 21 plus the 1800 read from the cache.
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (1821, 1800, 11)
    assert result["raw"] == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "model": MODEL,
        "stop_reason": "end_turn",
    }

    (sent,) = seen
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent_body(sent) == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "temperature": 0.2,
    }


async def test_tool_use_response_gives_decoded_arguments() -> None:
    body = {
        "id": "msg_01Aq9w938a90dw8q",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {"type": "text", "text": "I'll check the weather in both cities."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "celsius"},
            },
            {
                "type": "tool_use",
                "id": "toolu_01B7kq0w8v2e3r4t5y6u7i8",
                "name": "get_weather",
                "input": {"city": "Tokyo"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 412, "output_tokens": 96},
    }
    provider = make_provider(json_reply(body))
    request = ChatRequest(
        model=MODEL, messages=[Message(role="user", content="Weather?")], tools=[WEATHER]
    )

    result = fold(await collect(provider, request))

    assert result["content"] == "I'll check the weather in both cities."
    assert result["finish_reason"] == "tool_calls"
    calls = [result["calls"][i] for i in sorted(result["calls"])]
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ("toolu_01B7kq0w8v2e3r4t5y6u7i8", "get_weather", {"city": "Tokyo"}),
    ]


async def test_thinking_block_gives_text_and_signature() -> None:
    body = {
        "id": "msg_01ThinkThink",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {
                "type": "thinking",
                "thinking": "27 * 453: 27*400 = 10800, 27*53 = 1431, total 12231.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
            },
            {"type": "text", "text": "27 * 453 = 12,231"},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 45, "output_tokens": 210},
    }
    seen: list[httpx.Request] = []
    provider = make_provider(json_reply(body, seen=seen))
    request = ChatRequest(
        model=MODEL,
        messages=[Message(role="user", content="27 * 453?")],
        thinking={"budget_tokens": 2000},
        temperature=0.5,
    )

    result = fold(await collect(provider, request))

    assert result["thinking"].startswith("27 * 453: 27*400")
    assert result["signature"] == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert result["content"] == "27 * 453 = 12,231"
    sent = sent_body(seen[0])
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    # The API refuses a temperature with thinking on.
    assert "temperature" not in sent
    assert sent["max_tokens"] > 2000


@pytest.mark.parametrize(("effort", "budget"), [("low", 1024), ("medium", 4096), ("high", 16384)])
def test_effort_maps_to_a_thinking_budget(effort: str, budget: int) -> None:
    body = AnthropicProtocol().render(
        ChatRequest(
            model=MODEL, messages=[Message(role="user", content="hi")], thinking={"effort": effort}
        )
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] > budget


# -- rendering history --------------------------------------------------------------------------


def test_history_alternates_roles_and_merges_tool_results() -> None:
    history = [
        Message(role="system", content="Use tools."),
        Message(role="user", content="Weather in Paris and Tokyo?"),
        Message(
            role="assistant",
            content="Checking both.",
            thinking=Thinking(text="Two cities, two calls.", signature="sig-abc"),
            tool_calls=[
                ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="toolu_2", name="get_weather", arguments={"city": "Tokyo"}),
            ],
        ),
        Message(role="tool", tool_call_id="toolu_1", name="get_weather", content="18C sunny"),
        Message(
            role="tool",
            tool_call_id="toolu_2",
            name="get_weather",
            content="service down",
            is_error=True,
        ),
        Message(role="user", content="And tomorrow?"),
    ]
    body = AnthropicProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=history,
            tools=[WEATHER],
            tool_choice="auto",
            parallel_tool_calls=False,
            max_tokens=1000,
        )
    )

    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert body["system"] == "Use tools."
    assert body["max_tokens"] == 1000
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "sig-abc"},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Tokyo"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C sunny"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": "service down",
            "is_error": True,
        },
        {"type": "text", "text": "And tomorrow?"},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_unsigned_thinking_and_empty_turns_are_not_sent() -> None:
    body = AnthropicProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[
                Message(role="user", content="one"),
                # An interrupted turn with nothing in it: the API rejects empty content.
                Message(role="assistant", content=None),
                Message(role="user", content="two"),
                Message(role="assistant", content="ok", thinking=Thinking(text="no signature")),
            ],
        )
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: str, expected: dict[str, Any]) -> None:
    body = AnthropicProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[Message(role="user", content="hi")],
            tools=[WEATHER],
            tool_choice=choice,
        )
    )
    assert body["tool_choice"] == expected


def test_no_tool_choice_without_tools() -> None:
    body = AnthropicProtocol().render(
        ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")], tool_choice="auto")
    )
    assert "tools" not in body and "tool_choice" not in body


# -- structured output --------------------------------------------------------------------------

CITY_SCHEMA = {
    "name": "City",
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"],
    },
}


async def test_schema_is_a_forced_tool_whose_input_becomes_the_content() -> None:
    body = {
        "id": "msg_01Struct",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_01Struct",
                "name": "structured_output",
                "input": {"name": "Paris", "population": 2102650},
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 380, "output_tokens": 40},
    }
    seen: list[httpx.Request] = []
    provider = make_provider(json_reply(body, seen=seen))
    request = ChatRequest(
        model=MODEL, messages=[Message(role="user", content="Paris?")], schema=CITY_SCHEMA
    )

    result = fold(await collect(provider, request))

    assert json.loads(result["content"]) == {"name": "Paris", "population": 2102650}
    assert result["calls"] == {}
    assert result["finish_reason"] == "stop"
    sent = sent_body(seen[0])
    assert sent["tools"][-1]["input_schema"] == CITY_SCHEMA["schema"]
    assert sent["tool_choice"] == {"type": "tool", "name": "structured_output"}


def test_schema_with_user_tools_is_offered_not_forced() -> None:
    body = AnthropicProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[Message(role="user", content="hi")],
            tools=[WEATHER],
            schema=CITY_SCHEMA,
        )
    )
    assert [t["name"] for t in body["tools"]] == ["get_weather", "structured_output"]
    assert "tool_choice" not in body
    assert "structured_output" in body["system"]


async def test_streamed_schema_tool_streams_as_content() -> None:
    stream = wire("stream_structured_output.sse")
    provider = make_provider(sse_reply(stream))
    request = ChatRequest(
        model=MODEL,
        messages=[Message(role="user", content="Paris?")],
        schema=CITY_SCHEMA,
        stream=True,
    )
    result = fold(await collect(provider, request))
    assert json.loads(result["content"]) == {"name": "Paris", "population": 2102650}
    assert result["calls"] == {}
    assert result["finish_reason"] == "stop"


# -- streaming ----------------------------------------------------------------------------------

FULL_STREAM = wire("stream_thinking_tool_use.sse")


async def test_full_stream_folds_into_thinking_text_tools_and_usage() -> None:
    seen: list[httpx.Request] = []
    provider = make_provider(sse_reply(FULL_STREAM, seen=seen))
    request = ChatRequest(
        model=MODEL,
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER],
        stream=True,
    )

    deltas = await collect(provider, request)
    result = fold(deltas)

    assert result["thinking"] == "The user wants the weather in Paris; call the tool."
    assert result["signature"] == "ErUBCkYIBhgCIkB0c2lnbmF0dXJl"
    assert result["content"] == "Let me check the weather."
    assert result["calls"][0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert result["calls"][0]["name"] == "get_weather"
    assert result["calls"][0]["arguments"] == {"city": "Paris", "unit": "celsius"}
    # A call whose input streamed nothing still decodes, to an empty object.
    assert (result["calls"][1]["name"], result["calls"][1]["arguments"]) == ("get_time", {})
    assert result["finish_reason"] == "tool_calls"
    assert (result["id"], result["model"]) == ("msg_01Stream", MODEL)
    usage = result["usage"]
    # Input from message_start (cache reads included), output from message_delta.
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (1496, 1024, 89)
    assert result["raw"]["stop_reason"] == "tool_use"
    # Usage is known from the first event on, so a broken stream still accounts for its input.
    assert deltas[0].usage is not None and deltas[0].usage.input_tokens == 1496

    assert sent_body(seen[0])["stream"] is True


def test_message_delta_input_counts_override_message_start() -> None:
    protocol = AnthropicProtocol()
    state: dict[str, Any] = {}
    start = {
        "type": "message_start",
        "message": {"id": "m", "model": MODEL, "usage": {"input_tokens": 10, "output_tokens": 1}},
    }
    # Newer API versions repeat the input counters in message_delta; those are the final ones.
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 30, "output_tokens": 64},
    }
    protocol.parse_event(SSEEvent(event="message_start", data=json.dumps(start)), state)
    (final,) = protocol.parse_event(SSEEvent(event="message_delta", data=json.dumps(delta)), state)
    assert final.usage is not None
    usage = final.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (42, 30, 64)
    assert final.finish_reason == "length"


async def test_error_event_mid_stream_raises_overloaded() -> None:
    stream = wire("stream_overloaded_error.sse")
    provider = make_provider(sse_reply(stream))
    request = ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")], stream=True)
    exchange = await provider.open(request)
    received: list[StreamDelta] = []
    with pytest.raises(errors.ServerError) as info:
        async for delta in exchange.deltas:
            received.append(delta)
    assert info.value.status_code == 529
    assert info.value.message == "Overloaded"
    assert info.value.provider == "anthropic"
    assert "".join(d.content for d in received) == "Hel"


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "message", "error_type"),
    [
        (400, "invalid_request_error", "max_tokens: Field required", errors.BadRequestError),
        (401, "authentication_error", "invalid x-api-key", errors.AuthenticationError),
        (
            429,
            "rate_limit_error",
            "This request would exceed your organization's rate limit of 50 requests per minute.",
            errors.RateLimitError,
        ),
        (500, "api_error", "Internal server error", errors.ServerError),
        (529, "overloaded_error", "Overloaded", errors.ServerError),
    ],
)
async def test_error_statuses(
    status: int, kind: str, message: str, error_type: type[errors.APIError]
) -> None:
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    provider = make_provider(json_reply(body, status=status))
    with pytest.raises(error_type) as info:
        await provider.open(ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")]))
    assert info.value.status_code == status
    assert info.value.message == message
    assert info.value.provider == "anthropic"
    assert info.value.body == body


async def test_overloaded_is_retried_then_succeeds() -> None:
    replies = [
        httpx.Response(
            529,
            json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        httpx.Response(200, json=TEXT_RESPONSE),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies[len(seen) - 1]

    provider = make_provider(handler, retry=RetryPolicy(attempts=2, base_delay=0.0))
    exchange = await provider.open(
        ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")])
    )
    result = fold([d async for d in exchange.deltas])
    assert result["content"] == "Paris is the capital of France."
    assert len(seen) == 2


# -- configuration ------------------------------------------------------------------------------


async def test_custom_base_url_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    request = ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")])

    await collect(
        make_provider(
            json_reply(TEXT_RESPONSE, seen=seen), base_url="http://127.0.0.1:8080/anthropic/v1/"
        ),
        request,
    )
    monkeypatch.setenv("ANTHROPIC_API_BASE", "https://proxy.internal/v1")
    await collect(make_provider(json_reply(TEXT_RESPONSE, seen=seen)), request)

    assert [str(r.url) for r in seen] == [
        "http://127.0.0.1:8080/anthropic/v1/messages",
        "https://proxy.internal/v1/messages",
    ]


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(errors.ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider()


# -- end to end through the core chat -----------------------------------------------------------


async def test_tool_round_trip_through_core_chat() -> None:
    from nodellm_orm import create_llm

    first = {
        "id": "msg_01First",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {
                "type": "thinking",
                "thinking": "Need the weather tool.",
                "signature": "EqoBCkgIARAB-signed",
            },
            {
                "type": "tool_use",
                "id": "toolu_01RoundTrip",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 300, "output_tokens": 40},
    }
    final = {
        "id": "msg_01Final",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "It is 18C and sunny in Paris."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 380, "output_tokens": 12},
    }
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(sent_body(request))
        return httpx.Response(200, json=first if len(bodies) == 1 else final)

    llm = create_llm(
        provider="anthropic",
        api_key="k",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    chat = llm.chat(MODEL).with_tool(Weather)
    response = await chat.ask("Weather in Paris?")

    assert response.content == "It is 18C and sunny in Paris."
    assert len(bodies) == 2
    second = bodies[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == [
        {
            "type": "thinking",
            "thinking": "Need the weather tool.",
            "signature": "EqoBCkgIARAB-signed",
        },
        {
            "type": "tool_use",
            "id": "toolu_01RoundTrip",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
    ]
    assert second[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01RoundTrip",
            "content": "18C and sunny in Paris",
        }
    ]
    assert bodies[0]["tools"][0]["name"] == "get_weather"
    assert bodies[0]["tools"][0]["input_schema"]["properties"]["city"]["type"] == "string"


async def test_schema_through_core_chat_parses_the_tool_input() -> None:
    from nodellm_orm import create_llm

    class City(BaseModel):
        name: str
        population: int

    stream = wire("stream_structured_output.sse").encode()
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(sent_body(request))
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    llm = create_llm(
        provider="anthropic",
        api_key="k",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    chat = llm.chat(MODEL).with_schema(City)
    chunks = [chunk async for chunk in chat.stream("Paris?")]

    assert chunks[-1].done
    assert chat.last_response is not None
    assert chat.last_response.parsed == City(name="Paris", population=2102650)
    assert chat.last_response.tool_calls == []
    assert bodies[0]["tool_choice"] == {"type": "tool", "name": "structured_output"}
