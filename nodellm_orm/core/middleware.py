"""The middleware protocol of `@node-llm/core`, run by the core chat in every turn.

A middleware is any object with a `name` and any of these (sync or async) methods:

- `on_request(ctx)`: once per turn, before the first request. `ctx.messages` are the turn's
  messages (the new user message last): change them in place (or replace the list) and the
  request, the in-memory history and the stored rows all carry the change.
- `on_response(ctx, response)`: once per turn, with the turn's final answer. May return a
  directive: `Retry(message)` sends `message` back for another round (bounded by
  `max_corrections`), `Replace(response)` answers with another response, `"STOP"` fails the
  turn with `MiddlewareStopError`. Raising fails the turn with that error.
- `on_error(ctx, error)`: when the turn fails; observes only (the error is raised anyway).
- `on_tool_call_start(ctx, call)` before a tool runs (raising prevents the call),
  `on_tool_call_end(ctx, call, result)` after it succeeded, `on_tool_call_error(ctx, call,
  error)` when it failed, which may return "STOP" | "CONTINUE" | "RETRY"; a directive from a
  middleware is taken before the chat's `on_tool_call_error` hooks, which then do not run.

Order, as in JS: `on_request` and `on_tool_call_start` run in list order; `on_response`,
`on_error`, `on_tool_call_end` and `on_tool_call_error` in reverse order (a stack). Every
middleware runs; the first directive returned wins.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import LLMError

if TYPE_CHECKING:
    from .messages import Message, Response

HOOKS = (
    "on_request",
    "on_response",
    "on_error",
    "on_tool_call_start",
    "on_tool_call_end",
    "on_tool_call_error",
)
_REVERSED = frozenset({"on_response", "on_error", "on_tool_call_end", "on_tool_call_error"})


class Middleware(Protocol):
    """Any object with a `name` (and any of the hook methods listed in this module)."""

    name: str


@dataclass(slots=True)
class MiddlewareContext:
    """Shared by every hook of one turn (JS `MiddlewareContext`)."""

    request_id: str
    provider: str
    model: str
    messages: list[Message]
    # The chat's options (python spelling) and this turn's overrides, merged.
    options: dict[str, Any]
    # Free for middlewares to pass data between their hooks within the turn.
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retry:
    """Directive of `on_response`: send `message` to the model and answer again."""

    message: str
    action: Literal["RETRY"] = "RETRY"


@dataclass(frozen=True, slots=True)
class Replace:
    """Directive of `on_response`: answer with `response` instead."""

    response: Response
    action: Literal["REPLACE"] = "REPLACE"


class MiddlewareStopError(LLMError):
    """A middleware stopped the turn after an answer arrived ("STOP", or a guard's limit).

    `response` is the answer that was stopped: paid for, so the ORM keeps its row (marked
    interrupted with this error) and the request rows that produced it.
    """

    response: Response | None = None


def check_middlewares(middlewares: Sequence[Any]) -> list[Any]:
    """Every entry must have at least one hook; a typo (`onRequest`) would never run."""
    for middleware in middlewares:
        if not any(callable(getattr(middleware, hook, None)) for hook in HOOKS):
            raise TypeError(f"middleware {middleware!r} has none of the hooks {', '.join(HOOKS)}")
    return list(middlewares)


def middleware_name(middleware: Any) -> str:
    name = getattr(middleware, "name", None)
    return name if isinstance(name, str) else type(middleware).__name__


async def run_middlewares(middlewares: Sequence[Any], hook: str, *args: Any) -> Any:
    """Run `hook` on every middleware that has it; the first non-None result wins."""
    chain = list(reversed(middlewares)) if hook in _REVERSED else list(middlewares)
    result: Any = None
    for middleware in chain:
        method = getattr(middleware, hook, None)
        if method is None:
            continue
        value = method(*args)
        if inspect.isawaitable(value):
            value = await value
        if value is not None and result is None:
            result = value
    return result


def request_directive(value: Any, name: str = "on_response") -> Retry | Replace | str | None:
    """Check what `on_response` returned: Retry, Replace, "STOP", "CONTINUE" or None.

    The JS object forms `{"action": "RETRY", "message": ...}` and `{"action": "REPLACE",
    "response": ...}` are accepted too.
    """
    from .messages import Response

    if value is None or isinstance(value, Retry | Replace):
        return value
    if value in ("STOP", "CONTINUE"):
        return str(value)
    if isinstance(value, dict):
        if value.get("action") == "RETRY" and isinstance(value.get("message"), str):
            return Retry(value["message"])
        if value.get("action") == "REPLACE" and isinstance(value.get("response"), Response):
            return Replace(value["response"])
    raise TypeError(
        f"a middleware's {name} returned {value!r}; expected Retry(message), "
        "Replace(response), 'STOP', 'CONTINUE' or None"
    )
