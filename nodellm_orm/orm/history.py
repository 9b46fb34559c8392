"""Stored rows <-> core messages, at full fidelity.

This is the one place that knows how a turn is stored and replayed:

- A turn is one user row and one assistant row. The assistant row holds the final text; the
  tool calls of every round of the turn are `LlmToolCall` rows attached to it (arguments as JSON
  text, the result once the tool ended).
- `contentRaw` is JSON metadata of the response: id, model, finish reason, usage, latency, and,
  when tools ran, `rounds`: for each round, the text said before calling tools, the ids of the
  calls made, and the thinking (with signature) that must be replayed with them.
- A turn that did not finish carries `"interrupted": true` and a `reason` in contentRaw. The
  placeholder written at the start of a turn is born so marked (content "", never NULL), so a
  process killed mid-turn leaves a row that says exactly what happened.

Replay turns rows back into the messages a provider needs: system, user, assistant with its
tool calls, one tool message per result, then the final assistant text. Rows written by the JS
original (no `rounds`) replay as one tool round followed by the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..core import jsoncodec
from ..core.chat import NO_RESULT
from ..core.jsoncodec import decode_arguments
from ..core.jsoncodec import decode_object as decode_raw
from ..core.messages import Message, Response, Thinking, ToolCall, Usage
from ..model import MessageRecord, ToolCallRecord
from .text import storable, storable_json

PLACEHOLDER_RAW = json.dumps({"interrupted": True, "reason": "incomplete"})
# How long a placeholder may belong to a turn still in flight (tool loops can be long).
PENDING_FOR = timedelta(minutes=15)
# How far before the newest row a chat holds another writer's row may still land: rows are
# stamped when a turn starts, and the INSERT can wait (pool, locks, clock skew between hosts).
# Each turn counts the rows of this window, so a late one is noticed, not skipped.
LATE_WINDOW = timedelta(minutes=2)


def is_pending(row: MessageRecord, now: datetime) -> bool:
    """A placeholder whose turn is probably still running in another process or object.

    A placeholder older than PENDING_FOR is taken for a turn whose process died: it stays
    as the interrupted row it was born as, and nobody waits for it.
    """
    return (
        row.role == "assistant"
        and not row.content
        and row.contentRaw == PLACEHOLDER_RAW
        and row.createdAt is not None
        and now - row.createdAt < PENDING_FOR
    )


def encode_json(value: Any) -> str:
    """JSON text for a TEXT column (contentRaw, tool-call arguments): the codec's lenient mode
    over the storable-text rule (orm.text)."""
    text = jsoncodec.encode(value)
    if storable_json(text):  # the common case: one look at the text instead of a walk
        return text
    return jsoncodec.encode(storable(value))


def describe_error(error: BaseException) -> str:
    """An error as a row keeps it: type and first line (drivers append SQL and parameters)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]


def round_of(response: Response) -> dict[str, Any]:
    """What `rounds` keeps of a response that called tools."""
    entry: dict[str, Any] = {"toolCallIds": [call.id for call in response.tool_calls]}
    if response.content:
        entry["content"] = response.content
    if response.thinking and (response.thinking.text or response.thinking.signature):
        entry["thinking"] = {
            "text": response.thinking.text,
            "signature": response.thinking.signature,
        }
    return entry


def usage_json(usage: Usage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
    }
    if usage.cached_tokens:
        data["cachedTokens"] = usage.cached_tokens
    if usage.reasoning_tokens:
        data["reasoningTokens"] = usage.reasoning_tokens
    if usage.cost is not None:
        data["cost"] = usage.cost
    return data


def assistant_values(
    response: Response | None,
    *,
    usage: Usage,
    rounds: list[dict[str, Any]],
    content: str,
    interrupted: str | None = None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """The assistant row's columns once a turn ended (finished, or interrupted)."""
    raw: dict[str, Any] = {}
    if response is not None:
        if response.id:
            raw["id"] = response.id
        raw["model"] = response.model
        raw["provider"] = response.provider
        if response.finish_reason:
            raw["finishReason"] = response.finish_reason
        raw["latencyMs"] = response.latency_ms
        if response.raw:
            raw["metadata"] = response.raw
    raw["usage"] = usage_json(usage)
    if rounds:
        raw["rounds"] = rounds
    if interrupted:
        raw["interrupted"] = True
        raw["reason"] = interrupted
        if error is not None:
            raw["error"] = describe_error(error)
    values: dict[str, Any] = {
        "content": content,
        "contentRaw": encode_json(raw),
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
    }
    thinking = response.thinking if response is not None and not interrupted else None
    if thinking is not None:
        values["thinkingText"] = thinking.text
        values["thinkingSignature"] = thinking.signature
        values["thinkingTokens"] = thinking.tokens or usage.reasoning_tokens or None
    elif usage.reasoning_tokens:
        values["thinkingTokens"] = usage.reasoning_tokens
    if response is not None:
        values["modelId"] = response.model
        values["provider"] = response.provider
    return values


def group_tool_calls(calls: Iterable[ToolCallRecord]) -> dict[str, list[ToolCallRecord]]:
    grouped: dict[str, list[ToolCallRecord]] = {}
    for call in calls:
        grouped.setdefault(call.messageId, []).append(call)
    return grouped


def replay(
    rows: Sequence[MessageRecord], tool_calls: Mapping[str, Sequence[ToolCallRecord]]
) -> list[Message]:
    """The core messages that reproduce `rows` for a provider."""
    messages: list[Message] = []
    for row in rows:
        if row.role == "assistant":
            messages.extend(replay_assistant(row, tool_calls.get(row.id, ())))
        elif row.role == "tool":
            messages.append(Message(role="tool", content=row.content or ""))
        elif row.role in ("user", "system"):
            messages.append(Message(role=row.role, content=row.content or ""))
    return messages


def replay_assistant(row: MessageRecord, calls: Sequence[ToolCallRecord]) -> list[Message]:
    raw = decode_raw(row.contentRaw)
    by_id = {call.toolCallId: call for call in calls}
    rounds: list[dict[str, Any]] | None = raw.get("rounds")
    if rounds is None and calls:
        rounds = [{"toolCallIds": [call.toolCallId for call in calls]}]
    out: list[Message] = []
    for entry in rounds or ():
        stored = [by_id[i] for i in entry.get("toolCallIds", ()) if i in by_id]
        if not stored:
            continue
        thinking = entry.get("thinking")
        out.append(
            Message(
                role="assistant",
                content=entry.get("content") or None,
                tool_calls=[
                    ToolCall(
                        id=call.toolCallId,
                        name=call.name,
                        arguments=decode_arguments(call.arguments),
                        thought_signature=call.thoughtSignature,
                    )
                    for call in stored
                ],
                thinking=Thinking(**thinking) if thinking else None,
            )
        )
        out.extend(
            Message(
                role="tool",
                content=call.result if call.result is not None else NO_RESULT,
                tool_call_id=call.toolCallId,
                name=call.name,
            )
            for call in stored
        )
    if row.content:
        thinking = None
        if row.thinkingText or row.thinkingSignature:
            thinking = Thinking(
                text=row.thinkingText, signature=row.thinkingSignature, tokens=row.thinkingTokens
            )
        out.append(Message(role="assistant", content=row.content, thinking=thinking))
    return out
