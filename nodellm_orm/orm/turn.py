"""One turn's writes, and nothing else writes during a turn.

A turn costs these statements (each a Store call):
1. `begin_turn`: the user row and the assistant placeholder in one INSERT, which also counts
   the messages written after the chat's cursor by someone else (noticed for free);
2. per tool round: one INSERT of the round's tool-call rows when they start, one UPDATE with
   their results when they end;
3. `finish_turn`: the assistant row's final values and every request row of the turn, in one
   transaction.
A plain turn is 3 statements, a turn with one tool round 5.

The recorder hooks into the core chat through its callback lists (never by subclassing): the
core chat reports each provider round trip, each finished response and each tool round, and the
recorder turns them into rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.chat import Chat as CoreChat
from ..core.chat import RequestMetrics, ToolOutcome
from ..core.messages import ChatChunk, Message, Response, ToolCall, Usage
from ..core.middleware import MiddlewareStopError
from ..stores.base import Cursor, Row, Store
from .history import PLACEHOLDER_RAW, assistant_values, encode_json, round_of
from .ids import new_id, utc_now
from .options import Persistence
from .records import MessageRecord


class Turn:
    """The state of the turn in flight: its rows' ids and what it produced so far."""

    __slots__ = (
        "chat_id",
        "message_id",
        "partial",
        "placeholder",
        "requests",
        "responses",
        "rounds",
        "tool_rows",
        "user",
    )

    def __init__(self, chat_id: str, user: Row, placeholder: Row) -> None:
        self.chat_id = chat_id
        self.user = user
        self.placeholder = placeholder
        self.message_id: str = placeholder["id"]
        self.requests: list[Row] = []
        self.responses: list[Response] = []
        self.rounds: list[dict[str, Any]] = []
        # toolCallId -> row id, for the round in flight.
        self.tool_rows: dict[str, str] = {}
        self.partial: list[str] = []

    @property
    def usage(self) -> Usage:
        total = Usage()
        for response in self.responses:
            total = total + response.usage
        return total


class TurnRecorder:
    """Writes a chat's turns through the Store; attached once to the core chat."""

    def __init__(self, store: Store, chat_id: str, persistence: Persistence) -> None:
        self.store = store
        self.chat_id = chat_id
        self.persistence = persistence
        self.turn: Turn | None = None

    def attach(self, core: CoreChat) -> None:
        core.request_hooks.append(self._on_request)
        core.response_hooks.append(self._on_end_message)
        core.tool_round_start_hooks.append(self._on_tool_round_start)
        core.tool_round_end_hooks.append(self._on_tool_round_end)

    def new_turn(self, content: str, *, model: str, provider: str) -> Turn:
        now = utc_now()
        user = {
            "id": new_id(),
            "chatId": self.chat_id,
            "role": "user",
            "content": content,
            "createdAt": now,
        }
        placeholder = {
            "id": new_id(),
            "chatId": self.chat_id,
            "role": "assistant",
            "content": "",
            "contentRaw": PLACEHOLDER_RAW,
            "modelId": model,
            "provider": provider,
            "createdAt": now,
        }
        self.turn = Turn(self.chat_id, user, placeholder)
        return self.turn

    async def begin(self, turn: Turn, after: Cursor | None, known: int) -> int:
        """Write the user row and the placeholder; returns how many rows others added."""
        rows = [turn.user, turn.placeholder]
        return await self.store.begin_turn(self.chat_id, rows, after=after, known=known)

    # ---- hooks from the core chat --------------------------------------------------------

    def on_chunk(self, chunk: ChatChunk) -> None:
        if self.turn is not None and chunk.content:
            self.turn.partial.append(chunk.content)

    async def _on_request(self, metrics: RequestMetrics) -> None:
        turn = self.turn
        if turn is None or not self.persistence.requests:
            return
        turn.requests.append(
            {
                "id": new_id(),
                "chatId": self.chat_id,
                "messageId": turn.message_id,
                "provider": metrics.provider,
                "model": metrics.model,
                "statusCode": metrics.status_code,
                "duration": metrics.duration_ms,
                "inputTokens": metrics.usage.input_tokens,
                "outputTokens": metrics.usage.output_tokens,
                "cost": metrics.usage.cost,
                "correctionRounds": metrics.correction_rounds,
                "createdAt": utc_now(),
            }
        )

    async def _on_end_message(self, response: Response) -> None:
        turn = self.turn
        if turn is None:
            return
        turn.responses.append(response)
        turn.partial.clear()
        if response.tool_calls:
            turn.rounds.append(round_of(response))

    async def _on_tool_round_start(self, calls: Sequence[ToolCall]) -> None:
        turn = self.turn
        if turn is None or not self.persistence.tool_calls:
            return
        rows = []
        for call in calls:
            row_id = new_id()
            turn.tool_rows[call.id] = row_id
            rows.append(
                {
                    "id": row_id,
                    "messageId": turn.message_id,
                    "toolCallId": call.id,
                    "name": call.name,
                    "arguments": encode_json(call.arguments),
                    "thoughtSignature": call.thought_signature,
                    "createdAt": utc_now(),
                }
            )
        await self.store.create_tool_calls(rows)

    async def _on_tool_round_end(self, outcomes: Sequence[ToolOutcome]) -> None:
        turn = self.turn
        if turn is None or not self.persistence.tool_calls:
            return
        results = [
            (turn.tool_rows[o.call.id], o.result) for o in outcomes if o.call.id in turn.tool_rows
        ]
        turn.tool_rows.clear()
        if results:
            await self.store.set_tool_results(results)

    # ---- ending a turn -------------------------------------------------------------------

    async def finish(self, response: Response) -> MessageRecord:
        turn = self._take()
        values = assistant_values(
            response, usage=turn.usage, rounds=turn.rounds, content=response.content
        )
        await self.store.finish_turn(turn.message_id, values, turn.requests)
        return _record({**turn.placeholder, **values})

    async def fail(self, turn: Turn, error: BaseException) -> list[Message]:
        """End a turn that raised or was abandoned; returns the messages it leaves behind.

        Nothing produced: the placeholder goes, the user row and the request rows (failed
        ones included) stay. Something produced (streamed text, finished tool rounds): the
        assistant row keeps it, marked interrupted with the reason.
        """
        if self.turn is turn:
            self.turn = None
        partial = "".join(turn.partial)
        stopped = error.response if isinstance(error, MiddlewareStopError) else None
        if stopped is not None and not partial:
            # A middleware stopped a complete, paid-for answer (a cost guard): keep it, marked.
            partial = stopped.content
        if not partial and not turn.rounds:
            async with self.store.transaction():
                await self.store.delete_message(turn.message_id)
                if turn.requests:
                    # The placeholder is gone, so the rows must not point at it.
                    for row in turn.requests:
                        row["messageId"] = None
                    await self.store.create_requests(turn.requests)
            return []
        reason = "aborted" if isinstance(error, GeneratorExit | KeyboardInterrupt) else "error"
        if type(error).__name__ == "CancelledError":
            reason = "aborted"
        last = turn.responses[-1] if turn.responses else None
        values = assistant_values(
            last,
            usage=turn.usage,
            rounds=turn.rounds,
            content=partial,
            interrupted=reason,
            error=None if reason == "aborted" else error,
        )
        await self.store.finish_turn(turn.message_id, values, turn.requests)
        return [Message(role="assistant", content=partial)] if partial else []

    def _take(self) -> Turn:
        turn = self.turn
        if turn is None:
            raise RuntimeError("no turn in flight")
        self.turn = None
        return turn


def _record(values: Row) -> MessageRecord:
    return MessageRecord(
        id=values["id"],
        chatId=values["chatId"],
        role=values["role"],
        content=values.get("content"),
        contentRaw=values.get("contentRaw"),
        reasoning=values.get("reasoning"),
        thinkingText=values.get("thinkingText"),
        thinkingSignature=values.get("thinkingSignature"),
        thinkingTokens=values.get("thinkingTokens"),
        inputTokens=values.get("inputTokens"),
        outputTokens=values.get("outputTokens"),
        modelId=values.get("modelId"),
        provider=values.get("provider"),
        createdAt=values.get("createdAt"),
    )
