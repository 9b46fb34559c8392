"""`Agent`: a chat configured by class attributes, so the code defines the behaviour.

```python
class Support(Agent):
    model = "gpt-4o-mini"
    instructions = lambda inputs: f"Help {inputs.get('user', 'the user')}."
    tools = [LookupOrder]
    temperature = 0
```

`instructions` may be a string or a callable of the inputs, evaluated lazily at each turn so
per-turn `inputs=` take effect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from .chat import Chat
from .llm import LLM, create_llm
from .messages import ChatChunk, Message, Response, Usage
from .tools import Tool

Instructions = str | Callable[[dict[str, Any]], str] | None


class Agent:
    model: ClassVar[str | None] = None
    provider: ClassVar[str | None] = None
    instructions: ClassVar[Instructions] = None
    tools: ClassVar[Sequence[Tool | type[Tool]]] = ()
    temperature: ClassVar[float | None] = None
    thinking: ClassVar[dict[str, Any] | bool | None] = None
    max_tokens: ClassVar[int | None] = None
    max_tool_calls: ClassVar[int | None] = None
    schema: ClassVar[type[BaseModel] | dict[str, Any] | None] = None
    params: ClassVar[dict[str, Any] | None] = None

    def __init__(
        self,
        *,
        llm: LLM | None = None,
        messages: Iterable[Message] = (),
        inputs: dict[str, Any] | None = None,
        model: str | None = None,
        instructions: str | None = None,
        max_tool_calls: int | None = None,
    ) -> None:
        if inputs is not None and not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict, not {type(inputs).__name__}")
        base = llm or create_llm()
        if self.provider and self.provider != base.provider_name:
            base = base.with_provider(self.provider)
        self.llm = base
        self.inputs: dict[str, Any] = dict(inputs or {})
        self._instructions_override = instructions
        self.chat: Chat = base.chat(
            model or self.model,
            temperature=self.temperature,
            thinking=self.thinking,
            max_tokens=self.max_tokens,
            max_tool_calls=max_tool_calls if max_tool_calls is not None else self.max_tool_calls,
            tools=self.tools,
            schema=self.schema,
            params=self.params,
        )
        # Stored history never carries the agent's instructions: the class owns those.
        self.chat.messages = [m for m in messages if m.role != "system"]
        self.chat.on_before_request(self._with_instructions)

    def resolve_instructions(self, inputs: dict[str, Any] | None = None) -> str | None:
        if self._instructions_override is not None:
            return self._instructions_override
        source = type(self).instructions
        if callable(source):
            return source({**self.inputs, **(inputs or {})})
        return source

    def _with_instructions(self, messages: list[Message]) -> list[Message]:
        text = self.resolve_instructions(self._turn_inputs)
        if not text:
            return messages
        return [Message(role="system", content=text), *messages]

    _turn_inputs: dict[str, Any] | None = None

    async def ask(
        self, content: str | None, *, inputs: dict[str, Any] | None = None, **options: Any
    ) -> Response:
        self._turn_inputs = inputs
        try:
            return await self.chat.ask(content, **options)
        finally:
            self._turn_inputs = None

    async def stream(
        self, content: str | None, *, inputs: dict[str, Any] | None = None, **options: Any
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

    def with_tool(self, tool: Tool | type[Tool]) -> Agent:
        self.chat.with_tool(tool)
        return self

    def with_instructions(self, text: str) -> Agent:
        self._instructions_override = text
        return self
