"""Text every backend can store, and the one rule that makes it so.

PostgreSQL refuses U+0000 in text and in JSONB; no database driver can encode a lone UTF-16
surrogate (U+D800..U+DFFF with no partner) as UTF-8. Both can reach a chat: a user's input, a
model's answer, a tool's arguments or result, metadata. The rule, on every backend: each such
code point becomes U+FFFD (REPLACEMENT CHARACTER) before anything is written, and the in-memory
chat holds the same text, so a chat reads the same after moving between backends and the next
request equals what a reload sends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from ..core.messages import Message, ToolCall

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_search = _UNSTORABLE.search
T = TypeVar("T")


def is_storable(text: str) -> bool:
    """Whether `text` holds no NUL and no lone surrogate. ASCII text (a flag CPython keeps on
    every str: no scan) can hold only NUL, found by a byte search; other text is searched."""
    if text.isascii():
        return "\x00" not in text
    return _search(text) is None


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD (unchanged when clean)."""
    if is_storable(text):
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable(value: T) -> T:
    """`value` with `storable_text` applied to every string in it (dict keys included)."""
    # Scalars, the most frequent values of rows written, leave by exact type before the
    # isinstance tests.
    kind = type(value)
    if value is None or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, str):
        return storable_text(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value


def storable_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A row with `storable` applied to its values; the keys are column names (ours), which
    never need it. Most values are clean text or numbers: tested in place, not walked."""
    return {
        key: value
        if value is None or (type(value) is str and is_storable(value))
        else storable(value)
        for key, value in values.items()
    }


def storable_json(text: str) -> bool:
    """Whether JSON text (as the codec writes it: non-ASCII as is) holds no string that
    `storable` would change: the codec escapes NUL as `\\u0000` and writes a lone surrogate
    as it is, so both show in the text. (A string holding a backslash and `u0000` shows too:
    a false alarm, never a miss.)"""
    return "\\u0000" not in text and is_storable(text)


def storable_message(message: Message) -> Message:
    """The message as it reads back from the database (itself when already clean)."""
    content = message.content
    if not message.tool_calls and type(content) is str and is_storable(content):
        return message  # the common case (plain text, clean), tested without a walk
    content = storable(content)
    calls = [
        ToolCall(
            id=c.id,
            name=storable_text(c.name),
            arguments=storable(c.arguments),
            thought_signature=c.thought_signature,
        )
        for c in message.tool_calls
    ]
    if content == message.content and calls == message.tool_calls:
        return message
    return message.model_copy(update={"content": content, "tool_calls": calls})
