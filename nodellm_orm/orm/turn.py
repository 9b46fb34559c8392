"""One turn's writes, and nothing else writes during a turn.

A turn costs these statements (each a TurnStore call):
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

import asyncio
import contextvars
import types
from collections.abc import Coroutine, Generator, Sequence
from typing import Any, TypeVar

from ..core.chat import Chat as CoreChat
from ..core.chat import RequestMetrics, ToolOutcome
from ..core.messages import ChatChunk, Message, Response, ToolCall, Usage
from ..core.middleware import MiddlewareStopError
from ..model import Cursor, MessageRecord, Row, ToolCallRecord
from ..stores.base import TurnBegun, TurnStore, WriteMark
from .history import (
    PLACEHOLDER_RAW,
    assistant_values,
    describe_error,
    encode_json,
    replay,
    round_of,
)
from .ids import new_id, new_id_pair, utc_now
from .options import Persistence
from .text import storable, storable_row, storable_text

T = TypeVar("T")
# The schema's Int columns are 32-bit (Prisma's Int; PostgreSQL's INTEGER).
INT_MAX = 2**31 - 1
_INT_MIN = -INT_MAX - 1


async def settle(write: Coroutine[Any, Any, T]) -> tuple[T, bool]:
    """Run a write to its end even if the caller is cancelled meanwhile.

    Returns its result and whether a cancellation arrived (the caller re-raises it once its
    own bookkeeping is done). A write abandoned half-way would leave the rows in an unknown
    state: landed or not, the turn could no longer say what the database holds.

    The write runs in the caller's task (as a plain await would: code under it may rely on
    which task holds a lock), in a context of its own. Most writes on SQLite end without
    waiting for anything; a task per write and a shield around it cost three passes of the
    event loop each: measured, a sixth of a plain turn's overhead there (0.46 -> 0.38 ms).
    """
    context = contextvars.copy_context()
    try:
        waiting = context.run(write.send, None)
    except StopIteration as done:
        return done.value, False
    return await _shielded(write, waiting, context)


@types.coroutine
def _shielded(
    write: Coroutine[Any, Any, T], waiting: Any, context: contextvars.Context
) -> Generator[Any, None, tuple[T, bool]]:
    """The rest of a started write, driven as its task would drive it, except that a
    cancellation of that task reaches not the write but the answer (`cancelled`).

    What the write waits for is waited for through a stand-in future, so cancelling the task
    cancels the stand-in and never what the write awaits."""
    cancelled = False
    while True:
        if waiting is None:  # a bare yield: the write goes on at the next pass
            try:
                yield None
            except asyncio.CancelledError:
                cancelled = True
        else:
            waiting._asyncio_future_blocking = False  # taken over, as a task takes it
            while not waiting.done():
                stand_in = _done_with(waiting)
                try:
                    yield from stand_in
                except asyncio.CancelledError:
                    cancelled = True
        try:
            waiting = context.run(write.send, None)
        except StopIteration as done:
            return done.value, cancelled


def _done_with(future: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future that ends when `future` does (cancelling it leaves `future` alone)."""
    stand_in: asyncio.Future[None] = future.get_loop().create_future()

    def end(_: object) -> None:
        if not stand_in.done():
            stand_in.set_result(None)

    future.add_done_callback(end)
    return stand_in


def _count(value: int | None) -> int | None:
    """A count for an Int column: what no backend can hold is capped (the JSON keeps it)."""
    if value is None or _INT_MIN <= value <= INT_MAX:
        return value
    return INT_MAX if value > INT_MAX else _INT_MIN


class Turn:
    """The state of the turn in flight: its rows' ids and what it produced so far."""

    __slots__ = (
        "chat_id",
        "mark",
        "message_id",
        "partial",
        "placeholder",
        "requests",
        "responses",
        "rounds",
        "tool_records",
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
        # Every tool-call row written so far, results included: what a reload would read.
        self.tool_records: dict[str, ToolCallRecord] = {}
        self.partial: list[str] = []
        # Where the turn's messages start in the core chat's history.
        self.mark = 0

    def replay(self, assistant: Row | None) -> list[Message]:
        """What a reload replays of this turn, given the assistant row as stored (or None)."""
        rows = [record_of(self.user)]
        if assistant is not None:
            rows.append(record_of(assistant))
        return replay(rows, {self.message_id: list(self.tool_records.values())})

    @property
    def usage(self) -> Usage:
        responses = self.responses
        if len(responses) == 1:  # a plain turn: the sum is its one response's usage
            return responses[0].usage
        total = Usage()
        for response in responses:
            total = total + response.usage
        return total


class TurnRecorder:
    """Writes a chat's turns through the TurnStore; attached once to the core chat."""

    def __init__(self, store: TurnStore, chat_id: str, persistence: Persistence) -> None:
        self.store = store
        self.chat_id = chat_id
        self.persistence = persistence
        self.turn: Turn | None = None
        # What the store knows of this chat's own writes: lets begin_turn skip its count.
        self.mark = WriteMark()

    def attach(self, core: CoreChat) -> None:
        core.request_hooks.append(self._on_request)
        core.response_hooks.append(self._on_end_message)
        core.tool_round_start_hooks.append(self._on_tool_round_start)
        core.tool_round_end_hooks.append(self._on_tool_round_end)

    def new_turn(self, content: str, *, model: str, provider: str) -> Turn:
        now = utc_now()
        # Adjacent ids and one timestamp: nothing another writer stores sorts between the
        # question and its answer.
        user_id, answer_id = new_id_pair()
        user = {
            "id": user_id,
            "chatId": self.chat_id,
            "role": "user",
            "content": content,
            "createdAt": now,
        }
        placeholder = {
            "id": answer_id,
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

    async def begin(self, turn: Turn, after: Cursor | None, known: int) -> tuple[TurnBegun, bool]:
        """Write the user row and the placeholder; what the store learned of others' rows.

        The second value says a cancellation arrived while writing (the rows are written).
        """
        rows = [turn.user, turn.placeholder]
        write = self.store.begin_turn(self.chat_id, rows, after=after, known=known, mark=self.mark)
        return await settle(write)

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
                "statusCode": _count(metrics.status_code),
                "duration": _count(metrics.duration_ms),
                "inputTokens": _count(metrics.usage.input_tokens),
                "outputTokens": _count(metrics.usage.output_tokens),
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
        records = [
            ToolCallRecord(
                id=new_id(),
                messageId=turn.message_id,
                toolCallId=storable_text(call.id),
                name=storable_text(call.name),
                arguments=encode_json(call.arguments),
                thoughtSignature=call.thought_signature,
                createdAt=utc_now(),
            )
            for call in calls
        ]
        rows = [
            {
                "id": r.id,
                "messageId": r.messageId,
                "toolCallId": r.toolCallId,
                "name": r.name,
                "arguments": r.arguments,
                "thoughtSignature": r.thoughtSignature,
                "createdAt": r.createdAt,
            }
            for r in records
        ]
        _, cancelled = await settle(self.store.create_tool_calls(rows, mark=self.mark))
        for call, record in zip(calls, records, strict=True):
            turn.tool_rows[call.id] = record.id
            turn.tool_records[record.id] = record
        if cancelled:
            raise asyncio.CancelledError

    async def _on_tool_round_end(self, outcomes: Sequence[ToolOutcome]) -> None:
        turn = self.turn
        if turn is None or not self.persistence.tool_calls:
            return
        results = [
            (turn.tool_rows[o.call.id], storable(o.result))
            for o in outcomes
            if o.call.id in turn.tool_rows
        ]
        turn.tool_rows.clear()
        if results:
            _, cancelled = await settle(self.store.set_tool_results(results, mark=self.mark))
            for row_id, result in results:
                turn.tool_records[row_id].result = result
            if cancelled:
                raise asyncio.CancelledError

    # ---- ending a turn -------------------------------------------------------------------

    async def finish(self, response: Response) -> Row:
        """Write the end of a turn that answered; returns the assistant row as stored."""
        turn = self._take()
        values = assistant_values(
            response, usage=turn.usage, rounds=turn.rounds, content=response.content
        )
        values = _storable_values(values)
        await self.store.finish_turn(turn.message_id, values, turn.requests, mark=self.mark)
        return {**turn.placeholder, **values}

    async def fail(self, turn: Turn, error: BaseException, *, answered: bool = False) -> Row | None:
        """End a turn that raised or was abandoned; returns the assistant row as stored.

        Nothing produced: the placeholder goes (None), the user row and the request rows
        (failed ones included) stay. Something produced (streamed text, finished tool rounds),
        or an answer whose own write failed (`answered`): the assistant row is marked
        interrupted with the reason and keeps what the database accepts of it. Never left
        "incomplete": if the database refuses every version of the row, it is removed.
        """
        if self.turn is turn:
            self.turn = None
        self.mark.forget()  # what follows writes unmarked
        partial = "".join(turn.partial)
        stopped = error.response if isinstance(error, MiddlewareStopError) else None
        if stopped is not None and not partial:
            # A middleware stopped a complete, paid-for answer (a cost guard): keep it, marked.
            partial = stopped.content
        reason = "aborted" if isinstance(error, GeneratorExit | KeyboardInterrupt) else "error"
        if isinstance(error, asyncio.CancelledError):
            reason = "aborted"
        if answered or partial or turn.rounds:
            last = turn.responses[-1] if turn.responses else None
            failed = error if reason == "error" else None
            content = "" if answered else partial
            full = assistant_values(
                last,
                usage=turn.usage,
                rounds=turn.rounds,
                content=content,
                interrupted=reason,
                error=failed,
            )
            # What still says why, should the database refuse the rest (a trigger, a rule).
            bare = {
                "content": "",
                "contentRaw": encode_json(
                    {"interrupted": True, "reason": reason}
                    | ({"error": describe_error(failed)} if failed is not None else {})
                ),
            }
            for values in (full, bare):
                values = _storable_values(values)
                try:
                    await self.store.finish_turn(turn.message_id, values, turn.requests)
                except Exception as exc:  # refused: try what is left of the row
                    error.add_note(f"recording the failed turn: {describe_error(exc)}")
                    continue
                return {**turn.placeholder, **values}
        async with self.store.transaction():
            await self.store.delete_message(turn.message_id)
            if turn.requests:
                # The placeholder is gone, so the rows must not point at it.
                for row in turn.requests:
                    row["messageId"] = None
                await self.store.create_requests(turn.requests)
        turn.tool_records.clear()  # gone with the placeholder (cascade)
        return None

    def _take(self) -> Turn:
        turn = self.turn
        if turn is None:
            raise RuntimeError("no turn in flight")
        self.turn = None
        return turn


def _storable_values(values: Row) -> Row:
    out = storable_row(values)
    for key in ("inputTokens", "outputTokens", "thinkingTokens"):
        if key in out:
            out[key] = _count(out[key])
    return out


def record_of(values: Row) -> MessageRecord:
    """The record of a message row as the ORM wrote it (its keys are the record's fields)."""
    return MessageRecord(**values)
