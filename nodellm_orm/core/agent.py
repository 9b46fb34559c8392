"""`Agent`: a chat configured by class attributes, so the code defines the behaviour.

```python
class Support(Agent):
    model = "gpt-4o-mini"
    instructions = lambda inputs: f"Help {inputs.get('user', 'the user')}."
    tools = lambda inputs: [LookupOrder] if inputs.get("orders") else []
    temperature = 0

    def on_tool_start(self, call): ...
```

`instructions` and `tools` may be values or functions of the inputs, evaluated lazily at each
turn so per-turn `inputs=` take effect. The lifecycle hooks of `@node-llm/core`'s Agent are
methods to override: `on_start(context)` once per turn, `on_tool_start(call)`,
`on_tool_end(call, result)`, `on_tool_error(call, error)` (observes only), and, for the final
answer of a turn, `on_thinking(thinking, response)` (when it has thinking) then
`on_complete(response)`. `define_agent(...)` builds such a class from a dict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Unpack

from .chat import Chat, ChatConfig
from .llm import LLM, create_llm
from .messages import ChatChunk, Message, Response, Thinking, ToolCall, Usage
from .options import JS_SPELLINGS, AskOptions, ChatOptions, Schema, ToolCalls, ToolChoice
from .tools import Tool, as_tool

Inputs = dict[str, Any]
Instructions = str | Callable[[Inputs], str | None] | None
ToolList = Sequence[Tool | type[Tool]]
Tools = ToolList | Callable[[Inputs], ToolList]

# The lifecycle methods of Agent; a subclass overriding one is wired to the chat's hooks.
LIFECYCLE = ("on_start", "on_thinking", "on_tool_start", "on_tool_end", "on_tool_error")


class Agent(ChatConfig):
    """Class attributes are the JS statics (`maxTokens` -> `max_tokens`...)."""

    model: ClassVar[str | None] = None
    provider: ClassVar[str | None] = None
    instructions: ClassVar[Instructions] = None
    tools: ClassVar[Tools] = ()
    temperature: ClassVar[float | None] = None
    thinking: ClassVar[dict[str, Any] | bool | None] = None
    max_tokens: ClassVar[int | None] = None
    max_tool_calls: ClassVar[int | None] = None
    tool_concurrency: ClassVar[bool | int | None] = None
    schema: ClassVar[Schema | None] = None
    params: ClassVar[dict[str, Any] | None] = None
    headers: ClassVar[dict[str, str] | None] = None
    middlewares: ClassVar[Sequence[Any]] = ()
    # JS `static inputs`: the names of the inputs this agent expects (for introspection, not
    # enforced, as in JS). Named apart because `agent.inputs` holds the inputs' values.
    input_names: ClassVar[Sequence[str]] = ()

    def __init__(
        self,
        *,
        llm: LLM | None = None,
        messages: Iterable[Message] = (),
        inputs: Inputs | None = None,
        model: str | None = None,
        instructions: str | None = None,
        **overrides: Unpack[ChatOptions],
    ) -> None:
        if inputs is not None and not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict, not {type(inputs).__name__}")
        cls = type(self)
        base = llm or create_llm()
        if cls.provider and cls.provider != base.provider_name:
            base = base.with_provider(cls.provider)
        self.llm = base
        # Instance state; the class attribute `inputs` only declares the expected names.
        self.inputs: Inputs = dict(inputs or {})
        self._instructions_override = instructions
        self._extra_instructions: list[str] = []
        given: dict[str, Any] = {JS_SPELLINGS.get(k, k): v for k, v in overrides.items()}
        self._tools_source: Tools = given.pop("tools", None) or cls.tools
        self._added_tools: list[Tool] = []
        options: dict[str, Any] = {
            key: value
            for key, value in (
                ("temperature", cls.temperature),
                ("thinking", cls.thinking),
                ("max_tokens", cls.max_tokens),
                ("max_tool_calls", cls.max_tool_calls),
                ("tool_concurrency", cls.tool_concurrency),
                ("schema", cls.schema),
            )
            if value is not None
        }
        # As in JS: headers and params merge over the class's, middlewares add to them.
        options["headers"] = {**(cls.headers or {}), **given.pop("headers", {})}
        options["params"] = {**(cls.params or {}), **given.pop("params", {})}
        options["middlewares"] = [*cls.middlewares, *given.pop("middlewares", [])]
        options.update(given)
        self.chat: Chat = base.chat(model or cls.model, **options)
        # Stored history never carries the agent's instructions: the class owns those.
        self.chat.messages = [m for m in messages if m.role != "system"]
        self._rendered: Message | None = None
        self._resolve_tools(self.inputs)
        self._render()
        # Each turn renders them again with its inputs, before the lifecycle's on_start.
        self.chat.turn_start_hooks.append(lambda _messages: self._render())
        self._wire_lifecycle()

    def _core(self) -> Chat:
        return self.chat

    # ---- lazy configuration --------------------------------------------------------------

    def _current_inputs(self, inputs: Inputs | None = None) -> Inputs:
        return {**self.inputs, **(self._turn_inputs or {}), **(inputs or {})}

    def resolve_instructions(self, inputs: Inputs | None = None) -> str | None:
        source: Instructions = self._instructions_override
        if source is None:
            source = type(self).instructions
        text = source(self._current_inputs(inputs)) if callable(source) else source
        parts = [p for p in (text, *self._extra_instructions) if p]
        return "\n\n".join(parts) if parts else None

    def resolve_tools(self, inputs: Inputs | None = None) -> list[Tool]:
        source = self._tools_source
        listed = source(self._current_inputs(inputs)) if callable(source) else source
        if isinstance(listed, str | bytes) or not isinstance(listed, Sequence):
            raise TypeError(
                f"{type(self).__name__}.tools must be a list of tools or a function of the "
                f"inputs returning one, not {type(listed).__name__}"
            )
        return [as_tool(t) for t in listed]

    def _resolve_tools(self, inputs: Inputs | None = None) -> None:
        tools = [*self.resolve_tools(inputs), *self._added_tools]
        self.chat.tools = {t.tool_name(): t for t in tools}

    def _render(self) -> None:
        """Write the resolved instructions into the chat's instructions field (JS: the agent's
        `withInstructions(..., {replace: true})`), and the tools when they are lazy.

        Only the message the agent rendered last is replaced: instructions added on the chat
        itself stay after it.
        """
        if callable(self._tools_source):
            self._resolve_tools()
        text = self.resolve_instructions()
        kept = [m for m in self.chat.system_messages if m is not self._rendered]
        self._rendered = Message(role="system", content=text) if text else None
        self.chat.system_messages = [*([self._rendered] if self._rendered else []), *kept]

    _turn_inputs: Inputs | None = None

    # ---- lifecycle hooks (override in a subclass) ----------------------------------------

    def on_start(self, context: dict[str, Any]) -> object:
        """Once per turn, before the first request; `context["messages"]` is the history."""
        return None

    def on_thinking(self, thinking: Thinking, response: Response) -> object:
        return None

    def on_tool_start(self, call: ToolCall) -> object:
        return None

    def on_tool_end(self, call: ToolCall, result: str) -> object:
        return None

    def on_tool_error(self, call: ToolCall, error: Exception) -> object:
        return None

    def on_complete(self, response: Response) -> object:
        return None

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(Agent, name)

    def _wire_lifecycle(self) -> None:
        chat = self.chat
        if self._overrides("on_start"):
            chat.turn_start_hooks.append(lambda messages: self.on_start({"messages": messages}))
        if self._overrides("on_tool_start"):
            chat.on_tool_call_start(self.on_tool_start)
        if self._overrides("on_tool_end"):
            chat.on_tool_call_end(self.on_tool_end)
        if self._overrides("on_tool_error"):

            async def observe(call: ToolCall, error: Exception) -> None:
                # JS wraps it so that its result is never a directive.
                result = self.on_tool_error(call, error)
                if hasattr(result, "__await__"):
                    await result

            chat.on_tool_call_error(observe)
        if self._overrides("on_thinking") or self._overrides("on_complete"):

            async def finished(response: Response) -> None:
                if response.thinking is not None:
                    result = self.on_thinking(response.thinking, response)
                    if hasattr(result, "__await__"):
                        await result
                result = self.on_complete(response)
                if hasattr(result, "__await__"):
                    await result

            chat.on_end_message(finished)

    # ---- turns ---------------------------------------------------------------------------

    async def ask(
        self, content: str | None, *, inputs: Inputs | None = None, **options: Unpack[AskOptions]
    ) -> Response:
        self._turn_inputs = inputs
        try:
            return await self.chat.ask(content, **options)
        finally:
            self._turn_inputs = None

    say = ask

    async def stream(
        self, content: str | None, *, inputs: Inputs | None = None, **options: Unpack[AskOptions]
    ) -> AsyncIterator[ChatChunk]:
        self._turn_inputs = inputs
        try:
            async for chunk in self.chat.stream(content, **options):
                yield chunk
        finally:
            self._turn_inputs = None

    ask_stream = stream

    @property
    def history(self) -> list[Message]:
        return list(self.chat.messages)

    @property
    def total_usage(self) -> Usage:
        return self.chat.total_usage

    @property
    def model_id(self) -> str:
        return self.chat.model

    @property
    def underlying_chat(self) -> Chat:
        return self.chat

    # ---- fluent configuration that differs from the chat's --------------------------------

    def with_tool(self, tool: Tool | type[Tool]) -> Agent:
        return self.with_tools(tool)

    def with_tools(
        self,
        *tools: Tool | type[Tool] | Sequence[Tool | type[Tool]],
        replace: bool = False,
        choice: ToolChoice | None = None,
        calls: ToolCalls | None = None,
    ) -> Agent:
        """As the chat's, and kept across turns: each turn resolves lazy tools again, and the
        given ones stay beside them (`replace=True`: only the given ones, the class's dropped)."""
        before = {id(t) for t in self.chat.tools.values()}
        super().with_tools(*tools, replace=replace, choice=choice, calls=calls)
        given = [t for t in self.chat.tools.values() if id(t) not in before]
        if replace:
            self._tools_source = []
            self._added_tools = given
        else:
            names = {t.tool_name() for t in given}
            self._added_tools = [t for t in self._added_tools if t.tool_name() not in names]
            self._added_tools += given
        return self

    def with_instructions(self, text: str, replace: bool = False) -> Agent:
        """Append to the class's instructions (as in JS); `replace=True` replaces them."""
        if not isinstance(text, str):
            raise TypeError(f"instructions must be a string, not {type(text).__name__}")
        if replace:
            self._instructions_override = text
            self._extra_instructions = []
        else:
            self._extra_instructions.append(text)
        self._render()
        return self


_DEFINABLE = frozenset(
    {
        "name",
        "model",
        "provider",
        "instructions",
        "tools",
        "temperature",
        "thinking",
        "schema",
        "params",
        "headers",
        "max_tokens",
        "max_tool_calls",
        "tool_concurrency",
        "middlewares",
        "input_names",
    }
)


def define_agent(config: Mapping[str, Any] | None = None, /, **more: Any) -> type[Agent]:
    """An Agent subclass from a dict, like JS `defineAgent({...})` (either spelling).

    `name` names the class (what an agent session stores as `agentClass`); default "Agent".
    """
    given = {**(config or {}), **more}
    statics: dict[str, Any] = {}
    for key, value in given.items():
        attr = "input_names" if key == "inputs" else JS_SPELLINGS.get(key, key)
        if attr not in _DEFINABLE:
            raise TypeError(f"unknown define_agent option {key!r}; expected {sorted(_DEFINABLE)}")
        statics[attr] = value
    name = statics.pop("name", "Agent")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"define_agent name must be an identifier, not {name!r}")
    for attr in ("instructions", "tools"):
        if attr in statics and callable(statics[attr]) and not isinstance(statics[attr], type):
            # A function stored on a class would become a method: keep it a plain callable.
            statics[attr] = staticmethod(statics[attr])
    return type(name, (Agent,), statics)
