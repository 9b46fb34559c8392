"""The values that travel between the chat, the providers and the ORM.

Everything here is provider-neutral: a provider's wire protocol translates these to and from
its own JSON, and nothing above the providers ever sees a wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant", "tool"]


class Usage(BaseModel):
    """Token counts of one response (or a sum of them) and what they cost in USD."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    input_cost: float | None = None
    output_cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        def add(a: float | None, b: float | None) -> float | None:
            if a is None and b is None:
                return None
            return (a or 0.0) + (b or 0.0)

        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost=add(self.cost, other.cost),
            input_cost=add(self.input_cost, other.input_cost),
            output_cost=add(self.output_cost, other.output_cost),
        )


class Thinking(BaseModel):
    """A model's reasoning, as far as the provider reveals it.

    `signature` is opaque provider data (Anthropic's thinking signature) that must be sent back
    unchanged when the assistant message is replayed.
    """

    text: str | None = None
    signature: str | None = None
    tokens: int | None = None


class ToolCall(BaseModel):
    """A tool invocation requested by the model. `arguments` is always a decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # Gemini attaches a thoughtSignature to function calls; it must be replayed as received.
    thought_signature: str | None = None


class Message(BaseModel):
    """One entry of a conversation, in the shape every provider protocol renders from.

    - system/user: `content`.
    - assistant: `content` and/or `tool_calls`, optionally `thinking` (replayed to providers
      that require it, e.g. Anthropic with extended thinking).
    - tool: `content` is the result text, `tool_call_id` and `name` say which call it answers.
    """

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    thinking: Thinking | None = None
    is_error: bool = False


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a tool call as a stream delivers it; `index` says which call it extends."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    # A complete, already-decoded argument object (providers like Gemini send whole calls).
    arguments_object: dict[str, Any] | None = None
    thought_signature: str | None = None


@dataclass(slots=True)
class StreamDelta:
    """What a wire protocol extracts from one SSE event or one whole response body.

    The accumulator folds a sequence of these into a Response; `ask` and `stream` both go
    through it. `usage`, when set, replaces any earlier usage (protocols emit cumulative usage).
    """

    content: str = ""
    thinking: str = ""
    thinking_signature: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    id: str | None = None
    raw: dict[str, Any] | None = None

    def is_empty(self) -> bool:
        """True when the delta carries nothing the accumulator would keep."""
        return not (
            self.content
            or self.thinking
            or self.tool_calls
            or self.usage
            or self.finish_reason
            or self.id
            or self.model
        )


class ChatChunk(BaseModel):
    """What `stream` yields: text and thinking deltas, finished tool calls, final usage.

    `str(chunk)` is its text. The last chunk of a turn has `done=True` and carries the usage of
    the whole turn.
    """

    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    done: bool = False

    def __str__(self) -> str:
        return self.content


class Response(BaseModel):
    """One assistant answer: the result of `ask`, or of a finished stream."""

    content: str = ""
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    provider: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    thinking: Thinking | None = None
    finish_reason: str | None = None
    # The whole call the caller waited for: first attempt to last delta, retries included.
    # Each attempt's own time is RequestMetrics.duration_ms.
    latency_ms: int = 0
    status_code: int = 200
    id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
    # Parsed structured output when the chat has a schema.
    parsed: Any = None

    def __str__(self) -> str:
        return self.content

    def to_message(self) -> Message:
        return Message(
            role="assistant",
            content=self.content or None,
            tool_calls=list(self.tool_calls),
            thinking=self.thinking,
        )


@dataclass(slots=True)
class ToolSpec:
    """A tool as providers see it: a name, a description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    """Everything a provider needs for one round trip, provider-neutral."""

    model: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    # {"budget_tokens": int} and/or {"effort": "low" | "medium" | "high"}; None = off.
    thinking: dict[str, Any] | None = None
    # "auto" | "none" | "required" | a tool name
    tool_choice: str | None = None
    # False asks the provider for at most one tool call per response.
    parallel_tool_calls: bool | None = None
    # {"name": str, "schema": JSON schema} for structured output.
    schema: dict[str, Any] | None = None
    # Extra top-level body keys, merged last (provider-specific knobs).
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    # Seconds for this request; None uses the provider's (create_llm's) timeout.
    timeout: float | None = None
