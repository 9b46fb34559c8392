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
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from enum import StrEnum
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Self, Unpack

from pydantic import BaseModel

from . import errors
from .deltas import repair_value
from .jsoncodec import decode_arguments
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
from .middleware import (
    MiddlewareContext,
    MiddlewareStopError,
    Replace,
    Retry,
    check_middlewares,
    request_directive,
    run_middlewares,
)
from .options import (
    ASK_OPTIONS,
    DEFAULT_MAX_TOOL_CALLS,
    AskOptions,
    ChatOptions,
    Schema,
    ThinkingConfig,
    ToolCalls,
    ToolChoice,
    normalize,
    parallel_tool_calls,
)
from .pricing import apply_cost
from .tools import Tool, as_tool

if TYPE_CHECKING:
    from .llm import LLM
    from .providers.base import Exchange, Provider, RetryHook

log = logging.getLogger("nodellm_orm")
_P = ParamSpec("_P")


class ToolErrorDirective(StrEnum):
    """What an `on_tool_call_error` hook tells the loop to do with a failed tool call."""

    STOP = "STOP"
    CONTINUE = "CONTINUE"
    RETRY = "RETRY"


DirectiveValue = ToolErrorDirective | Literal["STOP", "CONTINUE", "RETRY"] | None

# The shapes of the hooks (sync or async), so a type checker catches a hook of the wrong
# arity or result. Observers may return anything; what they return is ignored.
NewMessageHook = Callable[[], object]
EndMessageHook = Callable[[Response], object]
ToolCallHook = Callable[[ToolCall], object]
ToolEndHook = Callable[[ToolCall, str], object]
ToolResultHook = Callable[[str], object]
ToolErrorHook = Callable[[ToolCall, Exception], DirectiveValue | Awaitable[DirectiveValue]]
ConfirmHook = Callable[[ToolCall], bool | Awaitable[bool | None] | None]
BeforeRequestHook = Callable[
    [list[Message]], list[Message] | Awaitable[list[Message] | None] | None
]
AfterResponseHook = Callable[[Response], Response | Awaitable[Response | None] | None]
RequestHook = Callable[["RequestMetrics"], object]
# Internal hooks: once per turn with its messages (the agent's on_start); for the ORM's
# recorder, every response (tool rounds included) and a round's calls when they start and end.
TurnStartHook = Callable[[list[Message]], object]
ResponseHook = Callable[[Response], object]
ToolRoundStartHook = Callable[[list[ToolCall]], object]
ToolRoundEndHook = Callable[[list["ToolOutcome"]], object]


# The status of a round trip given up before its response was complete (cancelled, the consumer
# stopped reading, an error that is not the provider's): nginx's "client closed request".
ABANDONED = 499
# What the history says for a tool call that never got its result (the turn failed first).
NO_RESULT = "(no result: the turn was interrupted before this tool finished)"


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


async def call_hook(hook: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> Any:
    """Run a sync or async hook; its (awaited) result, which each caller interprets."""
    result: Any = hook(*args, **kwargs)
    # An async def hook's coroutine by exact type first: isawaitable is an ABC check.
    if type(result) is CoroutineType or inspect.isawaitable(result):
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
    # An escaped lone surrogate ("\ud83d") decodes to text UTF-8 cannot encode.
    value: dict[str, Any] = repair_value(decode_arguments(text))
    return value


def _schema_spec(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return {"name": schema.__name__, "schema": schema.model_json_schema()}
    if isinstance(schema, dict):
        if "schema" in schema and "name" in schema:
            return dict(schema)
        return {"name": str(schema.get("title", "response")), "schema": schema}
    raise TypeError("with_schema expects a pydantic model class or a JSON schema dict")


@dataclass(slots=True)
class TurnStart:
    """A turn whose `on_request` middlewares ran: the user message to record and send."""

    context: MiddlewareContext
    options: dict[str, Any]
    user: Message | None


class ChatConfig:
    """The fluent configuration and hook registration of a chat, defined once.

    The core chat configures itself; every wrapper (the ORM's Chat) inherits the same methods
    and configures the core chat it holds, so both expose the same fluent API and each method
    returns the object it was called on.
    """

    def _core(self) -> Chat:
        raise NotImplementedError

    # ---- configuration -------------------------------------------------------------------

    def with_instructions(self, text: str, replace: bool = False) -> Self:
        """Add to the instructions, sent first in every request; `replace=True` drops the
        earlier ones first (as in JS)."""
        if not isinstance(text, str):
            raise TypeError(f"instructions must be a string, not {type(text).__name__}")
        chat = self._core()
        if replace:
            chat.system_messages = []
        chat.system_messages.append(Message(role="system", content=text))
        return self

    def system(self, text: str, replace: bool = False) -> Self:
        return self.with_instructions(text, replace)

    def with_system_prompt(self, text: str, replace: bool = False) -> Self:
        return self.with_instructions(text, replace)

    def with_temperature(self, temperature: float | None) -> Self:
        self._core()._configure({"temperature": temperature})
        return self

    def with_model(self, model: str) -> Self:
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, not {model!r}")
        self._core().model = model
        return self

    def with_provider(self, name: str, model: str | None = None) -> Self:
        chat = self._core()
        chat.llm = chat.llm.with_provider(name)
        chat._provider = None
        chat.model = chat.llm.resolve_model(model)
        return self

    def with_tool(self, tool: Tool | type[Tool]) -> Self:
        chat = self._core()
        instance = as_tool(tool)
        chat.tools[instance.tool_name()] = instance
        return self

    def use(self, tool: Tool | type[Tool]) -> Self:
        return self.with_tool(tool)

    def with_tools(
        self,
        *tools: Tool | type[Tool] | Sequence[Tool | type[Tool]],
        replace: bool = False,
        choice: ToolChoice | None = None,
        calls: ToolCalls | None = None,
    ) -> Self:
        """`with_tools(A, B)` or, as in JS, `with_tools([A, B], replace=..., choice=...)`."""
        flat: list[Tool | type[Tool]] = []
        for tool in tools:
            if isinstance(tool, list | tuple):
                flat.extend(tool)
            else:
                flat.append(tool)  # type: ignore[arg-type]
        chat = self._core()
        instances = [as_tool(t) for t in flat]  # all checked before anything changes
        options: dict[str, Any] = {}
        if choice is not None:
            options["tool_choice"] = choice
        if calls is not None:
            options["tool_calls"] = calls
        chat._configure(options)
        if replace:
            chat.tools = {}
        for instance in instances:
            chat.tools[instance.tool_name()] = instance
        return self

    def with_schema(self, schema: Schema | None) -> Self:
        if schema is not None:
            _schema_spec(schema)  # validate now, not at request time
        self._core().schema = schema
        return self

    def with_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> Self:
        """Merge provider-specific body keys: `with_params({"seed": 1})` or `(seed=1)`."""
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict, not {type(params).__name__}")
        chat = self._core()
        chat.params = {**chat.params, **(params or {}), **more}
        return self

    def with_headers(self, headers: Mapping[str, str]) -> Self:
        chat = self._core()
        checked = normalize({"headers": headers})["headers"]
        chat.headers = {**chat.headers, **checked}
        return self

    def with_request_options(self, options: Mapping[str, Any]) -> Self:
        """JS `withRequestOptions({headers})`: merges headers."""
        unknown = sorted(set(options) - {"headers"})
        if unknown:
            raise TypeError(f"unknown request option(s) {unknown}; only 'headers' is supported")
        return self.with_headers(options.get("headers") or {})

    def with_thinking(
        self, config: ThinkingConfig | bool | None = None, **more: Unpack[ThinkingConfig]
    ) -> Self:
        """`with_thinking({"effort": "high", "budget": 4096})`; merges with what is set."""
        chat = self._core()
        if config is None and not more:
            config = True
        if config is False or (config is None and not more):
            chat.thinking = None
            return self
        update = normalize({"thinking": True if config is None else config})["thinking"] or {}
        if more:
            update = {**update, **(normalize({"thinking": dict(more)})["thinking"] or {})}
        base = {} if config is True and not more else dict(chat.thinking or {})
        chat.thinking = {**base, **update}
        return self

    def with_effort(self, effort: str) -> Self:
        chat = self._core()
        update = normalize({"thinking": {"effort": effort}})["thinking"] or {}
        chat.thinking = {**(chat.thinking or {}), **update}
        return self

    def with_tool_concurrency(self, enabled: bool | int) -> Self:
        """True: a round's tool calls run at once; False: one at a time; n: at most n."""
        self._core()._configure({"tool_concurrency": enabled})
        return self

    def with_tool_execution(self, mode: str) -> Self:
        self._core()._configure({"tool_execution": mode})
        return self

    def with_tool_choice(self, choice: ToolChoice | None) -> Self:
        self._core()._configure({"tool_choice": choice})
        return self

    def with_tool_calls(self, calls: ToolCalls | None) -> Self:
        """ "one" (or 1): at most one tool call per response; "many" (or n): the default."""
        self._core()._configure({"tool_calls": calls})
        return self

    def with_max_tool_calls(self, limit: int) -> Self:
        """Tool rounds allowed per turn (default 5, as in JS)."""
        self._core()._configure({"max_tool_calls": limit})
        return self

    def with_max_tokens(self, limit: int | None) -> Self:
        self._core()._configure({"max_tokens": limit})
        return self

    def with_request_timeout(self, seconds: float | None) -> Self:
        self._core()._configure({"request_timeout": seconds})
        return self

    def with_middleware(self, middleware: Any) -> Self:
        chat = self._core()
        chat.middlewares = [*chat.middlewares, *check_middlewares([middleware])]
        return self

    # ---- hooks ---------------------------------------------------------------------------

    def on_before_request(self, hook: BeforeRequestHook) -> Self:
        """`hook(messages)` before each request; may return a replacement list (chained)."""
        self._core().before_request_hooks.append(hook)
        return self

    def before_request(self, hook: BeforeRequestHook) -> Self:
        return self.on_before_request(hook)

    def after_response(self, hook: AfterResponseHook) -> Self:
        """`hook(response)` after each response; may return a replacement (chained)."""
        self._core().after_response_hooks.append(hook)
        return self

    def on_new_message(self, hook: NewMessageHook) -> Self:
        """`hook()` before each provider round trip starts producing an assistant message."""
        self._core().new_message_hooks.append(hook)
        return self

    def on_end_message(self, hook: EndMessageHook) -> Self:
        """`hook(response)` when an answer without tool calls is complete (as in JS)."""
        self._core().end_message_hooks.append(hook)
        return self

    def on_tool_call_start(self, hook: ToolCallHook) -> Self:
        """`hook(tool_call)` just before a tool runs (not for declined calls)."""
        self._core().tool_call_start_hooks.append(hook)
        return self

    def on_tool_call(self, hook: ToolCallHook) -> Self:
        return self.on_tool_call_start(hook)

    def on_tool_call_end(self, hook: ToolEndHook) -> Self:
        """`hook(tool_call, result)` after a tool succeeded (as in JS)."""
        self._core().tool_call_end_hooks.append(hook)
        return self

    def on_tool_result(self, hook: ToolResultHook) -> Self:
        """`hook(result)`: `on_tool_call_end` without the call."""
        self._core().tool_call_end_hooks.append(lambda _call, result: hook(result))
        return self

    def on_tool_call_error(self, hook: ToolErrorHook) -> Self:
        """`hook(tool_call, error)`; every hook runs, the first STOP/CONTINUE/RETRY wins."""
        self._core().tool_call_error_hooks.append(hook)
        return self

    def on_confirm_tool_call(self, hook: ConfirmHook) -> Self:
        """`hook(tool_call)` in "confirm" mode; `False` declines (None does not)."""
        self._core().confirm_tool_call_hooks.append(hook)
        return self

    def on_request(self, hook: RequestHook) -> Self:
        """`hook(RequestMetrics)` after every provider round trip, failed ones included."""
        self._core().request_hooks.append(hook)
        return self


class Chat(ChatConfig):
    """A conversation with one model: holds the history and runs turns.

    Configuration is fluent (`chat.with_temperature(0).with_tool(Weather)`); hooks are lists
    that run in registration order, sync or async. Options are `ChatOptions`, in either
    spelling (`max_tokens` or `maxTokens`).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        model: str,
        provider: Provider | None = None,
        instructions: str | None = None,
        messages: Iterable[Message] = (),
        **options: Unpack[ChatOptions],
    ) -> None:
        self.llm = llm
        self._provider = provider
        self.model = model
        given = list(messages)
        # The instructions, kept apart from the history (JS `systemMessages`) and sent first in
        # every request; system messages given with the history join them, as in JS.
        self.system_messages: list[Message] = [m for m in given if m.role == "system"]
        self.messages: list[Message] = [m for m in given if m.role != "system"]
        self.temperature: float | None = None
        self.max_tokens: int | None = None
        self.thinking: dict[str, Any] | None = None
        self.tools: dict[str, Tool] = {}
        self.tool_choice: str | None = None
        self.tool_calls: ToolCalls | None = None
        self.schema: Schema | None = None
        self.params: dict[str, Any] = {}
        self.headers: dict[str, str] = {}
        # Tool rounds allowed per turn.
        self.max_tool_calls = DEFAULT_MAX_TOOL_CALLS
        # How often an answer that misses the schema (or that a middleware asks to redo) is
        # sent back for correction.
        self.max_corrections = 2
        # None: all of a round's tool calls at once; n: at most n at once.
        self.tool_concurrency: int | None = 1
        self.tool_execution = "auto"
        # Seconds; None uses the LLM's.
        self.request_timeout: float | None = None
        # Log each round trip (logger "nodellm_orm", level INFO).
        self.debug = False
        self.middlewares: list[Any] = []
        self.total_usage = Usage()
        self.last_response: Response | None = None
        # Hooks: every list runs in order; see the methods that register them.
        self.before_request_hooks: list[BeforeRequestHook] = []
        self.after_response_hooks: list[AfterResponseHook] = []
        self.new_message_hooks: list[NewMessageHook] = []
        self.end_message_hooks: list[EndMessageHook] = []
        self.tool_call_start_hooks: list[ToolCallHook] = []
        self.tool_call_end_hooks: list[ToolEndHook] = []
        self.tool_call_error_hooks: list[ToolErrorHook] = []
        self.confirm_tool_call_hooks: list[ConfirmHook] = []
        self.request_hooks: list[RequestHook] = []
        # Internal hooks for the ORM's recorder: every response (tool rounds included), and a
        # round's tool calls when they start and end, to write each round in one statement.
        self.response_hooks: list[ResponseHook] = []
        # Internal: once per turn, with the turn's messages (the agent's on_start).
        self.turn_start_hooks: list[TurnStartHook] = []
        self.tool_round_start_hooks: list[ToolRoundStartHook] = []
        self.tool_round_end_hooks: list[ToolRoundEndHook] = []
        self._configure(options)
        if instructions:
            self.with_instructions(instructions)

    def _core(self) -> Chat:
        return self

    def _configure(self, options: Mapping[str, Any]) -> None:
        """Apply options (either spelling), all checked before any is applied."""
        checked = normalize(options)
        if "tools" in checked:
            tools = [as_tool(t) for t in checked.pop("tools")]
            for tool in tools:
                self.tools[tool.tool_name()] = tool
        if "schema" in checked:
            self.with_schema(checked.pop("schema"))
        if "middlewares" in checked:
            self.middlewares = check_middlewares(checked.pop("middlewares"))
        if "params" in checked:
            self.params = {**self.params, **checked.pop("params")}
        if "headers" in checked:
            self.headers = {**self.headers, **checked.pop("headers")}
        for key, value in checked.items():
            setattr(self, key, value)

    @property
    def provider(self) -> Provider:
        return self._provider or self.llm.provider

    @property
    def instructions(self) -> str | None:
        texts = [m.content or "" for m in self.system_messages]
        return "\n\n".join(texts) if texts else None

    @property
    def options(self) -> dict[str, Any]:
        """The chat's options in their internal (python-spelt) form."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "thinking": self.thinking,
            "tool_choice": self.tool_choice,
            "tool_calls": self.tool_calls,
            "tool_concurrency": self.tool_concurrency,
            "tool_execution": self.tool_execution,
            "max_tool_calls": self.max_tool_calls,
            "max_corrections": self.max_corrections,
            "request_timeout": self.request_timeout,
            "schema": self.schema,
            "params": dict(self.params),
            "headers": dict(self.headers),
        }

    # ---- turns ---------------------------------------------------------------------------

    @staticmethod
    def ask_options(options: Mapping[str, Any]) -> dict[str, Any]:
        """Per-turn options checked (either spelling); an unknown one raises."""
        return normalize(options, allowed=ASK_OPTIONS, where="ask")

    async def ask(self, content: str | None, **options: Unpack[AskOptions]) -> Response:
        """Send `content` (None: continue from the current history) and return the answer."""
        return await self.complete(await self.start_turn(content, self.ask_options(options)))

    async def complete(self, start: TurnStart) -> Response:
        """Run a started turn without streaming; its final answer."""
        async with aclosing(self.run_turn(start, stream=False)) as chunks:
            async for _ in chunks:
                pass
        assert self.last_response is not None
        return self.last_response

    def stream(
        self, content: str | None, **options: Unpack[AskOptions]
    ) -> AsyncGenerator[ChatChunk, None]:
        """Yield chunks as they arrive; the last has `done=True` and the turn's usage."""
        checked = self.ask_options(options)
        if content is not None and not isinstance(content, str):
            raise TypeError(f"message must be a string, not {type(content).__name__}")

        async def run() -> AsyncGenerator[ChatChunk, None]:
            start = await self.start_turn(content, checked)
            async with aclosing(self.run_turn(start, stream=True)) as chunks:
                async for chunk in chunks:
                    yield chunk

        return run()

    ask_stream = stream

    async def start_turn(self, content: str | None, options: dict[str, Any]) -> TurnStart:
        """Run the `on_request` middlewares on the history and the new user message.

        Nothing is added to the history yet: `run_turn` appends the (possibly rewritten) user
        message, so whoever records the turn can write what the middlewares left.
        """
        if content is not None and not isinstance(content, str):
            raise TypeError(f"message must be a string, not {type(content).__name__}")
        user = Message(role="user", content=content) if content is not None else None
        context = MiddlewareContext(
            request_id=str(uuid.uuid4()),
            provider=self.provider.name,
            model=self.model,
            messages=[*self.system_messages, *self.messages, *([user] if user else [])],
            options={**self.options, **options},
        )
        if self.middlewares:
            try:
                await run_middlewares(self.middlewares, "on_request", context)
            except Exception as exc:
                await run_middlewares(self.middlewares, "on_error", context, exc)
                raise
            messages = list(context.messages)
            if user is not None:
                last = messages.pop() if messages else None
                if last is None or last.role != "user":
                    raise TypeError("an on_request middleware removed the user message")
                user = last
            self.system_messages = [m for m in messages if m.role == "system"]
            self.messages = [m for m in messages if m.role != "system"]
        return TurnStart(context=context, options=options, user=user)

    async def run_turn(self, start: TurnStart, *, stream: bool) -> AsyncGenerator[ChatChunk, None]:
        """The turn after `start_turn`: the round trips, tool rounds and corrections."""
        if start.user is not None:
            self.messages.append(start.user)
        for hook in self.turn_start_hooks:
            await call_hook(hook, list(self.messages))
        try:
            # Closed at once when the consumer stops reading, so the round trip in flight is
            # reported before whoever records the turn writes its end.
            async with aclosing(self._turn(start, stream=stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            self._answer_unanswered()
            if self.middlewares and isinstance(exc, Exception):
                await run_middlewares(self.middlewares, "on_error", start.context, exc)
            raise

    def _answer_unanswered(self) -> None:
        """After a failed turn: providers refuse a history with a tool call left unanswered."""
        for index in range(len(self.messages) - 1, -1, -1):
            message = self.messages[index]
            if message.role == "assistant" and message.tool_calls:
                answered = {m.tool_call_id for m in self.messages[index + 1 :]}
                self.messages.extend(
                    Message(role="tool", content=NO_RESULT, tool_call_id=c.id, name=c.name)
                    for c in message.tool_calls
                    if c.id not in answered
                )
                return
            if message.role != "tool":
                return

    async def _turn(self, start: TurnStart, *, stream: bool) -> AsyncGenerator[ChatChunk, None]:
        # The chat's options with the turn's overrides, as the on_request middlewares left them.
        options = start.context.options
        provider = self.provider
        turn_usage = Usage()
        rounds = 0
        corrections = 0
        max_tool_calls = options.get("max_tool_calls", self.max_tool_calls)
        max_corrections = options.get("max_corrections", self.max_corrections)
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
                async with aclosing(self._send(trip)) as sent:
                    async for chunk in sent:
                        yield chunk
            except BaseException:
                self._drop(scratch)
                raise
            response = await self._received(trip)
            invalid = self._schema_error(response, trip.request, options)
            turn_usage = turn_usage + response.usage
            self.total_usage = self.total_usage + response.usage
            self.messages.append(response.to_message())
            self.last_response = response
            for hook in self.response_hooks:
                await call_hook(hook, response)
            if not response.tool_calls:
                for end_hook in self.end_message_hooks:
                    await call_hook(end_hook, response)
            feedback: str | None = None
            if invalid is not None:
                feedback = (
                    f"Your answer does not match the requested schema: {invalid}. "
                    "Reply again with only the corrected JSON."
                )
            elif not response.tool_calls and self.middlewares:
                feedback = await self._on_response(start.context, response, turn_usage)
            if feedback is not None:
                scratch.append(self.messages[-1])
                if corrections >= max_corrections:
                    self._drop(scratch)
                    if invalid is None:
                        raise errors.StructuredOutputError(
                            f"a middleware asked for another answer after {corrections} "
                            f"correction round(s); max_corrections is {max_corrections}",
                            provider=provider.name,
                        )
                    raise errors.StructuredOutputError(
                        f"the answer does not match the schema after {corrections} "
                        f"correction round(s): {invalid}",
                        provider=provider.name,
                    ) from invalid
                corrections += 1
                prompt = Message(role="user", content=feedback)
                scratch.append(prompt)
                self.messages.append(prompt)
                continue
            self._drop(scratch)
            if not response.tool_calls:
                yield ChatChunk(
                    usage=turn_usage, finish_reason=self.last_response.finish_reason, done=True
                )
                return
            rounds += 1
            if rounds > max_tool_calls:
                raise errors.ToolCallLimitError(
                    f"the model asked for tool round {rounds} in one turn; "
                    f"max_tool_calls is {max_tool_calls} (tool rounds per turn)",
                    provider=provider.name,
                )
            if stream:
                yield ChatChunk(tool_calls=list(response.tool_calls))
            outcomes = await self._run_tools(response.tool_calls, start.context)
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

    async def _on_response(
        self, context: MiddlewareContext, response: Response, turn_usage: Usage
    ) -> str | None:
        """The `on_response` middlewares on the final answer; a Retry's feedback, if any.

        A middleware that stops the turn (a guard raising `MiddlewareStopError`, or "STOP")
        leaves the answer out of the history; the error carries it for whoever records it.
        """
        final = response.model_copy(update={"usage": turn_usage})
        try:
            directive = request_directive(
                await run_middlewares(self.middlewares, "on_response", context, final)
            )
            if directive == "STOP":
                raise MiddlewareStopError(
                    "a middleware stopped the turn", provider=response.provider
                )
        except MiddlewareStopError as stop:
            stop.response = response
            self.messages.pop()
            self.last_response = None
            raise
        if isinstance(directive, Retry):
            return directive.message
        if isinstance(directive, Replace):
            self.messages[-1] = directive.response.to_message()
            self.last_response = directive.response
        return None

    def _request(
        self, messages: list[Message], stream: bool, options: dict[str, Any]
    ) -> ChatRequest:
        schema = options.get("schema", self.schema)
        params = {**self.params, **options.get("params", {})}
        thinking = options.get("thinking", self.thinking)
        return ChatRequest(
            model=self.model,
            messages=messages,
            tools=[tool.spec() for tool in self.tools.values()],
            temperature=options.get("temperature", self.temperature),
            max_tokens=options.get("max_tokens", self.max_tokens),
            thinking=thinking,
            tool_choice=self.tool_choice if self.tools else None,
            parallel_tool_calls=parallel_tool_calls(self.tool_calls) if self.tools else None,
            schema=_schema_spec(schema) if schema is not None else None,
            params=params,
            headers={**self.headers, **options.get("headers", {})},
            stream=stream,
            timeout=options.get("request_timeout", self.request_timeout),
        )

    def _wants_schema(self, options: dict[str, Any]) -> bool:
        return options.get("schema", self.schema) is not None

    async def _next_request(self, stream: bool, options: dict[str, Any]) -> ChatRequest:
        """The request for the next round trip, after the hooks that may rewrite it."""
        # The instructions are rendered here, as the request is built.
        messages = [*self.system_messages, *self.messages]
        for hook in self.before_request_hooks:
            replaced = await call_hook(hook, messages)
            if replaced is not None:
                messages = list(replaced)
        request = self._request(messages, stream, options)
        for new_message in self.new_message_hooks:
            await call_hook(new_message)
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
        except BaseException as exc:
            # Every round trip is reported, failed or abandoned (cancelled, or the consumer
            # stopped reading): the call was made and may be billed.
            failed = exc if isinstance(exc, errors.LLMError) else None
            await self._report(
                RequestMetrics(
                    provider=provider.name,
                    model=request.model,
                    status_code=(failed.status_code or trip.status) if failed else ABANDONED,
                    duration_ms=_elapsed_ms(trip.started)
                    if failed is None or failed.duration_ms is None
                    else failed.duration_ms,
                    usage=trip.accumulator.usage or Usage(),
                    error=failed,
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

    async def _run_tools(
        self, calls: list[ToolCall], context: MiddlewareContext
    ) -> list[ToolOutcome]:
        # The round hooks run in call order before any tool executes and after all finished,
        # so whatever the recorder writes is ordered even with concurrency.
        for start_hook in self.tool_round_start_hooks:
            await call_hook(start_hook, calls)
        limit = self.tool_concurrency
        concurrent = self.tool_execution != "confirm" and len(calls) > 1 and limit != 1
        if concurrent:
            gate = asyncio.Semaphore(limit or len(calls))

            async def bounded(call: ToolCall) -> ToolOutcome:
                async with gate:
                    return await self._run_tool(call, context)

            outcomes = list(await asyncio.gather(*(bounded(c) for c in calls)))
        else:
            outcomes = [await self._run_tool(call, context) for call in calls]
        for end_hook in self.tool_round_end_hooks:
            await call_hook(end_hook, outcomes)
        return outcomes

    async def _run_tool(self, call: ToolCall, context: MiddlewareContext) -> ToolOutcome:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return ToolOutcome(
                call, f"Error: unknown tool {call.name!r} (available: {known})", True
            )
        if self.tool_execution == "dry-run":
            return ToolOutcome(call, f"[dry-run] {call.name} was not executed")
        if self.tool_execution == "confirm":
            for confirm in self.confirm_tool_call_hooks:
                # As in JS: only False declines; None (no answer) does not.
                if await call_hook(confirm, call) is False:
                    return ToolOutcome(
                        call, f"Tool call {call.name} was declined by the user", True
                    )
        retried = False
        while True:
            try:
                if self.middlewares:
                    await run_middlewares(self.middlewares, "on_tool_call_start", context, call)
                for start in self.tool_call_start_hooks:
                    await call_hook(start, call)
                result = await tool.call(call.arguments)
            except Exception as exc:
                directive = await self._tool_error_directive(call, exc, context)
                if directive is ToolErrorDirective.STOP:
                    raise errors.ToolError(
                        f"tool {call.name!r} failed: {exc}", provider=self.provider.name
                    ) from exc
                if directive is ToolErrorDirective.RETRY and not retried:
                    retried = True
                    continue
                return ToolOutcome(call, f"Error: {exc}", True)
            if self.middlewares:
                await run_middlewares(self.middlewares, "on_tool_call_end", context, call, result)
            for end in self.tool_call_end_hooks:
                await call_hook(end, call, result)
            return ToolOutcome(call, result)

    async def _tool_error_directive(
        self, call: ToolCall, exc: Exception, context: MiddlewareContext
    ) -> ToolErrorDirective | None:
        """As in JS: a middleware's directive first; else every hook runs, the first wins."""
        answer: Any = None
        if self.middlewares:
            answer = await run_middlewares(
                self.middlewares, "on_tool_call_error", context, call, exc
            )
        if answer is None:
            for hook in self.tool_call_error_hooks:
                value = await call_hook(hook, call, exc)
                if value is not None and answer is None:
                    answer = value
        if answer is None:
            return None
        try:
            return ToolErrorDirective(str(getattr(answer, "value", answer)).upper())
        except ValueError:
            raise TypeError(
                f"on_tool_call_error returned {answer!r}; expected 'STOP', 'CONTINUE', "
                "'RETRY' or None"
            ) from None


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
