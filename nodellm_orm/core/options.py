"""The chat options: one typed definition, in both spellings, every value checked.

`ChatOptions` is what configures a chat (the core chat, `create_chat`, `load_chat`, agents);
`AskOptions` is what one turn may override (`ask`, `ask_stream`). Each key exists in the
Python spelling and, where `@node-llm/core` has it, in the JS spelling. A JS-spelled key means
what it means in JS, units included: `requestTimeout` is in milliseconds, `request_timeout` in
seconds. `normalize` turns either spelling into the one internal form the chat uses and raises
`TypeError`/`ValueError` naming the option for a value of the wrong form, so nothing is
accepted and then ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import BaseModel

if TYPE_CHECKING:
    from .middleware import Middleware
    from .tools import Tool

Effort = Literal["low", "medium", "high", "none"]
ToolExecution = Literal["auto", "confirm", "dry-run"]
ToolCalls = Literal["one", "many"] | int
TOOL_EXECUTION_MODES: tuple[str, ...] = ("auto", "confirm", "dry-run")
EFFORTS: tuple[str, ...] = ("low", "medium", "high", "none")


class ThinkingConfig(TypedDict, total=False):
    """Extended thinking: an effort level, a token budget, or both (JS `ThinkingConfig`)."""

    effort: Effort
    budget: int
    # The Python spelling of `budget`.
    budget_tokens: int


class ToolChoiceFunction(TypedDict):
    name: str


class ToolChoiceObject(TypedDict):
    """The object form of `toolChoice`: `{"type": "function", "function": {"name": ...}}`."""

    type: Literal["function"]
    function: ToolChoiceFunction


# "auto" | "none" | "required" | a tool's name | the object form.
ToolChoice = str | ToolChoiceObject
Schema = type[BaseModel] | dict[str, Any]


class AskOptions(TypedDict, total=False):
    """What one turn may override (`ask`, `ask_stream`); JS `AskOptions` plus a few."""

    temperature: float | None
    max_tokens: int | None
    maxTokens: int | None
    thinking: ThinkingConfig | bool | None
    headers: dict[str, str]
    max_tool_calls: int
    maxToolCalls: int
    max_corrections: int
    maxCorrections: int
    # Seconds.
    request_timeout: float | None
    # Milliseconds, as in JS.
    requestTimeout: float | None
    schema: Schema | None
    params: dict[str, Any]


class ChatOptions(AskOptions, total=False):
    """Everything that configures a chat (JS `ChatOptions` of `@node-llm/orm`)."""

    tools: Sequence[Tool | type[Tool]]
    tool_choice: ToolChoice | None
    toolChoice: ToolChoice | None
    tool_calls: ToolCalls | None
    toolCalls: ToolCalls | None
    # True: all of a round's tool calls at once; False: one at a time; n: at most n at once.
    tool_concurrency: bool | int
    toolConcurrency: bool
    tool_execution: ToolExecution
    toolExecution: ToolExecution
    debug: bool
    middlewares: Sequence[Middleware]


# JS spelling -> Python spelling.
JS_SPELLINGS: dict[str, str] = {
    "maxTokens": "max_tokens",
    "maxToolCalls": "max_tool_calls",
    "maxCorrections": "max_corrections",
    "requestTimeout": "request_timeout",
    "toolChoice": "tool_choice",
    "toolCalls": "tool_calls",
    "toolConcurrency": "tool_concurrency",
    "toolExecution": "tool_execution",
}
ASK_OPTIONS: frozenset[str] = frozenset(AskOptions.__optional_keys__)
CHAT_OPTIONS: frozenset[str] = frozenset(ChatOptions.__optional_keys__)
DEFAULT_MAX_TOOL_CALLS = 5  # tool rounds per turn, as in @node-llm/core


def _number(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0, not {value}")
    return float(value)


def _integer(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def _thinking(name: str, value: Any) -> dict[str, Any] | None:
    """The internal form: {"effort": level} and/or {"budget_tokens": n}; None = off."""
    if value is None or value is False:
        return None
    if value is True:
        return {"effort": "medium"}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a dict like {{'effort': 'high', 'budget': 2048}}, True or None, "
            f"not {type(value).__name__}"
        )
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "effort":
            if item not in EFFORTS:
                raise ValueError(f"{name}['effort'] must be one of {EFFORTS}, not {item!r}")
            out["effort"] = item
        elif key in ("budget", "budget_tokens"):
            out["budget_tokens"] = _integer(f"{name}[{key!r}]", item, minimum=1)
        else:
            raise ValueError(
                f"unknown {name} key {key!r}; expected 'effort' and/or 'budget' (or "
                "'budget_tokens')"
            )
    return out or None


def tool_choice_name(name: str, value: Any) -> str | None:
    """ "auto" | "none" | "required" | a tool name | the object form -> the string form."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} must not be empty")
        return value
    if isinstance(value, Mapping):
        function = value.get("function")
        if (
            value.get("type") == "function"
            and set(value) == {"type", "function"}
            and isinstance(function, Mapping)
            and set(function) == {"name"}
            and isinstance(function.get("name"), str)
            and function["name"]
        ):
            return str(function["name"])
    raise TypeError(
        f"{name} must be 'auto', 'none', 'required', a tool name or "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, not {value!r}"
    )


def _tool_calls(name: str, value: Any) -> ToolCalls | None:
    if value is None or value in ("one", "many"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"{name} must be 'one', 'many' or a positive integer, not {value!r}")


def parallel_tool_calls(tool_calls: ToolCalls | None) -> bool | None:
    """What the providers accept: False for "one" (or 1); otherwise their default (many).

    No provider can cap tool calls at n > 1, so a number above 1 means "many", as in JS.
    """
    return False if tool_calls in ("one", 1) else None


def _tool_concurrency(name: str, value: Any) -> int | None:
    """The internal form: None = unbounded (all at once), n >= 1 = at most n at once."""
    if isinstance(value, bool):
        return None if value else 1
    if name == "toolConcurrency":
        raise TypeError(f"toolConcurrency must be True or False, not {value!r}")
    return _integer(name, value, minimum=1)


def _string_map(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"{name} must be a dict of strings")
    return dict(value)


def _check(name: str, key: str, value: Any) -> Any:
    """One option's value in its internal form; `name` is how the caller spelt it."""
    if key == "temperature":
        return None if value is None else _number(name, value)
    if key == "max_tokens":
        return None if value is None else _integer(name, value, minimum=1)
    if key == "thinking":
        return _thinking(name, value)
    if key == "headers":
        return _string_map(name, value)
    if key == "max_tool_calls":
        return _integer(name, value, minimum=0)
    if key == "max_corrections":
        return _integer(name, value, minimum=0)
    if key == "request_timeout":
        if value is None:
            return None
        seconds = _number(name, value, positive=True)
        return seconds / 1000 if name == "requestTimeout" else seconds
    if key == "schema":
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value
        raise TypeError(f"{name} must be a pydantic model class or a JSON schema dict")
    if key == "params":
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
        return dict(value)
    if key == "tools":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of tools, not {type(value).__name__}")
        return list(value)
    if key == "tool_choice":
        return tool_choice_name(name, value)
    if key == "tool_calls":
        return _tool_calls(name, value)
    if key == "tool_concurrency":
        return _tool_concurrency(name, value)
    if key == "tool_execution":
        if value not in TOOL_EXECUTION_MODES:
            raise ValueError(
                f"unknown tool execution mode {value!r} for {name}; use one of "
                f"{TOOL_EXECUTION_MODES}"
            )
        return value
    if key == "debug":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False")
        return value
    if key == "middlewares":
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of middlewares")
        return list(value)
    raise AssertionError(key)  # pragma: no cover - every key of ChatOptions is handled


def normalize(
    options: Mapping[str, Any], *, allowed: frozenset[str] = CHAT_OPTIONS, where: str = "chat"
) -> dict[str, Any]:
    """Options in either spelling -> {python_key: internal value}; unknown keys raise.

    Giving both spellings of one option is an error unless they agree.
    """
    out: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for name, value in options.items():
        if name not in allowed:
            raise TypeError(f"unknown {where} option {name!r}; the options are {sorted(allowed)}")
        key = JS_SPELLINGS.get(name, name)
        checked = _check(name, key, value)
        if key in out and out[key] != checked:
            raise ValueError(f"{spelt[key]!r} and {name!r} are the same option with two values")
        out[key] = checked
        spelt[key] = name
    return out
