"""The Gemini protocol against bodies shaped like the API's, over httpx mocks.

Streams are kept byte for byte (CRLF-framed `data:` lines) in tests/wire/gemini/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from nodellm_orm.core import errors
from nodellm_orm.core.messages import ChatRequest, Message, StreamDelta, ToolCall, ToolSpec
from nodellm_orm.core.providers.base import RetryPolicy
from nodellm_orm.core.providers.gemini import GeminiProtocol, GeminiProvider
from tests.support.wire import (
    Handler,
    Weather,
    collect,
    fold,
    json_reply,
    sent_body,
    sse_reply,
)

WIRE = Path(__file__).parent / "wire" / "gemini"
MODEL = "gemini-2.5-flash"
BASE = "https://generativelanguage.googleapis.com/v1beta"

# What pydantic emits for a nested model: $defs, $ref, titles, additionalProperties.
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "$defs": {"Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"}},
        "additionalProperties": False,
        "properties": {
            "city": {"title": "City", "type": "string"},
            "unit": {"$ref": "#/$defs/Unit"},
        },
        "required": ["city"],
        "title": "Params",
        "type": "object",
    },
)


def wire(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def make_provider(handler: Handler, **kwargs: Any) -> GeminiProvider:
    kwargs.setdefault("retry", RetryPolicy(attempts=1))
    return GeminiProvider(
        api_key=kwargs.pop("api_key", "AIza-test-key"),
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        **kwargs,
    )


# -- plain JSON ---------------------------------------------------------------------------------

TEXT_RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Paris is the capital of France."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 2070,
        "candidatesTokenCount": 8,
        "totalTokenCount": 2106,
        "cachedContentTokenCount": 2048,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2070}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2048}],
        "thoughtsTokenCount": 28,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mQzDaJzGJvm0qtsP6Me3wAQ",
}


async def test_plain_response_with_usage_and_request_shape() -> None:
    seen: list[httpx.Request] = []
    provider = make_provider(json_reply(TEXT_RESPONSE, seen=seen))
    request = ChatRequest(
        model=MODEL,
        messages=[
            Message(role="system", content="You are terse."),
            Message(role="user", content="Capital of France?"),
        ],
        temperature=0.3,
        max_tokens=256,
    )

    result = fold(await collect(provider, request))

    assert result["content"] == "Paris is the capital of France."
    assert result["finish_reason"] == "stop"
    assert (result["id"], result["model"]) == ("mQzDaJzGJvm0qtsP6Me3wAQ", "gemini-2.5-flash")
    usage = result["usage"]
    # promptTokenCount already includes the cached part; thinking is billed as output.
    assert (usage.input_tokens, usage.cached_tokens) == (2070, 2048)
    assert (usage.output_tokens, usage.reasoning_tokens) == (36, 28)
    assert result["raw"] == {
        "responseId": "mQzDaJzGJvm0qtsP6Me3wAQ",
        "modelVersion": "gemini-2.5-flash",
        "finishReason": "STOP",
    }

    (sent,) = seen
    assert str(sent.url) == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "AIza-test-key"
    assert "authorization" not in sent.headers
    assert sent_body(sent) == {
        "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 256},
    }


async def test_function_calls_get_ids_arguments_and_signatures() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "CiQBVKhc7nQ7b9w3f0z4dGhvdWdodC1zaWduYXR1cmU=",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 95,
            "candidatesTokenCount": 30,
            "totalTokenCount": 125,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "tPLDaNP7L4SEz7IP5Yb-gQw",
    }
    provider = make_provider(json_reply(body))
    request = ChatRequest(
        model=MODEL, messages=[Message(role="user", content="Weather?")], tools=[WEATHER]
    )

    result = fold(await collect(provider, request))

    assert result["finish_reason"] == "tool_calls"
    first, second = result["calls"][0], result["calls"][1]
    assert (first["name"], first["arguments"]) == ("get_weather", {"city": "Paris"})
    assert first["thought_signature"] == "CiQBVKhc7nQ7b9w3f0z4dGhvdWdodC1zaWduYXR1cmU="
    assert (second["arguments"], second.get("thought_signature")) == ({"city": "Tokyo"}, None)
    # No id on the wire: one is made up, distinct per call and stable for the response.
    assert first["id"] != second["id"]
    assert "tPLDaNP7L4SEz7IP5Yb-gQw" in first["id"]
    again = fold(GeminiProtocol().parse_response(body))
    assert again["calls"][0]["id"] == first["id"]


async def test_function_call_ids_from_the_api_are_kept() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {
                                "id": "h6p2x9kq",
                                "name": "get_weather",
                                "args": {"city": "Rome"},
                            },
                            "thoughtSignature": "EtoBCtcBAdHtim8",
                        }
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r3",
    }
    result = fold(GeminiProtocol().parse_response(body))
    assert result["calls"][0]["id"] == "h6p2x9kq"


async def test_thought_parts_are_thinking_not_content() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "text": "**Multiplying**\n\n27 * 400 = 10800, 27 * 53 = 1431.",
                            "thought": True,
                        },
                        {"text": "27 * 453 = 12,231"},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 9,
            "totalTokenCount": 321,
            "thoughtsTokenCount": 300,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "th1",
    }
    seen: list[httpx.Request] = []
    provider = make_provider(json_reply(body, seen=seen))
    request = ChatRequest(
        model=MODEL,
        messages=[Message(role="user", content="27 * 453?")],
        thinking={"budget_tokens": 2048},
    )

    result = fold(await collect(provider, request))

    assert result["thinking"].startswith("**Multiplying**")
    assert result["content"] == "27 * 453 = 12,231"
    assert (result["usage"].output_tokens, result["usage"].reasoning_tokens) == (309, 300)
    assert sent_body(seen[0])["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 2048,
    }


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("gemini-2.5-flash", "low", {"includeThoughts": True, "thinkingBudget": 1024}),
        ("gemini-2.5-pro", "high", {"includeThoughts": True, "thinkingBudget": 24576}),
        ("gemini-3-pro-preview", "high", {"includeThoughts": True, "thinkingLevel": "high"}),
    ],
)
def test_effort(model: str, effort: str, expected: dict[str, Any]) -> None:
    body = GeminiProtocol().render(
        ChatRequest(
            model=model, messages=[Message(role="user", content="hi")], thinking={"effort": effort}
        )
    )
    assert body["generationConfig"]["thinkingConfig"] == expected


# -- rendering ----------------------------------------------------------------------------------


def test_history_tools_and_config() -> None:
    history = [
        Message(role="system", content="Use tools."),
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and Tokyo?"),
        Message(
            role="assistant",
            content="Checking both.",
            tool_calls=[
                ToolCall(
                    id="gemini-call-abc-0",
                    name="get_weather",
                    arguments={"city": "Paris"},
                    thought_signature="sig-paris",
                ),
                ToolCall(id="gemini-call-abc-1", name="get_weather", arguments={"city": "Tokyo"}),
            ],
        ),
        # The first result carries no name: it is found from the call it answers.
        Message(role="tool", tool_call_id="gemini-call-abc-0", content="18C sunny"),
        Message(
            role="tool",
            tool_call_id="gemini-call-abc-1",
            name="get_weather",
            content="service down",
            is_error=True,
        ),
        Message(role="user", content="And tomorrow?"),
    ]
    body = GeminiProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=history,
            tools=[WEATHER],
            tool_choice="auto",
            params={"generationConfig": {"topK": 5}, "safetySettings": []},
            temperature=0.1,
        )
    )

    assert body["systemInstruction"] == {"parts": [{"text": "Use tools.\n\nBe brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [
        {"text": "Checking both."},
        # Synthesized ids stay local; the signature rides on the part that carried it.
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "sig-paris",
        },
        {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "18C sunny"}}},
        {"functionResponse": {"name": "get_weather", "response": {"error": "service down"}}},
        {"text": "And tomorrow?"},
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    # JSON Schema as declared: $defs, $ref, additionalProperties survive.
                    "parametersJsonSchema": WEATHER.parameters,
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {"temperature": 0.1, "topK": 5}
    assert body["safetySettings"] == []


def test_api_ids_are_replayed_on_call_and_response() -> None:
    body = GeminiProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[
                Message(role="user", content="Rome?"),
                Message(
                    role="assistant",
                    tool_calls=[ToolCall(id="h6p2x9kq", name="get_weather", arguments={})],
                ),
                Message(role="tool", tool_call_id="h6p2x9kq", name="get_weather", content="20C"),
            ],
        )
    )
    assert body["contents"][1]["parts"][0]["functionCall"]["id"] == "h6p2x9kq"
    assert body["contents"][2]["parts"][0]["functionResponse"]["id"] == "h6p2x9kq"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice(choice: str, expected: dict[str, Any]) -> None:
    body = GeminiProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[Message(role="user", content="hi")],
            tools=[WEATHER],
            tool_choice=choice,
        )
    )
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_schema_asks_for_json() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = GeminiProtocol().render(
        ChatRequest(
            model=MODEL,
            messages=[Message(role="user", content="hi")],
            schema={"name": "City", "schema": schema},
        )
    )
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


# -- streaming ----------------------------------------------------------------------------------


async def test_stream_with_thinking_function_call_and_final_usage() -> None:
    seen: list[httpx.Request] = []
    provider = make_provider(sse_reply(wire("stream_thinking_function_call.sse"), seen=seen))
    request = ChatRequest(
        model=f"models/{MODEL}",
        messages=[Message(role="user", content="Weather in Paris?")],
        tools=[WEATHER],
        stream=True,
    )

    deltas = await collect(provider, request)
    result = fold(deltas)

    assert str(seen[0].url) == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert result["thinking"].startswith("**Checking the weather**")
    assert result["content"] == "Let me look that up for you."
    call = result["calls"][0]
    assert (call["name"], call["arguments"]) == (
        "get_weather",
        {"city": "Paris", "unit": "celsius"},
    )
    assert (
        call["thought_signature"] == "CiwBVKhc7r5Hn1iYDq0xXK2mOv8cMXyQVtHqGQ0k5Lf3A2xZmPuA0q9wTxhJ"
    )
    assert result["finish_reason"] == "tool_calls"
    assert (result["id"], result["model"]) == ("dD3FaOqPGdWdz7IPt5fN4Q0", "gemini-2.5-flash")
    usage = result["usage"]
    assert (usage.input_tokens, usage.cached_tokens) == (61, 32)
    assert (usage.output_tokens, usage.reasoning_tokens) == (86, 59)
    # Every chunk repeats the id; it is emitted once.
    assert sum(1 for d in deltas if d.id) == 1


async def test_error_chunk_mid_stream_raises() -> None:
    provider = make_provider(sse_reply(wire("stream_unavailable_error.sse")))
    request = ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")], stream=True)
    exchange = await provider.open(request)
    received: list[StreamDelta] = []
    with pytest.raises(errors.ServerError) as info:
        async for delta in exchange.deltas:
            received.append(delta)
    assert info.value.status_code == 503
    assert info.value.message == "The model is overloaded. Please try again later."
    assert info.value.provider == "gemini"
    assert "".join(d.content for d in received) == "Once upon"


# -- errors -------------------------------------------------------------------------------------

INVALID_KEY = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
            ),
            errors.BadRequestError,
        ),
        # A wrong key is a 400 on this API, but it is an authentication problem.
        (400, INVALID_KEY, errors.AuthenticationError),
        (
            401,
            google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            errors.AuthenticationError,
        ),
        (
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            errors.RateLimitError,
        ),
        (
            500,
            google_error(500, "INTERNAL", "An internal error has occurred."),
            errors.ServerError,
        ),
        (
            503,
            google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            errors.ServerError,
        ),
        # Without alt=sse the streaming endpoint wraps its error in an array.
        (
            429,
            [google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.")],
            errors.RateLimitError,
        ),
    ],
)
async def test_error_statuses(status: int, body: Any, error_type: type[errors.APIError]) -> None:
    provider = make_provider(json_reply(body, status=status))
    with pytest.raises(error_type) as info:
        await provider.open(ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")]))
    first = body[0] if isinstance(body, list) else body
    assert info.value.status_code == status
    assert info.value.message == first["error"]["message"]
    assert info.value.provider == "gemini"


# -- configuration ------------------------------------------------------------------------------


async def test_custom_base_url_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    request = ChatRequest(model=MODEL, messages=[Message(role="user", content="hi")])

    await collect(
        make_provider(json_reply(TEXT_RESPONSE, seen=seen), base_url="http://127.0.0.1:9/gm/"),
        request,
    )
    monkeypatch.setenv("GEMINI_API_BASE", "https://proxy.internal/v1beta")
    await collect(make_provider(json_reply(TEXT_RESPONSE, seen=seen)), request)

    assert [str(r.url) for r in seen] == [
        "http://127.0.0.1:9/gm/models/gemini-2.5-flash:generateContent",
        "https://proxy.internal/v1beta/models/gemini-2.5-flash:generateContent",
    ]


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(errors.ConfigurationError, match="GEMINI_API_KEY"):
        GeminiProvider()


# -- end to end through the core chat -----------------------------------------------------------


async def test_tool_round_trip_through_core_chat() -> None:
    from nodellm_orm import create_llm

    first = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "CiQBVKhc7kRvdW5kVHJpcA==",
                        }
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": 15},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "first-response",
    }
    final = {
        "candidates": [
            {
                "content": {"parts": [{"text": "It is 18C and sunny in Paris."}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 10},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "final-response",
    }
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(sent_body(request))
        return httpx.Response(200, json=first if len(bodies) == 1 else final)

    llm = create_llm(
        provider="gemini",
        api_key="k",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    chat = llm.chat(MODEL).with_tool(Weather)
    response = await chat.ask("Weather in Paris?")

    assert response.content == "It is 18C and sunny in Paris."
    assert len(bodies) == 2
    contents = bodies[1]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "CiQBVKhc7kRvdW5kVHJpcA==",
        }
    ]
    assert contents[2]["parts"] == [
        {
            "functionResponse": {
                "name": "get_weather",
                "response": {"output": "18C and sunny in Paris"},
            }
        }
    ]
    declaration = bodies[0]["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert declaration["parametersJsonSchema"]["properties"]["city"]["type"] == "string"
