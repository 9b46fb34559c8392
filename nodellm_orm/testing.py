"""`FakeProvider`: a scripted, offline provider for tests, demos and benchmarks.

It goes through the same pipeline as a real provider (deltas -> accumulator -> response), so
what works against it works against the real ones.

```python
fake = FakeProvider()
fake.reply("Hello!")
fake.reply_tool_call("get_weather", {"city": "Paris"})
fake.fail(429, "slow down")
llm = create_llm(provider=fake)
```

With nothing queued it answers `"(fake) You said: <last user message>"`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

from .core import errors
from .core.llm import register_provider
from .core.messages import ChatRequest, StreamDelta, ToolCallDelta, Usage
from .core.providers.base import Exchange, Provider, RetryPolicy, WireProtocol
from .core.sse import SSEEvent

__all__ = ["FakeProvider", "FakeResponse"]


class _NoWire(WireProtocol):
    """The fake provider has no wire: it overrides `open` and builds deltas itself."""

    def path(self, request: ChatRequest) -> str:
        return ""

    def render(self, request: ChatRequest) -> dict[str, Any]:
        return {}

    def parse_response(self, body: dict[str, Any]) -> list[StreamDelta]:
        return []

    def parse_event(self, event: SSEEvent, state: dict[str, Any]) -> list[StreamDelta]:
        return []


@dataclass(slots=True)
class FakeResponse:
    """One scripted answer: text, tool calls, thinking, usage, or an HTTP-style error."""

    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    thinking: str | None = None
    thinking_signature: str | None = None
    usage: Usage | None = None
    status_code: int = 200
    error: str | None = None
    # Fail after this many content chunks were streamed (a stream that breaks mid-way).
    fail_after_chunks: int | None = None
    delay: float = 0.0


class FakeProvider(Provider):
    name = "fake"
    protocol = _NoWire()
    default_base_url = "fake://local"
    default_model = "fake-model"

    def __init__(
        self,
        responses: Iterable[str | FakeResponse] = (),
        *,
        chunk_size: int = 8,
        latency: float = 0.0,
        **kwargs: Any,
    ) -> None:
        # Scripted failures fail at once unless a test asks for retries.
        kwargs.setdefault("retry", RetryPolicy(attempts=1))
        super().__init__(**kwargs)
        self.queue: deque[FakeResponse] = deque(
            r if isinstance(r, FakeResponse) else FakeResponse(content=r) for r in responses
        )
        self.chunk_size = max(1, chunk_size)
        self.latency = latency
        self.requests: list[ChatRequest] = []
        self._call_ids = 0

    # ---- scripting -----------------------------------------------------------------------

    def reply(self, content: str, **fields: Any) -> FakeProvider:
        self.queue.append(FakeResponse(content=content, **fields))
        return self

    def reply_tool_call(
        self, name: str, arguments: dict[str, Any] | None = None, *, content: str = ""
    ) -> FakeProvider:
        self.queue.append(FakeResponse(content=content, tool_calls=[(name, arguments or {})]))
        return self

    def reply_tool_calls(self, calls: list[tuple[str, dict[str, Any]]]) -> FakeProvider:
        self.queue.append(FakeResponse(tool_calls=list(calls)))
        return self

    def fail(self, status_code: int, message: str = "fake error") -> FakeProvider:
        self.queue.append(FakeResponse(status_code=status_code, error=message))
        return self

    # ---- the provider interface ----------------------------------------------------------

    async def attempt(self, request: ChatRequest) -> Exchange:
        """One scripted round trip; retries (when configured) come from Provider.open."""
        self.requests.append(request)
        scripted = self.queue.popleft() if self.queue else self._echo(request)
        delay = scripted.delay or self.latency
        if delay:
            # Through the retry loop's seam, so a test's fake clock sees latency and backoff.
            await self.sleep(delay)
        if scripted.error is not None and scripted.fail_after_chunks is None:
            raise errors.error_for_status(scripted.status_code, scripted.error, provider=self.name)
        return Exchange(scripted.status_code, self._scripted_deltas(scripted, request))

    def _echo(self, request: ChatRequest) -> FakeResponse:
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        return FakeResponse(content=f"(fake) You said: {last}")

    def _usage(self, scripted: FakeResponse, request: ChatRequest) -> Usage:
        if scripted.usage is not None:
            return scripted.usage
        # Deterministic, and growing with the history like real input token counts, without
        # re-reading the history (benchmarks use this provider to measure the library).
        last = request.messages[-1].content or "" if request.messages else ""
        prompt = 4 * len(request.messages) + len(last.split())
        return Usage(input_tokens=prompt, output_tokens=len(scripted.content.split()) + 1)

    async def _scripted_deltas(
        self, scripted: FakeResponse, request: ChatRequest
    ) -> AsyncGenerator[StreamDelta, None]:
        if scripted.thinking:
            yield StreamDelta(
                thinking=scripted.thinking, thinking_signature=scripted.thinking_signature
            )
        text = scripted.content
        step = self.chunk_size if request.stream else max(1, len(text))
        for sent, start in enumerate(range(0, len(text), step)):
            if scripted.fail_after_chunks is not None and sent >= scripted.fail_after_chunks:
                raise errors.error_for_status(
                    scripted.status_code if scripted.status_code >= 400 else 500,
                    scripted.error or "stream broke",
                    provider=self.name,
                )
            if request.stream:
                await asyncio.sleep(0)
            yield StreamDelta(content=text[start : start + step])
        if scripted.fail_after_chunks is not None:
            raise errors.error_for_status(
                scripted.status_code if scripted.status_code >= 400 else 500,
                scripted.error or "stream broke",
                provider=self.name,
            )
        calls = []
        for index, (name, arguments) in enumerate(scripted.tool_calls):
            self._call_ids += 1
            calls.append(
                ToolCallDelta(
                    index=index,
                    id=f"call_fake_{self._call_ids}",
                    name=name,
                    arguments_object=dict(arguments),
                )
            )
        yield StreamDelta(
            tool_calls=calls,
            usage=self._usage(scripted, request),
            finish_reason="tool_calls" if calls else "stop",
            model=request.model,
        )


# Importing this module is what makes `create_llm("fake")` work: the core knows no test double.
register_provider(FakeProvider.name, FakeProvider)
