"""Fault injection over every await point of a turn, for the failure sweep and its table.

`Faults` numbers the await points a turn passes (each store call, each provider attempt and
stream delta, each hook, each tool run, each chunk the consumer reads) and fails the k-th one:
`raise` raises there, `cancel` cancels the task running the turn there (so a store call is
cancelled while its statement runs). `sweep_case` runs one turn of a kind with one fault and
checks what the database holds and what the same Chat object sends next, against what a fresh
`load_chat` sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from nodellm_orm import Chat, Tool, create_chat, create_llm, load_chat
from nodellm_orm.core.jsoncodec import decode_object as decode_raw
from nodellm_orm.core.messages import ChatRequest, Message, StreamDelta
from nodellm_orm.core.providers.base import Exchange
from nodellm_orm.orm.history import PLACEHOLDER_RAW
from nodellm_orm.stores.base import Store
from nodellm_orm.testing import FakeProvider

KINDS = ("plain", "tool", "stream", "stream+tool")
MODES = ("raise", "cancel")


class Injected(Exception):
    """The fault a sweep raises."""


@dataclass
class Faults:
    k: int = 0
    mode: str = "raise"
    passed: int = 0
    hit: str | None = None
    task: asyncio.Task[Any] | None = None
    # The cancelled turn's store, and whether the cancel came while a call of it was under
    # way (past its fault point: its statements queued or running, in whatever task).
    watched: FaultyStore | None = None
    cancelled_in_store: bool = False
    # Every store call first lets the other tasks run, as a write that waits for its
    # database does: turns at once then reach their writes in the same pass of the event loop
    # and these share a group commit. (SQLite writes run on the loop's thread and a
    # zero-latency fake never waits, so otherwise each chat's turn would run whole in one
    # step and no write would ever queue behind another's.)
    store_yields: bool = False

    async def point(self, where: str) -> None:
        self.passed += 1
        if self.passed != self.k:
            return
        self.hit = where
        if self.mode == "raise":
            raise Injected(where)
        assert self.task is not None
        self.cancelled_in_store = self.watched is not None and self.watched.in_flight > 0
        self.task.cancel()
        if asyncio.current_task() is self.task:
            await asyncio.sleep(0)


class FaultyStore:
    """A real store whose every async call first passes a fault point."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self._store = store
        self._faults = faults
        self.in_flight = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in ("transaction", "dialect", "bind") or not asyncio.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._faults.store_yields:
                await asyncio.sleep(0)
            await self._faults.point(f"store.{name}")
            self.in_flight += 1
            try:
                return await attr(*args, **kwargs)
            finally:
                self.in_flight -= 1

        return call


class FaultyProvider(FakeProvider):
    def __init__(self, faults: Faults, **kwargs: Any) -> None:
        super().__init__(chunk_size=4, **kwargs)
        self.faults = faults
        self.attempts = 0

    async def attempt(self, request: ChatRequest) -> Exchange:
        self.attempts += 1
        await self.faults.point("provider.attempt")
        exchange = await super().attempt(request)
        return Exchange(exchange.status_code, self._faulty(exchange.deltas))

    async def _faulty(self, deltas: AsyncIterator[StreamDelta]) -> AsyncIterator[StreamDelta]:
        async for delta in deltas:
            await self.faults.point("provider.delta")
            yield delta


class Lookup(Tool):
    name = "lookup"
    description = "Look a word up"

    class Params(BaseModel):
        word: str

    faults: Faults | None = None

    async def execute(self, params: Any) -> str:
        assert self.faults is not None
        await self.faults.point("tool.execute")
        return f"{params.word}: a greeting"


def view(messages: list[Message]) -> list[dict[str, Any]]:
    """What a provider is sent of a history."""
    return [
        {
            "role": m.role,
            "content": m.content,
            "tool_call_id": m.tool_call_id,
            "tool_calls": [(c.id, c.name, c.arguments) for c in m.tool_calls],
        }
        for m in messages
    ]


@dataclass
class Outcome:
    kind: str
    mode: str
    k: int
    hit: str | None
    error: str | None
    lost: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)


def _hooks(chat: Chat, faults: Faults) -> None:
    async def hook(*_: Any) -> None:
        await faults.point("hook")

    for register in (
        chat.on_before_request,
        chat.on_new_message,
        chat.after_response,
        chat.on_end_message,
        chat.on_tool_call_start,
        chat.on_tool_call_end,
        chat.on_tool_result,
    ):
        register(hook)


@dataclass
class Subject:
    """One chat set up for a faulted turn: its provider, and the real store behind it."""

    chat: Chat
    fake: FaultyProvider
    real: Any  # the chat's own store, under the faulty one
    faulty: FaultyStore
    sent_before: int = 0


async def _subject(db: Any, kind: str, faults: Faults) -> Subject:
    """A chat with a turn behind it whose next turn of `kind` passes `faults`' points."""
    fake = FaultyProvider(faults)
    llm = create_llm(provider=fake)
    tool = Lookup()
    tool.faults = faults
    chat = await create_chat(db, llm, instructions="Be brief.")
    await chat.ask("warm up")  # the history has a turn before the faulted one
    chat.with_tool(tool)
    _hooks(chat, faults)
    real = chat.store
    faulty = FaultyStore(real, faults)
    chat.store = chat._recorder.store = faulty  # type: ignore[assignment]
    if "tool" in kind:
        fake.reply_tool_call("lookup", {"word": "hello"}, content="Let me look.")
    fake.reply("Hello means a greeting, said warmly.")
    return Subject(chat, fake, real, faulty, fake.attempts)


async def _turn(subject: Subject, kind: str, faults: Faults) -> Any:
    chat = subject.chat
    if kind.startswith("stream"):
        async with chat.ask_stream("What does hello mean?") as stream:
            async for _ in stream:
                await faults.point("consumer")
        return stream.message
    return await chat.ask("What does hello mean?")


async def _story(db: Any, subject: Subject, task: asyncio.Task[Any], outcome: Outcome) -> Outcome:
    """What the faulted turn left: the rows, and what the same Chat object sends next
    against what a fresh `load_chat` sends."""
    chat, fake, real = subject.chat, subject.fake, subject.real
    answer = None
    if task.cancelled():
        outcome.error = "CancelledError"
    elif task.exception() is not None:
        outcome.error = type(task.exception()).__name__
    else:
        answer = task.result()
    calls = fake.attempts - subject.sent_before

    rows = await real.list_messages(chat.id)
    turn_rows = rows[2:]  # after the warm-up turn (user, answer)
    if any(r.contentRaw == PLACEHOLDER_RAW for r in rows):
        outcome.inconsistent.append("an 'incomplete' placeholder is left")
    for r in turn_rows:
        raw = decode_raw(r.contentRaw)
        interrupted = r.role == "assistant" and raw.get("interrupted")
        if interrupted and raw.get("reason") not in ("error", "aborted"):
            outcome.inconsistent.append(f"assistant row reason {raw.get('reason')!r}")
    if calls and not any(r.role == "user" for r in turn_rows):
        outcome.lost.append("the question sent to the provider is not stored")
    if answer is not None and not any(r.id == answer.id and r.content for r in turn_rows):
        outcome.lost.append("the answer returned to the caller is not stored")
    requests = await real.list_requests(chat.id)
    if len(requests) != 1 + calls:  # the warm-up's request, then one per round trip
        outcome.inconsistent.append(f"{len(requests) - 1} request rows for {calls} round trips")
    if any(json.loads(r.contentRaw or "{}").get("reason") == "incomplete" for r in rows):
        outcome.inconsistent.append("a row still says 'incomplete'")

    fake.queue.clear()
    fake.reply("Next answer.")
    await chat.ask("And goodbye?")
    same = view(fake.requests[-1].messages)
    again = FakeProvider()
    again.reply("Reloaded answer.")
    reloaded = await load_chat(db, create_llm(provider=again), chat.id)
    assert reloaded is not None
    await reloaded.ask("Once more?")
    fresh = view(again.requests[-1].messages)
    expected = [
        *same,
        {"role": "assistant", "content": "Next answer.", "tool_call_id": None, "tool_calls": []},
        {"role": "user", "content": "Once more?", "tool_call_id": None, "tool_calls": []},
    ]
    if fresh != expected:
        outcome.inconsistent.append(f"next request {same} but a reload sends {fresh[:-2]}")
    return outcome


async def sweep_case(db: Any, kind: str, mode: str, k: int) -> Outcome:
    """One turn of `kind` failing at its k-th await point; what it left behind."""
    faults = Faults(mode=mode)
    subject = await _subject(db, kind, faults)
    faults.k, faults.passed = k, 0
    faults.task = asyncio.create_task(_turn(subject, kind, faults))
    await asyncio.wait([faults.task])
    outcome = Outcome(kind, mode, k, faults.hit, None)
    faults.k = 0  # no more faults
    return await _story(db, subject, faults.task, outcome)


async def together_case(db: Any, kind: str, k: int, chats: int = 2) -> tuple[list[Outcome], bool]:
    """Turns of `kind` in `chats` chats at once on one store; at the k-th await point any of
    them reaches, the last chat's turn is cancelled wherever it then is, which may be while
    a store call of its turn waits in, or runs in, a group commit with the other chats'
    (the last to start is the one whose writes queue behind theirs). What each turn left
    behind, and whether the cancel came during such a store call."""
    faults = Faults(mode="cancel", store_yields=True)
    subjects = [await _subject(db, kind, faults) for _ in range(chats)]
    faults.k, faults.passed = k, 0
    tasks = [asyncio.create_task(_turn(s, kind, faults)) for s in subjects]
    faults.task, faults.watched = tasks[-1], subjects[-1].faulty
    await asyncio.wait(tasks)
    hit = faults.hit
    faults.k = 0
    outcomes = [
        await _story(db, s, task, Outcome(kind, "cancel", k, hit, None))
        for s, task in zip(subjects, tasks, strict=True)
    ]
    return outcomes, faults.cancelled_in_store


async def sweep(db: Any, kind: str, mode: str, limit: int = 200) -> list[Outcome]:
    """Every fault point of one turn kind, k = 1.. until the turn passes them all."""
    outcomes = []
    for k in range(1, limit):
        outcome = await sweep_case(db, kind, mode, k)
        if outcome.hit is None:
            assert outcome.error is None, outcome
            break
        outcomes.append(outcome)
    else:
        raise AssertionError(f"the {kind} turn did not finish within {limit} fault points")
    return outcomes
