"""What every provider's round trip goes through (`Provider.open` and the delta pipeline), tested
once per wire protocol over httpx.MockTransport with bodies in each API's own format:

- surrogate pairs cut between two stream events are joined; a lone half becomes U+FFFD;
- wrong-shaped success bodies raise `ResponseFormatError` and still report their round trip;
- an HTML error page becomes a one-line message, the page stays on `.body`;
- a 429 then a 200: each attempt's duration is its own, `latency_ms` is the whole call;
- API keys echoed by a provider never reach a message, a body, a traceback, a log or a row.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import nodellm_orm
from nodellm_orm import LLM, Tool, connect, create_chat, create_llm
from nodellm_orm.core import errors
from nodellm_orm.core.chat import RequestMetrics
from nodellm_orm.core.deltas import normalized, repair_text
from nodellm_orm.core.messages import StreamDelta
from nodellm_orm.core.providers.anthropic import AnthropicProvider
from nodellm_orm.core.providers.base import Provider, RetryPolicy
from nodellm_orm.core.providers.gemini import GeminiProvider
from nodellm_orm.core.providers.openai import DeepSeekProvider, OllamaProvider, OpenAIProvider
from nodellm_orm.testing import FakeProvider, FakeResponse
from tests.conftest import Database

FAST = RetryPolicy(attempts=2, base_delay=0, jitter=0)
SMILE = "\U0001f600"  # 😀, "\ud83d\ude00" in JSON
HIGH, LOW = "\ud83d", "\ude00"


# -- a scripted server -------------------------------------------------------------------------

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class Server:
    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply(request) if callable(reply) else reply

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def body(self, i: int) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.requests[i].content)
        return parsed


def sse(events: list[tuple[str | None, Any]]) -> httpx.Response:
    """A text/event-stream reply. `json.dumps` escapes a lone surrogate as `\\udXXX`, exactly
    what a provider that cut a pair sends."""
    lines = []
    for name, data in events:
        if name:
            lines.append(f"event: {name}")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}")
        lines.append("")
    content = ("\n".join(lines) + "\n").encode()
    return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})


def reply(body: Any, status: int = 200) -> httpx.Response:
    """A JSON reply, ASCII-escaped as the APIs send it (a lone surrogate as `\\udXXX`)."""
    content = json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


def raw_reply(text: str, status: int = 200, content_type: str = "application/json") -> Reply:
    return httpx.Response(status, content=text.encode(), headers={"content-type": content_type})


# -- each protocol's stream, in its own wire format --------------------------------------------


def openai_stream(
    *, thinking: list[str] = (), text: list[str] = (), args: list[str] = ()
) -> httpx.Response:
    head = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1}
    head["model"] = "deepseek-reasoner"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
    events += [(None, chunk({"reasoning_content": piece})) for piece in thinking]
    events += [(None, chunk({"content": piece})) for piece in text]
    for i, piece in enumerate(args):
        call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
        if i == 0:
            call.update(id="call_1", type="function")
            call["function"]["name"] = "face"
        events.append((None, chunk({"tool_calls": [call]})))
    events.append((None, chunk({}, "tool_calls" if args else "stop")))
    usage = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}
    events += [(None, {**head, "choices": [], "usage": usage}), (None, "[DONE]")]
    return sse(events)


def anthropic_stream(
    *, thinking: list[str] = (), text: list[str] = (), args: list[str] = ()
) -> httpx.Response:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    }
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": message})
    ]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, **start})
        )
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if thinking:
        block(
            {"content_block": {"type": "thinking", "thinking": ""}},
            [{"type": "thinking_delta", "thinking": p} for p in thinking]
            + [{"type": "signature_delta", "signature": "EqQBCgIYAhIM"}],
        )
    if text:
        block(
            {"content_block": {"type": "text", "text": ""}},
            [{"type": "text_delta", "text": p} for p in text],
        )
    if args:
        block(
            {"content_block": {"type": "tool_use", "id": "toolu_1", "name": "face", "input": {}}},
            [{"type": "input_json_delta", "partial_json": p} for p in args],
        )
    stop = {"stop_reason": "tool_use" if args else "end_turn", "stop_sequence": None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 5}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return sse(events)


def gemini_stream(
    *, thinking: list[str] = (), text: list[str] = (), call_args: dict[str, Any] | None = None
) -> httpx.Response:
    def chunk(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        usage = {"promptTokenCount": 9, "candidatesTokenCount": 5, "totalTokenCount": 14}
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "resp-1",
        }

    events: list[tuple[str | None, Any]] = []
    events += [(None, chunk([{"text": p, "thought": True}])) for p in thinking]
    events += [(None, chunk([{"text": p}])) for p in text]
    if call_args is not None:
        events.append((None, chunk([{"functionCall": {"name": "face", "args": call_args}}])))
    events.append((None, chunk([{"text": ""}], "STOP")))
    return sse(events)


class Face(Tool):
    """Echoes the face it was given, so the next request carries the decoded arguments."""

    name = "face"
    description = "Say a face"

    class Params(BaseModel):
        face: str

    def execute(self, params: Any) -> str:
        return f"you sent {params.face}"


def llm_on(cls: type[Provider], server: Server, **kwargs: Any) -> LLM:
    kwargs.setdefault("api_key", "sk-test-0123456789")
    kwargs.setdefault("retry", FAST)
    return create_llm(provider=cls(http=server.client(), **kwargs))


def encodable(chat: Any) -> None:
    """What the next request and the database need: every message encodes as UTF-8."""
    for message in chat.messages:
        message.model_dump_json().encode("utf-8")


# -- surrogate pairs split across events ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "model", "first", "second"),
    [
        (
            DeepSeekProvider,
            "deepseek-reasoner",
            openai_stream(
                thinking=[f"Hmm {HIGH}", f"{LOW}."],
                text=[f"Smile {HIGH}", f"{LOW}!"],
                args=[f'{{"face": "{HIGH}', f'{LOW}"}}'],
            ),
            openai_stream(text=["Done ", HIGH]),
        ),
        (
            AnthropicProvider,
            "claude-sonnet-4-5",
            anthropic_stream(
                thinking=[f"Hmm {HIGH}", f"{LOW}."],
                text=[f"Smile {HIGH}", f"{LOW}!"],
                args=[f'{{"face": "{HIGH}', f'{LOW}"}}'],
            ),
            anthropic_stream(text=["Done ", HIGH]),
        ),
        (
            GeminiProvider,
            "gemini-2.5-flash",
            # Gemini sends a call's arguments whole: the pair cannot be cut there.
            gemini_stream(
                thinking=[f"Hmm {HIGH}", f"{LOW}."],
                text=[f"Smile {HIGH}", f"{LOW}!"],
                call_args={"face": SMILE},
            ),
            gemini_stream(text=["Done ", HIGH]),
        ),
    ],
    ids=["openai", "anthropic", "gemini"],
)
async def test_a_surrogate_pair_cut_between_events_is_joined_and_a_lone_half_replaced(
    cls: type[Provider], model: str, first: httpx.Response, second: httpx.Response
) -> None:
    server = Server([first, second])
    chat = llm_on(cls, server).chat(model).with_tool(Face)

    chunks = [c async for c in chat.stream("Make a face")]

    assistant = chat.messages[1]
    assert assistant.content == f"Smile {SMILE}!"
    assert assistant.thinking is not None and assistant.thinking.text == f"Hmm {SMILE}."
    assert assistant.tool_calls[0].arguments == {"face": SMILE}
    assert chat.messages[2].content == f"you sent {SMILE}"
    # The second request went out (UTF-8 encoded) with the joined character in it.
    assert SMILE in server.requests[1].content.decode("utf-8")
    # The lone half the second answer ended with, which no later event completes.
    assert chat.messages[-1].content == "Done \ufffd"
    assert "".join(c.content for c in chunks) == f"Smile {SMILE}!Done \ufffd"
    encodable(chat)


async def test_lone_surrogates_in_whole_bodies_and_escaped_arguments_become_replacement() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"a{HIGH}b",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            # The arguments are JSON text that itself escapes a lone half.
                            "function": {"name": "face", "arguments": '{"face": "x\\ud83d"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }
    done = {**completion, "choices": [{**completion["choices"][0], "message": {"content": "ok"}}]}
    done["choices"][0]["finish_reason"] = "stop"
    server = Server([reply(completion), reply(done)])
    chat = llm_on(OpenAIProvider, server).chat("gpt-4o-mini").with_tool(Face)

    answer = await chat.ask("go")

    assert answer.content == "ok"
    assert chat.messages[1].content == "a\ufffdb"
    assert chat.messages[1].tool_calls[0].arguments == {"face": "x\ufffd"}
    assert chat.messages[2].content == "you sent x\ufffd"
    encodable(chat)


# -- wrong-shaped success bodies -------------------------------------------------------------------

MALFORMED = [
    (
        OpenAIProvider,
        "gpt-4o-mini",
        False,
        reply({"id": "chatcmpl-1", "object": "chat.completion"}),
    ),
    (OpenAIProvider, "gpt-4o-mini", False, reply([{"choices": []}])),
    (OpenAIProvider, "gpt-4o-mini", False, reply({"choices": [{"message": "hello"}]})),
    (OpenAIProvider, "gpt-4o-mini", False, raw_reply('{"id": "chatcmpl-1", "choi')),
    (OpenAIProvider, "gpt-4o-mini", True, sse([(None, "not json at all")])),
    (OpenAIProvider, "gpt-4o-mini", True, sse([(None, [1, 2])])),
    (OpenAIProvider, "gpt-4o-mini", True, sse([(None, {"choices": [{"delta": {"content": 7}}]})])),
    (
        AnthropicProvider,
        "claude-sonnet-4-5",
        False,
        reply({"id": "msg_1", "type": "message", "content": {"type": "text", "text": "hi"}}),
    ),
    (AnthropicProvider, "claude-sonnet-4-5", False, reply({"type": "message"})),
    (
        AnthropicProvider,
        "claude-sonnet-4-5",
        True,
        sse([("content_block_delta", {"type": "content_block_delta", "index": "x"})]),
    ),
    (AnthropicProvider, "claude-sonnet-4-5", True, sse([("message_start", "<html>")])),
    (GeminiProvider, "gemini-2.5-flash", False, reply({"modelVersion": "gemini-2.5-flash"})),
    (GeminiProvider, "gemini-2.5-flash", False, reply({"candidates": {"content": "hi"}})),
    (GeminiProvider, "gemini-2.5-flash", True, sse([(None, {"candidates": [{"content": 3}]})])),
    (GeminiProvider, "gemini-2.5-flash", True, sse([(None, "data that is not json")])),
]


@pytest.mark.parametrize(("cls", "model", "stream", "body"), MALFORMED)
async def test_a_wrong_shaped_success_body_is_a_response_format_error_and_is_reported(
    cls: type[Provider], model: str, stream: bool, body: httpx.Response
) -> None:
    server = Server([body])
    chat = llm_on(cls, server).chat(model)
    seen: list[RequestMetrics] = []
    chat.on_request(seen.append)

    with pytest.raises(errors.ResponseFormatError) as caught:
        if stream:
            async for _ in chat.stream("hi"):
                pass
        else:
            await chat.ask("hi")

    error = caught.value
    assert isinstance(error, errors.LLMError)
    assert (error.provider, error.status_code) == (cls.name, 200)
    assert len(str(error)) < 400
    assert len(server.requests) == 1  # not retried: the same body would come back
    (metrics,) = seen
    assert (metrics.status_code, metrics.error) == (200, error)
    # The failed turn leaves no half answer in the history.
    assert [m.role for m in chat.messages] == ["user"]


async def test_a_wrong_shaped_body_leaves_its_request_row(database: Database) -> None:
    server = Server([reply({"object": "chat.completion", "choices": None})])
    chat = await create_chat(database.db, llm_on(OpenAIProvider, server), model="gpt-4o-mini")
    with pytest.raises(errors.ResponseFormatError):
        await chat.ask("hi")
    (row,) = await (await database.store()).list_requests(chat.id)
    assert (row.statusCode, row.provider, row.model) == (200, "openai", "gpt-4o-mini")


def test_response_format_error_is_exported() -> None:
    assert nodellm_orm.ResponseFormatError is errors.ResponseFormatError
    assert issubclass(errors.ResponseFormatError, errors.LLMError)


# -- HTML and other non-JSON error pages --------------------------------------------------------


def proxy_page(status: str) -> str:
    filler = "<p>" + "upstream connect error or disconnect/reset before headers. " * 340 + "</p>"
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{status} | example-gateway</title>\n</head>\n<body>\n"
        f"<h1>{status}</h1>\n{filler}\n</body>\n</html>\n"
    )


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider, GeminiProvider])
async def test_an_html_error_page_is_a_short_message_with_the_page_kept(
    cls: type[Provider],
) -> None:
    page = proxy_page("502 Bad Gateway")
    assert len(page) > 18_000
    server = Server([raw_reply(page, 502, "text/html")])
    provider = cls(http=server.client(), api_key="sk-test-0123456789", retry=FAST)

    with pytest.raises(errors.ServerError) as caught:
        await provider.open(
            nodellm_orm.core.messages.ChatRequest(
                model="m", messages=[nodellm_orm.Message(role="user", content="hi")]
            )
        )

    error = caught.value
    assert error.status_code == 502
    assert error.message.startswith("502 Bad Gateway | example-gateway")
    assert len(str(error)) <= 260
    assert error.body == page


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider, GeminiProvider])
@pytest.mark.parametrize("body", ["page", ""])
async def test_a_success_status_without_stream_events_is_a_response_format_error(
    cls: type[Provider], body: str
) -> None:
    page = proxy_page("Maintenance") if body == "page" else ""
    server = Server([raw_reply(page, 200, "text/html")])
    chat = llm_on(cls, server).chat("m")
    seen: list[RequestMetrics] = []
    chat.on_request(seen.append)

    with pytest.raises(errors.ResponseFormatError) as caught:
        async for _ in chat.stream("hi"):
            pass

    assert caught.value.status_code == 200
    assert caught.value.message.startswith("the stream carried no events")
    if page:
        assert "Maintenance | example-gateway" in caught.value.message
    assert len(str(caught.value)) < 400
    assert [m.status_code for m in seen] == [200]


async def test_a_plain_text_error_body_gives_its_first_line() -> None:
    text = "\n\nupstream request timeout\n" + "x" * 5000
    server = Server([raw_reply(text, 504, "text/plain")])
    provider = OpenAIProvider(http=server.client(), api_key="sk-test-0123456789", retry=FAST)
    with pytest.raises(errors.ServerError) as caught:
        await provider.open(
            nodellm_orm.core.messages.ChatRequest(
                model="m", messages=[nodellm_orm.Message(role="user", content="hi")]
            )
        )
    assert caught.value.message.startswith("upstream request timeout")
    assert len(caught.value.message) <= 260
    assert caught.value.body == text


# -- per-attempt duration and whole-call latency ------------------------------------------------


class FakeClock:
    """Time that moves only when the server answers or the retry loop waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("stream", [False, True])
async def test_each_attempt_has_its_own_duration_and_latency_is_the_whole_call(
    stream: bool,
) -> None:
    clock = FakeClock()
    completion = json.loads((Path(__file__).parent / "wire/openai/completion.json").read_text())
    ok = openai_stream(text=["Paris."]) if stream else reply(completion)

    def slow(ms: int, response: httpx.Response) -> Reply:
        def answer(request: httpx.Request) -> httpx.Response:
            clock.now += ms / 1000
            return response

        return answer

    limited = reply({"error": {"message": "Rate limit", "type": "requests", "code": None}}, 429)
    server = Server([slow(7, limited), slow(2, ok)])
    provider = OpenAIProvider(
        http=server.client(),
        api_key="sk-test-0123456789",
        retry=RetryPolicy(attempts=2, base_delay=0.5, jitter=0),
    )
    provider.clock, provider.sleep = clock, clock.sleep
    chat = create_llm(provider=provider).chat("gpt-4o-mini")
    seen: list[RequestMetrics] = []
    chat.on_request(seen.append)

    if stream:
        async for _ in chat.stream("Capital of France?"):
            pass
        response = chat.last_response
        assert response is not None
    else:
        response = await chat.ask("Capital of France?")

    assert [(m.status_code, m.duration_ms) for m in seen] == [(429, 7), (200, 2)]
    assert response.latency_ms == 7 + 500 + 2


async def test_a_final_failed_attempt_reports_its_own_duration() -> None:
    clock = FakeClock()

    def failing(request: httpx.Request) -> httpx.Response:
        clock.now += 0.003
        return reply({"error": {"message": "boom", "type": "server_error"}}, 500)

    server = Server([failing])
    provider = OpenAIProvider(
        http=server.client(),
        api_key="sk-test-0123456789",
        retry=RetryPolicy(attempts=3, base_delay=1.0, jitter=0),
    )
    provider.clock, provider.sleep = clock, clock.sleep
    chat = create_llm(provider=provider).chat("gpt-4o-mini")
    seen: list[RequestMetrics] = []
    chat.on_request(seen.append)

    with pytest.raises(errors.ServerError):
        await chat.ask("hi")

    assert [(m.status_code, m.duration_ms) for m in seen] == [(500, 3)] * 3


async def test_the_rows_of_a_429_then_a_200_carry_their_own_durations(
    database: Database,
) -> None:
    clock = FakeClock()
    fake = FakeProvider(retry=RetryPolicy(attempts=2, base_delay=0.5, jitter=0))
    fake.clock, fake.sleep = clock, clock.sleep
    fake.queue.append(FakeResponse(status_code=429, error="slow down", delay=0.007))
    fake.reply("ok", delay=0.002)
    chat = await create_chat(database.db, create_llm(provider=fake))
    await chat.ask("hi")
    rows = await (await database.store()).list_requests(chat.id)
    messages = await chat.messages()
    assert [(r.statusCode, r.duration) for r in rows] == [(429, 7), (200, 2)]
    raw = json.loads(messages[-1].contentRaw or "{}")
    assert raw["latencyMs"] == 7 + 500 + 2


# -- with_provider siblings share and close with the parent's pool ------------------------------


async def test_with_provider_siblings_share_the_parent_pool_and_close_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-0123456789")
    parent = create_llm("openai")
    sibling = parent.with_provider("anthropic")
    nephew = sibling.with_provider("gemini", model="gemini-2.5-flash")

    pools = {id(llm.provider.http) for llm in (parent, sibling, nephew)}
    assert pools == {id(parent.http)}

    await sibling.aclose()  # a sibling does not close what it shares
    assert not parent.http.is_closed
    await parent.aclose()
    assert sibling.provider.http.is_closed and nephew.provider.http.is_closed


async def test_an_llm_made_from_a_provider_instance_closes_that_providers_pool() -> None:
    provider = OpenAIProvider(api_key="sk-test-0123456789")
    llm = create_llm(provider=provider)
    sibling = llm.with_provider("anthropic", api_key="sk-ant-test-0123456789")
    assert sibling.provider.http is provider.http
    await llm.aclose()
    assert provider.http.is_closed


def test_with_provider_rejects_an_unknown_option() -> None:
    llm = create_llm("openai", api_key="sk-test-0123456789")
    with pytest.raises(TypeError, match="temprature"):
        llm.with_provider("anthropic", temprature=0.2)


# -- API keys never leave the provider -------------------------------------------------------------

KEYS = {
    "openai": "sk-proj-Secr3tKeyThatMustNeverLeak0123",
    "anthropic": "sk-ant-api03-Secr3tKeyThatMustNeverLeak0123",
    "gemini": "AIzaSyD-Secr3tKeyThatMustNeverLeak0123",
}


def echo_401(cls: type[Provider]) -> Reply:
    key = KEYS[cls.name]
    if cls is OpenAIProvider:
        body: Any = {
            "error": {
                "message": f"Incorrect API key provided: {key}. You can find your API key at "
                "your account page.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        return reply(body, 401)
    if cls is AnthropicProvider:
        body = {
            "type": "error",
            "error": {"type": "authentication_error", "message": f"invalid x-api-key {key}"},
        }
        return reply(body, 401)
    body = [
        {
            "error": {
                "code": 400,
                "message": f"API key not valid. Please pass a valid API key. (key={key})",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            }
        }
    ]
    return reply(body, 400)


def echo_in_stream(cls: type[Provider]) -> Reply:
    key = KEYS[cls.name]
    if cls is OpenAIProvider:
        return sse(
            [
                (None, {"id": "c", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
                (None, {"error": {"message": f"key {key} was revoked", "code": 401}}),
            ]
        )
    if cls is AnthropicProvider:
        return sse(
            [
                (
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": f"bad key {key}"},
                    },
                )
            ]
        )
    url = (
        f"https://generativelanguage.googleapis.com/v1beta/models/m:streamGenerateContent?key={key}"
    )
    return sse(
        [
            (
                None,
                {
                    "error": {
                        "code": 401,
                        "message": f"Request to {url} had invalid credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        ]
    )


def assert_no_key(key: str, error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert key not in str(error)
    assert key not in repr(getattr(error, "body", None))
    assert key not in "".join(traceback.format_exception(error))
    assert key not in caplog.text
    assert "***" in str(error)


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider, GeminiProvider])
@pytest.mark.parametrize("where", ["401 body", "stream event"])
async def test_an_echoed_api_key_is_masked_everywhere(
    cls: type[Provider], where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = KEYS[cls.name]
    server = Server([echo_401(cls) if where == "401 body" else echo_in_stream(cls)])
    llm = llm_on(cls, server, api_key=key)
    chat = llm.chat("m", debug=True)

    with pytest.raises(errors.AuthenticationError) as caught:
        async for _ in chat.stream("hi"):
            pass

    assert_no_key(key, caught.value, caplog)
    # The key went where the API wants it, and never into the URL.
    request = server.requests[0]
    assert key not in str(request.url)
    header = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}
    assert key in request.headers[header[cls.name]]


async def test_a_credential_passed_as_a_header_is_masked_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "gw-Secr3tGatewayToken0123456789"
    body = {"error": {"message": f"token {token} is not allowed here", "code": 403}}
    server = Server([reply(body, 403)])
    provider = OllamaProvider(
        http=server.client(), headers={"Authorization": f"Bearer {token}"}, retry=FAST
    )
    with pytest.raises(errors.AuthenticationError) as caught:
        await create_llm(provider=provider).chat("llama3.2").ask("hi")
    assert_no_key(token, caught.value, caplog)


async def test_a_credential_in_a_chats_own_headers_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "tenant-Secr3tToken0123456789"
    body = {"error": {"message": f"tenant token {token} expired", "code": 401}}
    server = Server([reply(body, 401)])
    chat = llm_on(OpenAIProvider, server).chat("gpt-4o-mini", headers={"X-Tenant-Token": token})
    with pytest.raises(errors.AuthenticationError) as caught:
        await chat.ask("hi")
    assert server.requests[0].headers["x-tenant-token"] == token
    assert_no_key(token, caught.value, caplog)


async def test_a_key_in_a_url_of_a_transport_error_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = KEYS["gemini"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}?key={key}", request=request)

    server = Server([refuse])
    with pytest.raises(errors.LLMConnectionError) as caught:
        await llm_on(GeminiProvider, server, api_key="AIza-other-0123456789").chat("m").ask("hi")
    assert_no_key(key, caught.value, caplog)
    assert "key=***" in str(caught.value)


async def test_an_echoed_key_reaches_no_row(tmp_path: Path) -> None:
    key = KEYS["openai"]
    path = tmp_path / "keys.db"
    store = await connect(f"sqlite:///{path}")
    try:
        server = Server([echo_in_stream(OpenAIProvider)])
        chat = await create_chat(store, llm_on(OpenAIProvider, server, api_key=key), model="m")
        with pytest.raises(errors.AuthenticationError):
            async for _ in chat.ask_stream("hi"):
                pass
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        cells = [
            str(cell)
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')
            for cell in row
        ]
    assert any("***" in cell for cell in cells)  # the error was written, masked
    assert not any(key in cell for cell in cells)


async def test_an_echoed_key_reaches_no_record_on_any_backend(database: Database) -> None:
    key = KEYS["anthropic"]
    server = Server([echo_in_stream(AnthropicProvider)])
    llm = llm_on(AnthropicProvider, server, api_key=key)
    chat = await create_chat(database.db, llm, model="claude-sonnet-4-5")
    with pytest.raises(errors.AuthenticationError):
        async for _ in chat.ask_stream("hi"):
            pass
    store = await database.store()
    messages = await store.list_messages(chat.id)
    records: list[Any] = [await store.get_chat(chat.id), *messages]
    records += await store.list_requests(chat.id)
    records += await store.list_tool_calls([m.id for m in messages])
    assert len(records) >= 3  # the chat, the question, the failed request
    assert not any(key in repr(record) for record in records)


# -- error names and the fake provider's registration --------------------------------------------


def test_timeout_and_connection_errors_no_longer_shadow_the_builtins() -> None:
    assert issubclass(errors.LLMTimeoutError, errors.LLMError)
    assert issubclass(errors.LLMTimeoutError, TimeoutError)
    assert issubclass(errors.LLMConnectionError, errors.LLMError)
    assert issubclass(errors.LLMConnectionError, ConnectionError)
    assert "TimeoutError" not in vars(errors) and "ConnectionError" not in vars(errors)
    assert nodellm_orm.LLMTimeoutError is errors.LLMTimeoutError
    assert nodellm_orm.LLMConnectionError is errors.LLMConnectionError
    with pytest.warns(DeprecationWarning, match="LLMTimeoutError"):
        assert errors.TimeoutError is errors.LLMTimeoutError
    with pytest.warns(DeprecationWarning, match="LLMConnectionError"):
        assert errors.ConnectionError is errors.LLMConnectionError


async def test_a_timeout_is_caught_by_the_builtin_name() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    chat = llm_on(OpenAIProvider, Server([hang])).chat("gpt-4o-mini")
    with pytest.raises(TimeoutError) as caught:
        await chat.ask("hi")
    assert isinstance(caught.value, errors.LLMTimeoutError)


def test_the_core_does_not_know_the_fake_provider_until_testing_is_imported() -> None:
    script = (
        "from nodellm_orm import create_llm, ConfigurationError\n"
        "try:\n"
        "    create_llm('fake')\n"
        "except ConfigurationError:\n"
        "    print('unknown')\n"
        "import nodellm_orm.testing\n"
        "print(type(create_llm('fake').provider).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["unknown", "FakeProvider"]
    source = (Path(nodellm_orm.__file__).parent / "core" / "llm.py").read_text()
    assert "testing" not in source and '"fake"' not in source


# -- the joiner, exhaustively: where a stream is cut never changes the text ---------------------


@pytest.mark.parametrize(
    "text",
    [
        HIGH + LOW,  # one astral character
        "a" + HIGH + LOW + "b" + HIGH + LOW,  # two, with text between
        HIGH + HIGH + LOW,  # a lone high half, then a pair
        LOW + "x" + HIGH,  # a lone low half first, a lone high half last
        "é" + HIGH + LOW + HIGH,  # BMP text, a pair, a trailing lone half
    ],
)
async def test_every_way_of_cutting_a_stream_gives_the_same_text(text: str) -> None:
    expected = repair_text(text)
    assert not any("\ud800" <= ch <= "\udfff" for ch in expected)
    for cuts in range(len(text)):
        for points in combinations(range(1, len(text)), cuts):
            bounds = [0, *points, len(text)]
            pieces = [text[a:b] for a, b in pairwise(bounds)]

            async def source(pieces: list[str] = pieces) -> AsyncIterator[StreamDelta]:
                for piece in pieces:
                    yield StreamDelta(content=piece, thinking=piece)

            out = [d async for d in normalized(source(), lambda error: None)]
            assert "".join(d.content for d in out) == expected, pieces
            assert "".join(d.thinking for d in out) == expected, pieces
