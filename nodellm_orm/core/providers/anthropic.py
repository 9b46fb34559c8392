"""The Anthropic Messages wire protocol (`POST {base}/messages`) and its provider.

Choices this module makes for the rest of the library:

- Usage. Anthropic's `input_tokens` counts only the uncached part of the prompt; cache reads and
  cache writes are reported beside it. `Usage.input_tokens` is the whole prompt here (uncached
  + cache reads + cache writes) and `cached_tokens` the cache reads, which is what Chat
  Completions' `prompt_tokens` / `cached_tokens` mean, so one price formula fits every provider.
- Structured output goes through a tool, `structured_output`, whose `input_schema` is the
  requested schema. The API decodes tool input against the schema, which an instruction in the
  prompt cannot promise, and it needs no beta header. The tool's input comes back as the
  response *text* (JSON), so callers parse `content` as with every other provider and the tool
  loop never sees the synthetic call. The tool is forced with `tool_choice` when the API allows
  it; with thinking on (forced tool use is rejected then) or with the user's own tools (forcing
  would block them) it is offered and the system prompt asks for it.
- Roles must alternate, so consecutive tool results, and a tool result followed by user text,
  are merged into one user message; empty texts and empty assistant turns, which the API
  rejects, are left out.
- With thinking enabled the API only accepts the default temperature, so `temperature` is not
  sent then.
"""

from __future__ import annotations

import json
from typing import Any

from .. import errors
from ..messages import ChatRequest, Message, StreamDelta, ToolCallDelta, ToolSpec, Usage
from ..sse import SSEEvent
from .base import Provider, WireProtocol, event_json, malformed

API_VERSION = "2023-06-01"
# The API requires max_tokens on every request; this is the cap when the caller sets none.
DEFAULT_MAX_TOKENS = 4096
SCHEMA_TOOL = "structured_output"
# Thinking budgets for `with_effort`; the API's minimum budget is 1024.
EFFORT_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# error.type -> the HTTP status the API pairs it with; used for errors sent inside a stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_PROVIDER = "anthropic"


class AnthropicProtocol(WireProtocol):
    """Anthropic Messages, plain JSON or SSE (`event:` + `data:` pairs)."""

    def path(self, request: ChatRequest) -> str:
        return "messages"

    # -- request ------------------------------------------------------------------------------

    def render(self, request: ChatRequest) -> dict[str, Any]:
        budget = thinking_budget(request.thinking)
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        if budget is not None and request.max_tokens is None and max_tokens <= budget:
            # The budget is part of max_tokens; leave room for the answer itself.
            max_tokens = budget + DEFAULT_MAX_TOKENS
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": max_tokens,
            "messages": render_messages(request.messages),
        }
        system = [m.content for m in request.messages if m.role == "system" and m.content]

        tools = [render_tool(t) for t in request.tools]
        tool_choice: dict[str, Any] | None = (
            render_tool_choice(request.tool_choice) if request.tool_choice else None
        )
        if request.schema is not None:
            tools.append(
                {
                    "name": SCHEMA_TOOL,
                    "description": "Give the final answer as an object of this schema.",
                    "input_schema": request.schema["schema"],
                }
            )
            if not request.tools and budget is None:
                tool_choice = {"type": "tool", "name": SCHEMA_TOOL}
            else:
                system.append(f"Give your final answer by calling the {SCHEMA_TOOL} tool.")
        if tools:
            body["tools"] = tools
            if request.parallel_tool_calls is False:
                tool_choice = tool_choice or {"type": "auto"}
                if tool_choice["type"] != "none":
                    tool_choice["disable_parallel_tool_use"] = True
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None and budget is None:
            body["temperature"] = request.temperature
        if budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if request.stream:
            body["stream"] = True
        body.update(request.params)
        return body

    # -- response -----------------------------------------------------------------------------

    def parse_response(self, body: dict[str, Any]) -> list[StreamDelta]:
        if not isinstance(body, dict):
            raise malformed("expected a JSON object", body)
        if body.get("type") == "error":
            raise stream_error(body)
        content = body.get("content")
        if not isinstance(content, list):
            raise malformed("the response has no content list", body)
        delta = StreamDelta(id=body.get("id"), model=body.get("model"))
        signature: str | None = None
        for block in content:
            kind = block.get("type")
            if kind == "text":
                delta.content += block.get("text") or ""
            elif kind == "thinking":
                delta.thinking += block.get("thinking") or ""
                signature = block.get("signature") or signature
            elif kind == "tool_use" and block.get("name") == SCHEMA_TOOL:
                delta.content += json.dumps(block.get("input") or {}, ensure_ascii=False)
            elif kind == "tool_use":
                delta.tool_calls.append(
                    ToolCallDelta(
                        index=len(delta.tool_calls),
                        id=block.get("id"),
                        name=block.get("name"),
                        arguments_object=dict(block.get("input") or {}),
                    )
                )
        delta.thinking_signature = signature
        usage = body.get("usage")
        if isinstance(usage, dict):
            delta.usage = parse_usage(usage)
        stop_reason = body.get("stop_reason")
        delta.finish_reason = finish_reason(stop_reason, bool(delta.tool_calls))
        delta.raw = _raw(body.get("id"), body.get("model"), stop_reason)
        return [delta]

    def parse_event(self, event: SSEEvent, state: dict[str, Any]) -> list[StreamDelta]:
        payload = event_json(event, _PROVIDER)
        if payload is None:
            return []
        if not isinstance(payload, dict):
            raise malformed("expected a JSON object", payload)
        kind = payload.get("type") or event.event
        if kind == "error":
            raise stream_error(payload)
        if kind == "message_start":
            return [self._message_start(payload, state)]
        if kind == "content_block_start":
            return self._block_start(payload, state)
        if kind == "content_block_delta":
            return self._block_delta(payload, state)
        if kind == "content_block_stop":
            return self._block_stop(payload, state)
        if kind == "message_delta":
            return [self._message_delta(payload, state)]
        # ping, message_stop and event types added later carry nothing we use.
        return []

    @staticmethod
    def _message_start(payload: dict[str, Any], state: dict[str, Any]) -> StreamDelta:
        message: dict[str, Any] = payload.get("message") or {}
        usage: dict[str, Any] = dict(message.get("usage") or {})
        state["id"] = message.get("id")
        state["model"] = message.get("model")
        state["usage"] = usage
        # Usage now already: a stream that breaks later still accounts for its input.
        return StreamDelta(id=state["id"], model=state["model"], usage=parse_usage(usage))

    @staticmethod
    def _block_start(payload: dict[str, Any], state: dict[str, Any]) -> list[StreamDelta]:
        blocks: dict[int, dict[str, Any]] = state.setdefault("blocks", {})
        index = int(payload.get("index", 0))
        block: dict[str, Any] = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use" and block.get("name") == SCHEMA_TOOL:
            blocks[index] = {"kind": "schema"}
            return []
        if kind == "tool_use":
            tool_index = int(state.get("tool_count", 0))
            state["tool_count"] = tool_index + 1
            blocks[index] = {"kind": "tool", "tool_index": tool_index, "has_input": False}
            call = ToolCallDelta(index=tool_index, id=block.get("id"), name=block.get("name"))
            return [StreamDelta(tool_calls=[call])]
        blocks[index] = {"kind": kind}
        if kind == "text" and block.get("text"):
            return [StreamDelta(content=block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [StreamDelta(thinking=block["thinking"])]
        return []

    @staticmethod
    def _block_delta(payload: dict[str, Any], state: dict[str, Any]) -> list[StreamDelta]:
        block = state.setdefault("blocks", {}).get(int(payload.get("index", 0)), {})
        piece: dict[str, Any] = payload.get("delta") or {}
        kind = piece.get("type")
        if kind == "text_delta" and piece.get("text"):
            return [StreamDelta(content=piece["text"])]
        if kind == "thinking_delta" and piece.get("thinking"):
            return [StreamDelta(thinking=piece["thinking"])]
        if kind == "signature_delta" and piece.get("signature"):
            return [StreamDelta(thinking_signature=piece["signature"])]
        if kind == "input_json_delta" and piece.get("partial_json"):
            fragment: str = piece["partial_json"]
            if block.get("kind") == "schema":
                return [StreamDelta(content=fragment)]
            if block.get("kind") == "tool":
                block["has_input"] = True
                call = ToolCallDelta(index=block["tool_index"], arguments=fragment)
                return [StreamDelta(tool_calls=[call])]
        return []

    @staticmethod
    def _block_stop(payload: dict[str, Any], state: dict[str, Any]) -> list[StreamDelta]:
        block = state.setdefault("blocks", {}).get(int(payload.get("index", 0)), {})
        if block.get("kind") == "tool" and not block.get("has_input"):
            # A call without arguments streams no input at all; say "{}" so it still decodes.
            call = ToolCallDelta(index=block["tool_index"], arguments="{}")
            return [StreamDelta(tool_calls=[call])]
        return []

    @staticmethod
    def _message_delta(payload: dict[str, Any], state: dict[str, Any]) -> StreamDelta:
        usage: dict[str, Any] = state.setdefault("usage", {})
        # message_delta repeats the counters cumulatively (output always, input on newer API
        # versions); what it leaves out still holds from message_start.
        usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
        stop_reason = (payload.get("delta") or {}).get("stop_reason")
        return StreamDelta(
            usage=parse_usage(usage),
            finish_reason=finish_reason(stop_reason, int(state.get("tool_count", 0)) > 0),
            raw=_raw(state.get("id"), state.get("model"), stop_reason),
        )


# -- rendering helpers ----------------------------------------------------------------------


def render_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Conversation messages in Anthropic's shape, with roles strictly alternating."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
            }
            if message.content:
                result["content"] = message.content
            if message.is_error:
                result["is_error"] = True
            _append(out, "user", [result])
        elif message.role == "user":
            if message.content:
                _append(out, "user", message.content)
        else:
            blocks = _assistant_blocks(message)
            if blocks:
                _append(out, "assistant", blocks)
    return out


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    thinking = message.thinking
    # The API verifies the signature against the text, so only a signed block is replayed.
    if thinking is not None and thinking.signature:
        blocks.append(
            {"type": "thinking", "thinking": thinking.text or "", "signature": thinking.signature}
        )
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks


def _append(out: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    if out and out[-1]["role"] == role:
        out[-1]["content"] = _as_blocks(out[-1]["content"]) + _as_blocks(content)
    else:
        out.append({"role": role, "content": content})


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def render_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def render_tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice in ("required", "any"):
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return {"type": "tool", "name": choice}


def thinking_budget(thinking: dict[str, Any] | None) -> int | None:
    """Budget tokens for `{"budget_tokens": N}` or `{"effort": level}`; None = thinking off."""
    if not thinking:
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        return max(budget, EFFORT_BUDGETS["low"])
    effort = thinking.get("effort")
    if isinstance(effort, str) and effort in EFFORT_BUDGETS:
        return EFFORT_BUDGETS[effort]
    return None


# -- parsing helpers ------------------------------------------------------------------------


def parse_usage(usage: dict[str, Any]) -> Usage:
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=cache_read,
    )


def finish_reason(stop_reason: str | None, has_tool_calls: bool) -> str | None:
    """Anthropic's stop_reason in the neutral vocabulary (stop, length, tool_calls, ...)."""
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and not has_tool_calls:
        # Only the structured-output tool was called: the turn ends with its JSON as text.
        return "stop"
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def stream_error(payload: dict[str, Any]) -> errors.APIError:
    err: dict[str, Any] = payload.get("error") or {}
    kind = str(err.get("type") or "api_error")
    message = str(err.get("message") or kind)
    status = _ERROR_STATUS.get(kind, 500)
    return errors.error_for_status(status, message, provider=_PROVIDER, body=payload)


def _raw(message_id: Any, model: Any, stop_reason: Any) -> dict[str, Any]:
    raw = {"id": message_id, "model": model, "stop_reason": stop_reason}
    return {k: v for k, v in raw.items() if v is not None}


class AnthropicProvider(Provider):
    name = "anthropic"
    protocol = AnthropicProtocol()
    default_base_url = "https://api.anthropic.com/v1"
    default_model = "claude-sonnet-4-5"
    api_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_API_BASE"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers
