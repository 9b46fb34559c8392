"""The Google Gemini wire protocol (`generateContent` / `streamGenerateContent?alt=sse`).

Choices this module makes for the rest of the library:

- Schemas are sent as JSON Schema (`parametersJsonSchema`, `responseJsonSchema`) rather than
  through the older OpenAPI-subset fields (`parameters`, `responseSchema`), which reject keys
  pydantic emits (`additionalProperties`, `$defs`/`$ref`, `title`, ...). Rewriting schemas to
  that subset loses meaning (references must be inlined, unions change shape); the JSON Schema
  fields take the schema as the tool declared it.
- Usage. `promptTokenCount` already includes cached tokens, so it is `input_tokens` as is (plus
  `toolUsePromptTokenCount`), and `cachedContentTokenCount` is `cached_tokens`.
  `candidatesTokenCount` leaves out thinking, which is billed as output: `output_tokens` is
  candidates + thoughts, and `reasoning_tokens` the thoughts alone.
- Function calls carry no id on older API versions. A call without one gets a synthesized id
  (`gemini-call-<responseId>-<n>`, stable for one response) so tool rows and results can be
  matched; synthesized ids are never sent back to the API, real ones are.
- `thoughtSignature` sits on the part that carried it. Signatures of function-call parts are
  required on replay (Gemini 3 rejects history without them) and travel in
  `ToolCall.thought_signature`; signatures on text parts are optional and would be mistaken for
  an Anthropic thinking signature if put in `Thinking.signature`, so they are not kept.
- Gemini has no switch for "one tool call per response"; `parallel_tool_calls` is ignored.
- The finish reason is `tool_calls` when the response holds function calls (Gemini says STOP).
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import errors
from ..messages import ChatRequest, Message, StreamDelta, ToolCallDelta, ToolSpec, Usage
from ..sse import SSEEvent
from .base import Provider, WireProtocol, event_json, malformed

SYNTHETIC_ID_PREFIX = "gemini-call-"
# thinkingBudget for `with_effort` on models that take a budget (2.5); Gemini 3 takes a level.
EFFORT_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
# google.rpc status -> HTTP status, for errors sent inside a stream.
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_PROVIDER = "gemini"


class GeminiProtocol(WireProtocol):
    """Gemini `v1beta` content generation; a stream is a sequence of whole response chunks."""

    def path(self, request: ChatRequest) -> str:
        model = request.model.removeprefix("models/")
        if request.stream:
            return f"models/{model}:streamGenerateContent?alt=sse"
        return f"models/{model}:generateContent"

    # -- request ------------------------------------------------------------------------------

    def render(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"contents": render_contents(request.messages)}
        system = [m.content for m in request.messages if m.role == "system" and m.content]
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [render_tool(t) for t in request.tools]}]
            if request.tool_choice is not None:
                body["toolConfig"] = {
                    "functionCallingConfig": render_tool_choice(request.tool_choice)
                }
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        thinking = render_thinking(request.model, request.thinking)
        if thinking is not None:
            config["thinkingConfig"] = thinking
        if request.schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = request.schema["schema"]
        if config:
            body["generationConfig"] = config
        # One level deep, so params={"generationConfig": {"topK": 5}} adds to what is above.
        for key, value in request.params.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            else:
                body[key] = value
        return body

    # -- response -----------------------------------------------------------------------------

    def parse_response(self, body: dict[str, Any]) -> list[StreamDelta]:
        if not isinstance(body, dict):
            raise malformed("expected a JSON object", body)
        if not isinstance(body.get("error"), dict) and not (
            isinstance(body.get("candidates"), list) or body.get("promptFeedback")
        ):
            # No candidates is a valid answer only when the prompt itself was blocked.
            raise malformed("the response has no candidates", body)
        state: dict[str, Any] = {}
        delta = self._parse_chunk(body, state)
        delta.id = body.get("responseId")
        delta.model = body.get("modelVersion")
        return [delta]

    def parse_event(self, event: SSEEvent, state: dict[str, Any]) -> list[StreamDelta]:
        chunk = event_json(event, _PROVIDER)
        if isinstance(chunk, list):  # an error may arrive wrapped in an array
            chunk = chunk[0] if chunk else {}
        if chunk is None:
            return []
        if not isinstance(chunk, dict):
            raise malformed("expected a JSON object", chunk)
        delta = self._parse_chunk(chunk, state)
        if not state.get("started"):
            # responseId and modelVersion repeat on every chunk; the first is enough.
            state["started"] = True
            delta.id = chunk.get("responseId")
            delta.model = chunk.get("modelVersion")
        return [] if delta.is_empty() else [delta]

    def _parse_chunk(self, chunk: dict[str, Any], state: dict[str, Any]) -> StreamDelta:
        if isinstance(chunk.get("error"), dict):
            raise api_error(chunk)
        delta = StreamDelta()
        candidates = chunk.get("candidates") or []
        candidate: dict[str, Any] = candidates[0] if candidates else {}
        for part in (candidate.get("content") or {}).get("parts") or []:
            call = part.get("functionCall")
            if isinstance(call, dict):
                delta.tool_calls.append(self._tool_call(call, part, chunk, state))
                continue
            text = part.get("text")
            if isinstance(text, str) and text:
                if part.get("thought"):
                    delta.thinking += text
                else:
                    delta.content += text
        reason = candidate.get("finishReason")
        blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
        if reason or blocked:
            delta.finish_reason = finish_reason(reason, int(state.get("tool_count", 0)) > 0)
            if blocked and not reason:
                delta.finish_reason = "content_filter"
            raw = {
                "responseId": chunk.get("responseId"),
                "modelVersion": chunk.get("modelVersion"),
                "finishReason": reason,
                "blockReason": blocked,
            }
            delta.raw = {k: v for k, v in raw.items() if v is not None}
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            delta.usage = parse_usage(usage)
        return delta

    @staticmethod
    def _tool_call(
        call: dict[str, Any], part: dict[str, Any], chunk: dict[str, Any], state: dict[str, Any]
    ) -> ToolCallDelta:
        index = int(state.get("tool_count", 0))
        state["tool_count"] = index + 1
        call_id = call.get("id")
        if not call_id:
            if "response_key" not in state:
                state["response_key"] = chunk.get("responseId") or uuid.uuid4().hex[:16]
            call_id = f"{SYNTHETIC_ID_PREFIX}{state['response_key']}-{index}"
        args = call.get("args")
        return ToolCallDelta(
            index=index,
            id=str(call_id),
            name=call.get("name"),
            arguments_object=dict(args) if isinstance(args, dict) else {},
            thought_signature=part.get("thoughtSignature") or call.get("thoughtSignature"),
        )


# -- rendering helpers ----------------------------------------------------------------------


def render_contents(messages: list[Message]) -> list[dict[str, Any]]:
    """Conversation turns as Gemini `contents`; consecutive same-role turns become one."""
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for results that lack it
    for message in messages:
        parts: list[dict[str, Any]]
        if message.role == "system":
            continue
        if message.role == "tool":
            role = "user"
            call_id = message.tool_call_id or ""
            key = "error" if message.is_error else "output"
            response: dict[str, Any] = {
                "name": message.name or names.get(call_id, ""),
                "response": {key: message.content or ""},
            }
            if call_id and not call_id.startswith(SYNTHETIC_ID_PREFIX):
                response["id"] = call_id
            parts = [{"functionResponse": response}]
        elif message.role == "user":
            role = "user"
            parts = [{"text": message.content}] if message.content else []
        else:
            role = "model"
            parts = [{"text": message.content}] if message.content else []
            for call in message.tool_calls:
                names[call.id] = call.name
                function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
                if not call.id.startswith(SYNTHETIC_ID_PREFIX):
                    function_call["id"] = call.id
                part: dict[str, Any] = {"functionCall": function_call}
                if call.thought_signature:
                    part["thoughtSignature"] = call.thought_signature
                parts.append(part)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


def render_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "parametersJsonSchema": tool.parameters,
    }


def render_tool_choice(choice: str) -> dict[str, Any]:
    mode = _TOOL_MODES.get(choice)
    if mode is not None:
        return {"mode": mode}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def render_thinking(model: str, thinking: dict[str, Any] | None) -> dict[str, Any] | None:
    if not thinking:
        return None
    config: dict[str, Any] = {"includeThoughts": True}
    budget = thinking.get("budget_tokens")
    effort = thinking.get("effort")
    if isinstance(budget, int) and not isinstance(budget, bool):
        config["thinkingBudget"] = budget
    elif isinstance(effort, str) and model.removeprefix("models/").startswith("gemini-3"):
        config["thinkingLevel"] = effort
    elif isinstance(effort, str) and effort in EFFORT_BUDGETS:
        config["thinkingBudget"] = EFFORT_BUDGETS[effort]
    return config


# -- parsing helpers ------------------------------------------------------------------------


def parse_usage(usage: dict[str, Any]) -> Usage:
    thoughts = int(usage.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(usage.get("promptTokenCount") or 0)
        + int(usage.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(usage.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(usage.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def finish_reason(reason: str | None, has_tool_calls: bool) -> str | None:
    if reason is None:
        return None
    if has_tool_calls and reason == "STOP":
        return "tool_calls"
    return _FINISH_REASONS.get(reason, reason.lower())


def api_error(body: dict[str, Any]) -> errors.APIError:
    err: dict[str, Any] = body.get("error") or {}
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else None
    if status is None:
        status = _STATUS_CODES.get(str(err.get("status")), 500)
    message = str(err.get("message") or err.get("status") or "request failed")
    return errors.error_for_status(status, message, provider=_PROVIDER, body=body)


def _is_invalid_key(body: Any) -> bool:
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    details = body["error"].get("details") or []
    return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details)


class GeminiProvider(Provider):
    name = "gemini"
    protocol = GeminiProtocol()
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    default_model = "gemini-2.5-flash"
    api_key_env = "GEMINI_API_KEY"
    base_url_env = "GEMINI_API_BASE"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    def map_error(self, error: errors.APIError) -> errors.APIError:
        # A wrong key is a 400 INVALID_ARGUMENT here, yet it is an authentication problem.
        if isinstance(error, errors.BadRequestError) and _is_invalid_key(error.body):
            return errors.AuthenticationError(
                error.message, provider=self.name, status_code=error.status_code, body=error.body
            )
        return error
