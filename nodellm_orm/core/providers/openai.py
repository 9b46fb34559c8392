"""The OpenAI Chat Completions wire protocol, and the providers that speak it.

OpenRouter, DeepSeek and Ollama accept the same request shape and send the same response and
stream shapes, with small differences this module absorbs in one place: which field caps the
output (`max_completion_tokens` vs `max_tokens`), whether `json_schema` output is available,
where reasoning text arrives (`reasoning_content`, `reasoning`) and how cached tokens and cost
are reported.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from .. import errors
from ..messages import ChatRequest, Message, StreamDelta, ToolCallDelta, ToolSpec, Usage
from ..sse import SSEEvent
from .base import Provider, WireProtocol, event_json, malformed

_TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})
_RAW_KEYS = ("id", "model", "system_fingerprint", "provider")


class OpenAIProtocol(WireProtocol):
    """Chat Completions (`POST {base}/chat/completions`), plain JSON or SSE.

    `max_tokens_field`: OpenAI has deprecated `max_tokens` (reasoning models reject it) in
    favour of `max_completion_tokens`; the compatible servers only know `max_tokens`.
    `json_schema`: False for servers that only offer `{"type": "json_object"}` output, which
    then gets the schema's shape from the prompt rather than from the decoder.
    `extra_body`: keys every request of this provider carries, below `request.params`.
    `provider`: the name put on errors raised from inside a stream.
    """

    def __init__(
        self,
        *,
        max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
        json_schema: bool = True,
        extra_body: dict[str, Any] | None = None,
        provider: str | None = None,
    ) -> None:
        self.max_tokens_field = max_tokens_field
        self.json_schema = json_schema
        self.extra_body = dict(extra_body or {})
        self.provider = provider

    def path(self, request: ChatRequest) -> str:
        return "chat/completions"

    # -- request ------------------------------------------------------------------------------

    def render(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self.render_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [self.render_tool(t) for t in request.tools]
            # OpenAI rejects tool_choice / parallel_tool_calls on a request without tools.
            if request.tool_choice is not None:
                body["tool_choice"] = self.render_tool_choice(request.tool_choice)
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        effort = (request.thinking or {}).get("effort")
        if effort:
            body["reasoning_effort"] = effort
        if request.schema is not None:
            body["response_format"] = self.render_response_format(request.schema)
        if request.stream:
            body["stream"] = True
            # Without this the stream carries no token counts at all.
            body["stream_options"] = {"include_usage": True}
        body.update(self.extra_body)
        body.update(request.params)
        return body

    def render_message(self, message: Message) -> dict[str, Any]:
        if message.role == "tool":
            return {
                "role": "tool",
                "tool_call_id": message.tool_call_id or "",
                "content": message.content or "",
            }
        if message.role == "assistant":
            out: dict[str, Any] = {"role": "assistant"}
            if message.tool_calls:
                # A tool-calling turn with no text is sent as null, the way the API returned it.
                out["content"] = message.content
                out["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in message.tool_calls
                ]
            else:
                out["content"] = message.content or ""
            return out
        out = {"role": message.role, "content": message.content or ""}
        if message.name and message.role == "user":
            out["name"] = message.name
        return out

    @staticmethod
    def render_tool(tool: ToolSpec) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }

    @staticmethod
    def render_tool_choice(choice: str) -> str | dict[str, Any]:
        if choice in _TOOL_CHOICE_MODES:
            return choice
        return {"type": "function", "function": {"name": choice}}

    def render_response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if not self.json_schema:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": schema.get("name") or "response",
                "schema": schema["schema"],
                "strict": True,
            },
        }

    # -- response -----------------------------------------------------------------------------

    def parse_response(self, body: dict[str, Any]) -> list[StreamDelta]:
        if not isinstance(body, dict):
            raise malformed("expected a JSON object", body)
        self._raise_for_error(body)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise malformed("the response has no choices", body)
        choice: dict[str, Any] = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise malformed("the first choice has no message", body)
        finish_reason = choice.get("finish_reason")
        tool_calls = [
            ToolCallDelta(
                index=i,
                id=call.get("id"),
                name=(call.get("function") or {}).get("name"),
                arguments=_arguments_text((call.get("function") or {}).get("arguments")),
            )
            for i, call in enumerate(message.get("tool_calls") or [])
        ]
        usage = body.get("usage")
        return [
            StreamDelta(
                content=message.get("content") or "",
                thinking=_reasoning_text(message),
                tool_calls=tool_calls,
                usage=parse_usage(usage) if isinstance(usage, dict) else None,
                finish_reason=finish_reason,
                model=body.get("model"),
                id=body.get("id"),
                raw=_raw_metadata(body, finish_reason),
            )
        ]

    def parse_event(self, event: SSEEvent, state: dict[str, Any]) -> list[StreamDelta]:
        chunk = event_json(event, self.provider)
        if chunk is None:
            return []
        if not isinstance(chunk, dict):
            raise malformed("expected a JSON object", chunk)
        self._raise_for_error(chunk)
        if not isinstance(chunk.get("choices") or [], list):
            raise malformed("choices is not a list", chunk)

        delta = StreamDelta()
        if not state.get("started"):
            # id and model repeat on every chunk; the first is enough for the accumulator.
            state["started"] = True
            delta.id = chunk.get("id")
            delta.model = chunk.get("model")
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            piece: dict[str, Any] = choice.get("delta") or {}
            delta.content += piece.get("content") or ""
            delta.thinking += _reasoning_text(piece)
            for call in piece.get("tool_calls") or []:
                delta.tool_calls.append(self._tool_call_delta(call, state))
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                delta.finish_reason = finish_reason
                delta.raw = _raw_metadata(chunk, finish_reason)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            delta.usage = parse_usage(usage)

        return [] if delta.is_empty() else [delta]

    @staticmethod
    def _tool_call_delta(call: dict[str, Any], state: dict[str, Any]) -> ToolCallDelta:
        """One streamed piece of a tool call, keyed by the call's slot in the turn.

        OpenAI numbers calls with `index` and gives the id only on a call's first piece. Ollama
        sends each call whole, with its own id, but numbers every one `index: 0` (older
        versions left `index` out), so a new id at an occupied or missing index opens the next
        free slot instead of merging two calls into one.
        """
        slot_of_id: dict[str, int] = state.setdefault("tool_slot_of_id", {})
        slot_of_index: dict[int, int] = state.setdefault("tool_slot_of_index", {})
        call_id = call.get("id") or None
        index = call.get("index")
        wire_index = index if isinstance(index, int) and not isinstance(index, bool) else None
        if call_id is not None:
            slot = slot_of_id.get(call_id)
            if slot is None:
                taken = set(slot_of_id.values())
                if wire_index is not None and wire_index not in taken:
                    slot = wire_index
                else:
                    slot = max(taken, default=-1) + 1
                slot_of_id[call_id] = slot
        elif wire_index is not None:
            slot = slot_of_index.get(wire_index, wire_index)
        else:
            slot = int(state.get("tool_last_slot", 0))
        if wire_index is not None:
            slot_of_index[wire_index] = slot
        state["tool_last_slot"] = slot
        function: dict[str, Any] = call.get("function") or {}
        return ToolCallDelta(
            index=slot,
            id=call_id,
            name=function.get("name") or None,
            arguments=_arguments_text(function.get("arguments")),
        )

    def _raise_for_error(self, body: dict[str, Any]) -> None:
        """A provider may put an error object where a completion or a chunk was expected."""
        err = body.get("error")
        if not err:
            return
        message = self.error_message(body)
        code = err.get("code") if isinstance(err, dict) else None
        status = _status_code(code)
        if status is not None:
            raise errors.error_for_status(status, message, provider=self.provider, body=body)
        raise errors.APIError(message, provider=self.provider, body=body)


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Chat Completions usage, including DeepSeek's cache counters and OpenRouter's cost."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0
    cost = usage.get("cost")
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(cached),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        cost=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
    )


def _reasoning_text(part: dict[str, Any]) -> str:
    # DeepSeek names it reasoning_content, OpenRouter reasoning; a server sends one or the other.
    text = part.get("reasoning_content") or part.get("reasoning")
    return text if isinstance(text, str) else ""


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    # Some compatible servers send the arguments already decoded.
    return json.dumps(arguments, ensure_ascii=False)


def _raw_metadata(body: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    raw = {key: body[key] for key in _RAW_KEYS if body.get(key) is not None}
    if finish_reason is not None:
        raw["finish_reason"] = finish_reason
    return raw


def _status_code(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        status = code
    elif isinstance(code, str) and code.isdigit():
        status = int(code)
    else:
        return None
    return status if 400 <= status <= 599 else None


class OpenAIProvider(Provider):
    name = "openai"
    protocol = OpenAIProtocol(provider="openai")
    default_base_url = "https://api.openai.com/v1"
    default_model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_API_BASE"


class OpenRouterProvider(Provider):
    name = "openrouter"
    # Usage accounting makes OpenRouter return the billed USD cost with the token counts.
    protocol = OpenAIProtocol(
        max_tokens_field="max_tokens",
        extra_body={"usage": {"include": True}},
        provider="openrouter",
    )
    default_base_url = "https://openrouter.ai/api/v1"
    default_model = "openai/gpt-4o-mini"
    api_key_env = "OPENROUTER_API_KEY"


class DeepSeekProvider(Provider):
    name = "deepseek"
    # DeepSeek answers json_schema with a 400; json_object is what it offers.
    protocol = OpenAIProtocol(max_tokens_field="max_tokens", json_schema=False, provider="deepseek")
    default_base_url = "https://api.deepseek.com/v1"
    default_model = "deepseek-chat"
    api_key_env = "DEEPSEEK_API_KEY"


class OllamaProvider(Provider):
    name = "ollama"
    protocol = OpenAIProtocol(max_tokens_field="max_tokens", provider="ollama")
    default_base_url = "http://localhost:11434/v1"
    default_model = "llama3.2"
    api_key_env = None
    base_url_env = "OLLAMA_API_BASE"

    def resolve_base_url(self, url: str) -> str:
        # OLLAMA_API_BASE is commonly the server root (Ollama's own API lives there); the
        # OpenAI-compatible endpoints are under /v1.
        url = url.rstrip("/")
        return url if url.endswith("/v1") else f"{url}/v1"
