"""Server-sent events, parsed incrementally from an async stream of text.

Only what LLM APIs use: `event:` and `data:` fields, multi-line data, comments, and events
separated by a blank line with LF or CRLF line endings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str = "message"


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Turn lines (as `httpx.Response.aiter_lines` gives them) into events."""
    event = ""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent(data="\n".join(data), event=event or "message")
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield SSEEvent(data="\n".join(data), event=event or "message")
