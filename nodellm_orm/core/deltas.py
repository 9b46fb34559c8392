"""What every provider's deltas pass through before a chat folds them (`Provider.open`).

- Text is made encodable. JSON escapes a character outside the BMP as a surrogate pair, and a
  provider may cut the pair between two events (`"\\ud83d"`, then `"\\ude00"`): each is valid
  JSON, and Python keeps each half as a lone surrogate that UTF-8 cannot encode (the next
  request, or the database, then fails). A trailing high surrogate of a text channel (content,
  thinking, each tool call's arguments) is held back until the next piece of that channel;
  adjacent halves are joined into the real character; a half that stays alone becomes U+FFFD.
- Shapes are checked: a protocol that mis-read a body (a list where text belongs) raises a
  `ResponseFormatError` here, as a round trip that failed, instead of a pydantic or type error
  later in the chat.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from typing import Any

from . import errors
from .messages import StreamDelta, ToolCallDelta, Usage

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH = ("\ud800", "\udbff")


def _has_surrogate(text: str) -> bool:
    # ASCII text holds none; CPython keeps that as a flag on every str, so it costs no scan
    # (most text a model streams is ASCII; the search is a regex call per piece).
    return not text.isascii() and _SURROGATE.search(text) is not None


def repair_text(text: str) -> str:
    """`text` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if not _has_surrogate(text):
        return text
    # UTF-16 round trip: a pair of halves encodes to one valid code unit pair and decodes to
    # the character it stands for; a lone half is invalid UTF-16 and decodes to U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repair_value(value: Any) -> Any:
    """`repair_text` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        return {repair_value(k): repair_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_value(v) for v in value]
    return value


def _is_high(char: str) -> bool:
    return _HIGH[0] <= char <= _HIGH[1]


class _Joiner:
    """Per-channel hold-back of a trailing high surrogate, across the deltas of one stream."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: dict[str | int, str] = {}

    def text(self, channel: str | int, piece: str) -> str:
        held = self.held.pop(channel, "")
        if not held and not _has_surrogate(piece):
            return piece
        text = held + piece
        if text and _is_high(text[-1]):
            self.held[channel] = text[-1]
            text = text[:-1]
        return repair_text(text)

    def delta(self, delta: StreamDelta) -> StreamDelta:
        if not self.held and not delta.tool_calls and not delta.raw:
            text = delta.content + delta.thinking
            others = (delta.thinking_signature, delta.finish_reason, delta.model, delta.id)
            if not _has_surrogate(text) and not any(
                s is not None and _has_surrogate(s) for s in others
            ):
                return delta
        delta.content = self.text("content", delta.content)
        delta.thinking = self.text("thinking", delta.thinking)
        for call in delta.tool_calls:
            call.arguments = self.text(call.index, call.arguments)
            if call.arguments_object is not None:
                call.arguments_object = repair_value(call.arguments_object)
            call.id = _repair_optional(call.id)
            call.name = _repair_optional(call.name)
        delta.thinking_signature = _repair_optional(delta.thinking_signature)
        delta.finish_reason = _repair_optional(delta.finish_reason)
        delta.model = _repair_optional(delta.model)
        delta.id = _repair_optional(delta.id)
        if delta.raw:
            delta.raw = repair_value(delta.raw)
        return delta

    def flush(self) -> StreamDelta | None:
        """A delta carrying U+FFFD for each half still held when the stream ended."""
        if not self.held:
            return None
        delta = StreamDelta()
        for channel in self.held:
            if channel == "content":
                delta.content = REPLACEMENT
            elif channel == "thinking":
                delta.thinking = REPLACEMENT
            else:
                assert isinstance(channel, int)
                delta.tool_calls.append(ToolCallDelta(index=channel, arguments=REPLACEMENT))
        self.held.clear()
        return delta


def _repair_optional(text: str | None) -> str | None:
    return None if text is None else repair_text(text)


def _well_typed(delta: Any) -> bool:
    """The fast path of `_check` (it runs for every delta): exact types, no error to build."""
    return (
        type(delta) is StreamDelta
        and type(delta.content) is str
        and type(delta.thinking) is str
        and (delta.thinking_signature is None or type(delta.thinking_signature) is str)
        and (delta.finish_reason is None or type(delta.finish_reason) is str)
        and (delta.model is None or type(delta.model) is str)
        and (delta.id is None or type(delta.id) is str)
        and (delta.raw is None or type(delta.raw) is dict)
        and (delta.usage is None or type(delta.usage) is Usage)
        and type(delta.tool_calls) is list
        and (
            not delta.tool_calls
            or all(
                type(call) is ToolCallDelta
                and type(call.index) is int
                and type(call.arguments) is str
                and (call.id is None or type(call.id) is str)
                and (call.name is None or type(call.name) is str)
                and (call.arguments_object is None or type(call.arguments_object) is dict)
                and (call.thought_signature is None or type(call.thought_signature) is str)
                for call in delta.tool_calls
            )
        )
    )


def _check(delta: Any) -> None:
    """Raise ResponseFormatError unless `delta` is a StreamDelta with fields of their types."""
    if not isinstance(delta, StreamDelta):
        raise errors.ResponseFormatError(f"expected a stream delta, got {type(delta).__name__}")
    wrong = [
        name
        for name, value, kinds in (
            ("content", delta.content, (str,)),
            ("thinking", delta.thinking, (str,)),
            ("thinking_signature", delta.thinking_signature, (str, type(None))),
            ("finish_reason", delta.finish_reason, (str, type(None))),
            ("model", delta.model, (str, type(None))),
            ("id", delta.id, (str, type(None))),
            ("raw", delta.raw, (dict, type(None))),
            ("usage", delta.usage, (Usage, type(None))),
            ("tool_calls", delta.tool_calls, (list,)),
        )
        if not isinstance(value, kinds)
    ]
    for call in delta.tool_calls if isinstance(delta.tool_calls, list) else ():
        if not isinstance(call, ToolCallDelta):
            wrong.append("tool_calls[]")
            continue
        wrong.extend(
            f"tool call {name}"
            for name, value, kinds in (
                ("index", call.index, (int,)),
                ("id", call.id, (str, type(None))),
                ("name", call.name, (str, type(None))),
                ("arguments", call.arguments, (str,)),
                ("arguments", call.arguments_object, (dict, type(None))),
                ("thought_signature", call.thought_signature, (str, type(None))),
            )
            if not isinstance(value, kinds) or isinstance(value, bool)
        )
    if wrong:
        fields = ", ".join(dict.fromkeys(wrong))
        raise errors.ResponseFormatError(f"the response has fields of the wrong type: {fields}")


async def normalized(
    deltas: AsyncGenerator[StreamDelta, None],
    on_error: Callable[[errors.LLMError], None],
) -> AsyncGenerator[StreamDelta, None]:
    """`deltas`, checked and with encodable text (see the module docstring).

    `on_error` sees an LLMError the stream raises before it propagates (the provider times,
    completes and redacts it there), so one generator layer does all of it.
    """
    joiner = _Joiner()
    try:
        async for delta in deltas:
            if not _well_typed(delta):
                _check(delta)
            yield joiner.delta(delta)
        tail = joiner.flush()
        if tail is not None:
            yield tail
    except errors.LLMError as error:
        on_error(error)
        raise
    finally:
        await deltas.aclose()
