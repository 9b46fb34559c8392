"""The core chat: history, configuration, the tool loop and hooks.

One pipeline serves `ask` and `stream`: provider deltas -> `Accumulator` -> `Response`, with
`ChatChunk`s yielded on the way. `ask` simply drains the same generator with a non-streaming
request, so both paths record, hook and fail identically.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import errors
from .deltas import repair_value
from .messages import (
    ChatChunk,
    ChatRequest,
    Message,
    Response,
    StreamDelta,
    Thinking,
    ToolCall,
    Usage,
)
from .pricing import apply_cost
from .tools import Tool, as_tool

if TYPE_CHECKING:
    from .llm import LLM
    from .providers.base import Exchange, Provider, RetryHook

Hook = Callable[..., Any]
log = logging.getLogger("nodellm_orm")


class ToolErrorDirective(StrEnum):
    """What an `on_tool_call_error` hook tells the loop to do with a failed tool call."""

    STOP = "STOP"
    CONTINUE = "CONTINUE"
    RETRY = "RETRY"


TOOL_EXECUTION_MODES = ("auto", "confirm", "dry-run")


@dataclass(slots=True)
class RequestMetrics:
    """One provider round trip, successful or not: what the ORM writes as an LlmRequest row."""

    provider: str
    model: str
    status_code: int
    duration_ms: int
    usage: Usage
    error: errors.LLMError | None = None
    correction_rounds: int | None = None


@dataclass(slots=True)
class _RoundTrip:
    """One provider round trip in flight: what was asked, and what has come back."""

    provider: Provider
    request: ChatRequest
    correction_rounds: int | None
    accumulator: Accumulator = field(default_factory=lambda: Accumulator())
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    exchange: Exchange | None = None


@dataclass(slots=True)
class ToolOutcome:
    call: ToolCall
    result: str
    is_error: bool = False


async def call_hook(hook: Hook, *args: Any) -> Any:
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class Accumulator:
    """Folds `StreamDelta`s into one `Response`; both `ask` and `stream` go through it."""

    __slots__ = (
        "_args",
        "_content",
        "_signature",
        "_thinking",
        "_tools",
        "finish_reason",
        "id",
        "model",
        "raw",
        "usage",
    )

    def __init__(self) -> None:
        self._content: list[str] = []
        self._thinking: list[str] = []
        self._signature: str | None = None
        self._tools: dict[int, dict[str, Any]] = {}
        self._args: dict[int, list[str]] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.raw: dict[str, Any] = {}

    def add(self, delta: StreamDelta) -> None:
        if delta.content:
            self._content.append(delta.content)
        if delta.thinking:
            self._thinking.append(delta.thinking)
        if delta.thinking_signature:
            self._signature = delta.thinking_signature
        for part in delta.tool_calls:
            call = self._tools.setdefault(part.index, {})
            if part.id:
                call["id"] = part.id
            if part.name:
                call["name"] = part.name
            if part.arguments_object is not None:
                call["arguments"] = part.arguments_object
            if part.thought_signature:
                call["thought_signature"] = part.thought_signature
            if part.arguments:
                self._args.setdefault(part.index, []).append(part.arguments)
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.model:
            self.model = delta.model
        if delta.id:
            self.id = delta.id
        if delta.raw:
            self.raw.update(delta.raw)

    @property
    def content(self) -> str:
        return "".join(self._content)

    def tool_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._tools):
            call = self._tools[index]
            arguments = call.get("arguments")
            if arguments is None:
                text = "".join(self._args.get(index, ()))
                arguments = _decode_arguments(text)
            calls.append(
                ToolCall(
                    id=call.get("id") or f"call_{index}",
                    name=call.get("name", ""),
                    arguments=arguments,
                    thought_signature=call.get("thought_signature"),
                )
            )
        return calls

    def response(self, *, provider: str, model: str, status_code: int, latency_ms: int) -> Response:
        thinking = None
        if self._thinking or self._signature:
            thinking = Thinking(
                text="".join(self._thinking) or None,
                signature=self._signature,
                tokens=self.usage.reasoning_tokens if self.usage else None,
            )
        return Response(
            content=self.content,
            usage=self.usage or Usage(),
            model=self.model or model,
            provider=provider,
            tool_calls=self.tool_calls(),
            thinking=thinking,
            finish_reason=self.finish_reason,
            latency_ms=latency_ms,
            status_code=status_code,
            id=self.id,
            raw=self.raw,
        )


def _decode_arguments(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        # Keep what the model sent so the tool error (and the stored row) shows it.
        return {"_raw": text}
    # An escaped lone surrogate ("\ud83d") decodes to text UTF-8 cannot encode.
    value = repair_value(value)
    return value if isinstance(value, dict) else {"value": value}


def _schema_spec(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return {"name": schema.__name__, "schema": schema.model_json_schema()}
    if isinstance(schema, dict):
        if "schema" in schema and "name" in schema:
            return dict(schema)
        return {"name": str(schema.get("title", "response")), "schema": schema}
    raise TypeError("with_schema expects a pydantic model class or a JSON schema dict")


class Chat:
    """A conversation with one model: holds the history and runs turns.

    Configuration is fluent (`chat.with_temperature(0).with_tool(Weather)`); hooks are lists
    that run in registration order, sync or async.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        model: str,
        provider: Provider | None = None,
        instructions: str | None = None,
        messages: Iterable[Message] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        thinking: dict[str, Any] | bool | None = None,
        tools: Sequence[Tool | type[Tool]] = (),
        tool_choice: str | None = None,
        tool_calls: bool | None = None,
        schema: type[BaseModel] | dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        max_tool_calls: int | None = None,
        max_corrections: int = 2,
        tool_concurrency: int | None = None,
        tool_execution: str | None = None,
        request_timeout: float | None = None,
        # Log each round trip (logger "nodellm_orm", level INFO).
        debug: bool = False,
        middlewares: Sequence[Any] = (),
    ) -> None:
        self.llm = llm
        self._provider = provider
        self.model = model
        self.messages: list[Message] = list(messages)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.thinking: dict[str, Any] | None = (
            {"effort": "medium"} if thinking is True else (thinking or None)
        )
        self.tools: dict[str, Tool] = {}
        self.tool_choice = tool_choice
        self.parallel_tool_calls = tool_calls
        self.schema: type[BaseModel] | dict[str, Any] | None = None
        self.params: dict[str, Any] = dict(params or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.max_tool_calls = 10 if max_tool_calls is None else max_tool_calls
        # How often an answer that misses the schema is sent back for correction.
        self.max_corrections = max_corrections
        self.tool_concurrency = max(1, tool_concurrency or 1)
        self.tool_execution = "auto"
        self.request_timeout = request_timeout
        self.debug = debug
        self.middlewares = list(middlewares)
        self.total_usage = Usage()
        self.last_response: Response | None = None
        # Hooks: every list runs in order; see the methods that register them.
        self.before_request_hooks: list[Hook] = []
        self.after_response_hooks: list[Hook] = []
        self.new_message_hooks: list[Hook] = []
        self.end_message_hooks: list[Hook] = []
        self.tool_call_start_hooks: list[Hook] = []
        self.tool_call_end_hooks: list[Hook] = []
        self.tool_result_hooks: list[Hook] = []
        self.tool_call_error_hooks: list[Hook] = []
        self.confirm_tool_call_hooks: list[Hook] = []
        # Round-level hooks the ORM uses to write a round's tool calls in one statement.
        self.tool_round_start_hooks: list[Hook] = []
        self.tool_round_end_hooks: list[Hook] = []
        self.request_hooks: list[Hook] = []
        if instructions:
            self.with_instructions(instructions)
        if tools:
            self.with_tools(*tools)
        if schema is not None:
            self.with_schema(schema)
        if tool_execution is not None:
            self.with_tool_execution(tool_execution)

    # ---- configuration -------------------------------------------------------------------

    @property
    def provider(self) -> Provider:
        return self._provider or self.llm.provider

    @property
    def instructions(self) -> str | None:
        texts = [m.content or "" for m in self.messages if m.role == "system"]
        return "\n\n".join(texts) if texts else None

    def with_instructions(self, text: str, *, replace: bool = False) -> Chat:
        if not isinstance(text, str):
            raise TypeError(f"instructions must be a string, not {type(text).__name__}")
        if replace:
            self.messages = [m for m in self.messages if m.role != "system"]
        system = [m for m in self.messages if m.role == "system"]
        rest = [m for m in self.messages if m.role != "system"]
        self.messages = [*system, Message(role="system", content=text), *rest]
        return self

    system = with_instructions

    def with_temperature(self, temperature: float | None) -> Chat:
        self.temperature = temperature
        return self

    def with_model(self, model: str) -> Chat:
        self.model = model
        return self

    def with_provider(self, name: str, model: str | None = None) -> Chat:
        self.llm = self.llm.with_provider(name)
        self._provider = None
        self.model = self.llm.resolve_model(model)
        return self

    def with_tool(self, tool: Tool | type[Tool]) -> Chat:
        instance = as_tool(tool)
        self.tools[instance.tool_name()] = instance
        return self

    def with_tools(self, *tools: Tool | type[Tool], replace: bool = False) -> Chat:
        if replace:
            self.tools = {}
        for tool in tools:
            self.with_tool(tool)
        return self

    use = with_tool

    def with_schema(self, schema: type[BaseModel] | dict[str, Any] | None) -> Chat:
        if schema is not None:
            _schema_spec(schema)  # validate now, not at request time
        self.schema = schema
        return self

    def with_params(self, **params: Any) -> Chat:
        self.params.update(params)
        return self

    def with_thinking(self, budget_tokens: int | None = None, **options: Any) -> Chat:
        config: dict[str, Any] = dict(options)
        if budget_tokens is not None:
            config["budget_tokens"] = budget_tokens
        self.thinking = config or {"effort": "medium"}
        return self

    def with_effort(self, effort: str) -> Chat:
        self.thinking = {**(self.thinking or {}), "effort": effort}
        return self

    def with_tool_concurrency(self, concurrency: int) -> Chat:
        if concurrency < 1:
            raise ValueError("tool concurrency must be at least 1")
        self.tool_concurrency = concurrency
        return self

    def with_tool_execution(self, mode: str) -> Chat:
        if mode not in TOOL_EXECUTION_MODES:
            raise ValueError(
                f"unknown tool execution mode {mode!r}; use one of {TOOL_EXECUTION_MODES}"
            )
        self.tool_execution = mode
        return self

    def with_tool_choice(self, choice: str | None) -> Chat:
        self.tool_choice = choice
        return self

    def with_tool_calls(self, parallel: bool | None) -> Chat:
        self.parallel_tool_calls = parallel
        return self

    def with_max_tool_calls(self, limit: int) -> Chat:
        self.max_tool_calls = limit
        return self

    # ---- hooks ---------------------------------------------------------------------------

    def on_before_request(self, hook: Hook) -> Chat:
        """`hook(messages)`; may return a replacement list of messages."""
        self.before_request_hooks.append(hook)
        return self

    def after_response(self, hook: Hook) -> Chat:
        """`hook(response)`; may return a replacement Response."""
        self.after_response_hooks.append(hook)
        return self

    def on_new_message(self, hook: Hook) -> Chat:
        """`hook()` before each provider round trip starts producing an assistant message."""
        self.new_message_hooks.append(hook)
        return self

    def on_end_message(self, hook: Hook) -> Chat:
        """`hook(response)` after each assistant message is complete."""
        self.end_message_hooks.append(hook)
        return self

    def on_tool_call_start(self, hook: Hook) -> Chat:
        """`hook(tool_call)` before a tool runs."""
        self.tool_call_start_hooks.append(hook)
        return self

    on_tool_call = on_tool_call_start

    def on_tool_call_end(self, hook: Hook) -> Chat:
        """`hook(tool_call, result)` after a tool ran (or failed, or was skipped)."""
        self.tool_call_end_hooks.append(hook)
        return self

    def on_tool_result(self, hook: Hook) -> Chat:
        """`hook(result)` with the text sent back to the model."""
        self.tool_result_hooks.append(hook)
        return self

    def on_tool_call_error(self, hook: Hook) -> Chat:
        """`hook(tool_call, error)`; may return STOP, CONTINUE or RETRY (first one wins)."""
        self.tool_call_error_hooks.append(hook)
        return self

    def on_confirm_tool_call(self, hook: Hook) -> Chat:
        """`hook(tool_call) -> bool` in "confirm" mode; every hook must approve."""
        self.confirm_tool_call_hooks.append(hook)
        return self

    def on_request(self, hook: Hook) -> Chat:
        """`hook(RequestMetrics)` after every provider round trip, failed ones included."""
        self.request_hooks.append(hook)
        return self

    # ---- turns ---------------------------------------------------------------------------

    async def ask(self, content: str | None, **options: Any) -> Response:
        """Send `content` (None: continue from the current history) and return the answer."""
        async with aclosing(self._turn(content, stream=False, options=options)) as chunks:
            async for _ in chunks:
                pass
        assert self.last_response is not None
        return self.last_response

    def stream(self, content: str | None, **options: Any) -> AsyncGenerator[ChatChunk, None]:
        """Yield chunks as they arrive; the last has `done=True` and the turn's usage."""
        return self._turn(content, stream=True, options=options)

    ask_stream = stream

    def _request(
        self, messages: list[Message], stream: bool, options: dict[str, Any]
    ) -> ChatRequest:
        schema = options.get("schema", self.schema)
        params = {**self.params, **options.get("params", {})}
        return ChatRequest(
            model=options.get("model") or self.model,
            messages=messages,
            tools=[tool.spec() for tool in self.tools.values()],
            temperature=options.get("temperature", self.temperature),
            max_tokens=options.get("max_tokens", self.max_tokens),
            thinking=self.thinking,
            tool_choice=self.tool_choice if self.tools else None,
            parallel_tool_calls=self.parallel_tool_calls if self.tools else None,
            schema=_schema_spec(schema) if schema is not None else None,
            params=params,
            headers={**self.headers, **options.get("headers", {})},
            stream=stream,
            timeout=options.get("request_timeout", self.request_timeout),
        )

    async def _turn(
        self, content: str | None, *, stream: bool, options: dict[str, Any]
    ) -> AsyncGenerator[ChatChunk, None]:
        if content is not None:
            if not isinstance(content, str):
                raise TypeError(f"message must be a string, not {type(content).__name__}")
            self.messages.append(Message(role="user", content=content))
        provider = self.provider
        turn_usage = Usage()
        calls_made = 0
        corrections = 0
        # Invalid structured answers and the correction prompts sent after them: the model
        # needs them within the turn, the history does not keep them.
        scratch: list[Message] = []
        while True:
            trip = _RoundTrip(
                provider=provider,
                request=await self._next_request(stream, options),
                correction_rounds=corrections if self._wants_schema(options) else None,
            )
            try:
                async for chunk in self._send(trip):
                    yield chunk
            except errors.LLMError:
                self._drop(scratch)
                raise
            response = await self._received(trip)
            invalid = self._schema_error(response, trip.request, options)
            turn_usage = turn_usage + response.usage
            self.total_usage = self.total_usage + response.usage
            self.messages.append(response.to_message())
            self.last_response = response
            for hook in self.end_message_hooks:
                await call_hook(hook, response)
            if invalid is not None:
                scratch.append(self.messages[-1])
                if corrections >= self.max_corrections:
                    self._drop(scratch)
                    raise errors.StructuredOutputError(
                        f"the answer does not match the schema after {corrections} "
                        f"correction round(s): {invalid}",
                        provider=provider.name,
                    ) from invalid
                corrections += 1
                prompt = Message(
                    role="user",
                    content=f"Your answer does not match the requested schema: {invalid}. "
                    "Reply again with only the corrected JSON.",
                )
                scratch.append(prompt)
                self.messages.append(prompt)
                continue
            self._drop(scratch)
            if not response.tool_calls:
                yield ChatChunk(usage=turn_usage, finish_reason=response.finish_reason, done=True)
                return
            calls_made += len(response.tool_calls)
            if calls_made > self.max_tool_calls:
                raise errors.ToolCallLimitError(
                    f"the model asked for {calls_made} tool calls in one turn; "
                    f"max_tool_calls is {self.max_tool_calls}",
                    provider=provider.name,
                )
            if stream:
                yield ChatChunk(tool_calls=list(response.tool_calls))
            outcomes = await self._run_tools(response.tool_calls)
            self.messages.extend(
                Message(
                    role="tool",
                    content=o.result,
                    tool_call_id=o.call.id,
                    name=o.call.name,
                    is_error=o.is_error,
                )
                for o in outcomes
            )

    def _wants_schema(self, options: dict[str, Any]) -> bool:
        return options.get("schema", self.schema) is not None

    async def _next_request(self, stream: bool, options: dict[str, Any]) -> ChatRequest:
        """The request for the next round trip, after the hooks that may rewrite it."""
        messages = list(self.messages)
        for hook in self.before_request_hooks:
            replaced = await call_hook(hook, messages)
            if replaced is not None:
                messages = list(replaced)
        request = self._request(messages, stream, options)
        for hook in self.new_message_hooks:
            await call_hook(hook)
        return request

    async def _send(self, trip: _RoundTrip) -> AsyncGenerator[ChatChunk, None]:
        """One provider round trip: yields text as it arrives; a failure is reported, raised."""
        provider, request = trip.provider, trip.request
        if self.debug:
            log.info(
                "-> %s %s: %d messages, %d tools, stream=%s",
                provider.name,
                request.model,
                len(request.messages),
                len(request.tools),
                request.stream,
            )
        retried = self._retry_reporter(provider.name, request.model, trip.correction_rounds)
        try:
            exchange = await provider.open(request, on_retry=retried)
            trip.status, trip.exchange = exchange.status_code, exchange
            async with aclosing(exchange.deltas) as deltas:
                async for delta in deltas:
                    trip.accumulator.add(delta)
                    if delta.content or delta.thinking:
                        yield ChatChunk(content=delta.content, thinking=delta.thinking)
        except errors.LLMError as exc:
            await self._report(
                RequestMetrics(
                    provider=provider.name,
                    model=request.model,
                    status_code=exc.status_code or trip.status,
                    duration_ms=_elapsed_ms(trip.started)
                    if exc.duration_ms is None
                    else exc.duration_ms,
                    usage=trip.accumulator.usage or Usage(),
                    error=exc,
                    correction_rounds=trip.correction_rounds,
                )
            )
            raise

    async def _received(self, trip: _RoundTrip) -> Response:
        """The response of a finished round trip: priced, reported, through after_response."""
        provider, exchange = trip.provider, trip.exchange
        assert exchange is not None
        # latency: the whole call, retries included; duration: the attempt that answered.
        response = trip.accumulator.response(
            provider=provider.name,
            model=trip.request.model,
            status_code=trip.status,
            latency_ms=exchange.latency_ms(),
        )
        duration_ms = exchange.duration_ms()
        response.usage = apply_cost(response.usage, provider.name, response.model)
        if self.debug:
            log.info(
                "<- %s %s: HTTP %d in %d ms, %d+%d tokens, %d tool calls",
                provider.name,
                response.model,
                trip.status,
                response.latency_ms,
                response.usage.input_tokens,
                response.usage.output_tokens,
                len(response.tool_calls),
            )
        await self._report(
            RequestMetrics(
                provider=provider.name,
                model=response.model,
                status_code=trip.status,
                duration_ms=duration_ms,
                usage=response.usage,
                correction_rounds=trip.correction_rounds,
            )
        )
        for hook in self.after_response_hooks:
            replaced = await call_hook(hook, response)
            if isinstance(replaced, Response):
                response = replaced
        return response

    def _schema_error(
        self, response: Response, request: ChatRequest, options: dict[str, Any]
    ) -> ValueError | None:
        """Parse a structured answer into `response.parsed`; the error if it does not fit."""
        if request.schema is None or response.tool_calls:
            return None
        try:
            response.parsed = self._parse_structured(response, options)
        except ValueError as exc:  # bad JSON, or JSON the schema rejects
            return exc
        return None

    def _drop(self, scratch: list[Message]) -> None:
        if scratch:
            self.messages = [m for m in self.messages if not any(m is x for x in scratch)]
            scratch.clear()

    def _parse_structured(self, response: Response, options: dict[str, Any]) -> Any:
        schema = options.get("schema", self.schema)
        text = response.content.strip()
        if text.startswith("```"):
            # Some models fence JSON even when asked for a schema.
            text = text.strip("`").removeprefix("json").strip()
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate_json(text)
        return json.loads(text)

    def _retry_reporter(
        self, provider: str, model: str, correction_rounds: int | None
    ) -> RetryHook:
        """Reports a failed attempt that will be retried: a round trip of its own."""

        async def report(error: errors.LLMError, duration_ms: int) -> None:
            await self._report(
                RequestMetrics(
                    provider=provider,
                    model=model,
                    status_code=error.status_code or 0,
                    duration_ms=duration_ms,
                    usage=Usage(),
                    error=error,
                    correction_rounds=correction_rounds,
                )
            )

        return report

    async def _report(self, metrics: RequestMetrics) -> None:
        for hook in self.request_hooks:
            await call_hook(hook, metrics)

    async def _run_tools(self, calls: list[ToolCall]) -> list[ToolOutcome]:
        # Start hooks run in call order before any tool executes, end hooks in call order
        # after all finished, so whatever they write is ordered even with concurrency.
        for hook in self.tool_round_start_hooks:
            await call_hook(hook, calls)
        for call in calls:
            for hook in self.tool_call_start_hooks:
                await call_hook(hook, call)
        if self.tool_concurrency > 1 and len(calls) > 1:
            limit = asyncio.Semaphore(self.tool_concurrency)

            async def bounded(call: ToolCall) -> ToolOutcome:
                async with limit:
                    return await self._run_tool(call)

            outcomes = list(await asyncio.gather(*(bounded(c) for c in calls)))
        else:
            outcomes = [await self._run_tool(call) for call in calls]
        for outcome in outcomes:
            for hook in self.tool_result_hooks:
                await call_hook(hook, outcome.result)
            for hook in self.tool_call_end_hooks:
                await call_hook(hook, outcome.call, outcome.result)
        for hook in self.tool_round_end_hooks:
            await call_hook(hook, outcomes)
        return outcomes

    async def _run_tool(self, call: ToolCall) -> ToolOutcome:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return ToolOutcome(
                call, f"Error: unknown tool {call.name!r} (available: {known})", True
            )
        if self.tool_execution == "dry-run":
            return ToolOutcome(call, f"[dry-run] {call.name} was not executed")
        if self.tool_execution == "confirm":
            for hook in self.confirm_tool_call_hooks:
                if not await call_hook(hook, call):
                    return ToolOutcome(
                        call, f"Tool call {call.name} was declined by the user", True
                    )
        retried = False
        while True:
            try:
                return ToolOutcome(call, await tool.call(call.arguments))
            except Exception as exc:
                directive = await self._tool_error_directive(call, exc)
                if directive is ToolErrorDirective.STOP:
                    raise errors.ToolError(
                        f"tool {call.name!r} failed: {exc}", provider=self.provider.name
                    ) from exc
                if directive is ToolErrorDirective.RETRY and not retried:
                    retried = True
                    continue
                return ToolOutcome(call, f"Error: {exc}", True)

    async def _tool_error_directive(
        self, call: ToolCall, exc: Exception
    ) -> ToolErrorDirective | None:
        for hook in self.tool_call_error_hooks:
            answer = await call_hook(hook, call, exc)
            if answer is not None:
                return ToolErrorDirective(str(getattr(answer, "value", answer)).upper())
        return None


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
