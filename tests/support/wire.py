"""Helpers for provider tests: canned HTTP replies over httpx.MockTransport, and a fold of
stream deltas that is independent of the core accumulator (so a protocol is tested alone)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel

from nodellm_orm.core.messages import ChatRequest, StreamDelta, ToolSpec
from nodellm_orm.core.providers.base import Provider
from nodellm_orm.core.tools import Tool

Handler = Callable[[httpx.Request], httpx.Response]


def json_reply(body: Any, status: int = 200, seen: list[httpx.Request] | None = None) -> Handler:
    """A handler answering `body` as JSON, recording each request in `seen`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return handler


def sse_reply(data: bytes | str, seen: list[httpx.Request] | None = None) -> Handler:
    """A handler answering a server-sent-event stream, byte for byte as given."""
    content = data.encode() if isinstance(data, str) else data

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})

    return handler


async def collect(provider: Provider, request: ChatRequest) -> list[StreamDelta]:
    exchange = await provider.open(request)
    return [delta async for delta in exchange.deltas]


def fold(deltas: list[StreamDelta]) -> dict[str, Any]:
    """Concatenate text, assemble tool calls by index, last usage wins."""
    out: dict[str, Any] = {
        "content": "",
        "thinking": "",
        "signature": None,
        "calls": {},
        "usage": None,
        "finish_reason": None,
        "id": None,
        "model": None,
        "raw": {},
    }
    for d in deltas:
        out["content"] += d.content
        out["thinking"] += d.thinking
        out["signature"] = d.thinking_signature or out["signature"]
        for part in d.tool_calls:
            call = out["calls"].setdefault(part.index, {"args": "", "object": None})
            for key, value in (
                ("id", part.id),
                ("name", part.name),
                ("thought_signature", part.thought_signature),
            ):
                if value:
                    call[key] = value
            call["args"] += part.arguments
            if part.arguments_object is not None:
                call["object"] = part.arguments_object
        out["usage"] = d.usage or out["usage"]
        out["finish_reason"] = d.finish_reason or out["finish_reason"]
        out["id"] = d.id or out["id"]
        out["model"] = d.model or out["model"]
        out["raw"].update(d.raw or {})
    for call in out["calls"].values():
        call["arguments"] = (
            call["object"] if call["object"] is not None else json.loads(call["args"])
        )
    return out


def sent_body(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


# A plain tool declaration, as the OpenAI and Anthropic request tests send it.
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
)


class Weather(Tool):
    """The tool the end-to-end round trips call."""

    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"18C and sunny in {params.city}"
