"""`Chat`, `create_chat`, `load_chat`: a core chat whose every turn is persisted.

The ORM chat wraps a core chat and hooks a `TurnRecorder` into it. It keeps the history in
memory after the first load and only reads what another writer added since (noticed through
what `begin_turn` reports), so a turn's database cost does not grow with the history (on
SQLite, the recorder's WriteMark lets begin_turn skip even its count while no one else writes).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractContextManager, aclosing, nullcontext
from typing import Any, Self, Unpack

from ..core.chat import Chat as CoreChat
from ..core.chat import ChatConfig, TurnStart
from ..core.llm import LLM
from ..core.messages import ChatChunk, Message, Response, Usage
from ..core.options import CHAT_OPTIONS, AskOptions
from ..model import ChatRecord, Cursor, MessageRecord, TableNames
from ..stores import Database, open_store
from ..stores.base import TurnStore, near_miss_note
from .history import describe_error, group_tool_calls, replay
from .ids import new_id, utc_now
from .options import (
    CREATE_CHAT_OPTIONS,
    LOAD_CHAT_OPTIONS,
    RUNTIME_OPTIONS,
    CreateChatOptions,
    LoadChatOptions,
    Persistence,
    TableNamesLike,
    options_or_table_names,
)
from .sync import HistorySync, key_of
from .text import storable, storable_message, storable_text
from .turn import Turn, TurnRecorder, record_of, settle

# Options that are columns of the chat table.
CHAT_COLUMNS = ("model", "provider", "instructions", "metadata")
_STRING_OPTIONS = ("model", "provider", "instructions")
_MESSAGE_ID_CHUNK = 5000


def merge_options(options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping, not {type(options).__name__}")
    return {**(options or {}), **kwargs}


def check_metadata(metadata: Any) -> None:
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata is not JSON-serialisable: {exc}") from exc


def check_llm(llm: Any) -> None:
    if not isinstance(llm, LLM):
        raise TypeError(f"llm must be an LLM from create_llm(), not {type(llm).__name__}")


class ChatStream:
    """What `ask_stream` returns: iterate it for chunks; `.message` is the stored row after.

    Leaving the loop early keeps the text received so far, marked interrupted. The row is
    written when the stream is closed: at once inside `async with chat.ask_stream(...) as s:`
    or after `await s.aclose()`, else when the garbage collector finalises it.
    """

    def __init__(self, chat: Chat, content: str, options: dict[str, Any]) -> None:
        self._chat = chat
        self._content = content
        self._options = options
        # Weak, so a generator left by `break` is not kept alive by a cycle through this
        # object: the event loop then finalises it at once and the partial text is stored.
        self._iterator: weakref.ref[AsyncGenerator[ChatChunk, None]] | None = None
        # Inside `async with`, the stream itself closes the generator on exit: hold it.
        self._held: AsyncGenerator[ChatChunk, None] | None = None
        self._entered = False
        self.message: MessageRecord | None = None

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        if self._iterator is None:
            iterator = self._run()
            self._iterator = weakref.ref(iterator)
            if self._entered:
                self._held = iterator
            return iterator
        running = self._iterator()
        if running is None:
            raise RuntimeError("this stream was already consumed; call ask_stream() again")
        return running

    async def aclose(self) -> None:
        running = self._iterator() if self._iterator is not None else None
        if running is not None:
            await running.aclose()

    async def __aenter__(self) -> ChatStream:
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.aclose()
        finally:
            self._held = None

    def _during_turn(self) -> AbstractContextManager[None]:
        """Entered once the chat's lock is held, for the turn's duration."""
        return nullcontext()

    async def _run(self) -> AsyncGenerator[ChatChunk, None]:
        chat = self._chat
        async with chat._lock:
            with self._during_turn():
                turn, start = await chat._begin(self._content, self._options)
                chunks = chat.core.run_turn(start, stream=True)
                try:
                    # Closed before the turn is recorded, so the round trip it abandons is.
                    async with aclosing(chunks):
                        async for chunk in chunks:
                            chat._recorder.on_chunk(chunk)
                            yield chunk
                except BaseException as exc:
                    await chat._fail(turn, exc)
                    raise
                assert chat.core.last_response is not None
                self.message = await chat._finish(turn, chat.core.last_response)


class Chat(ChatConfig):
    """A persisted chat. Fluent configuration and hooks are the core chat's (ChatConfig)."""

    def __init__(
        self,
        store: TurnStore,
        record: ChatRecord,
        core: CoreChat,
        *,
        persistence: Persistence,
        history_loaded: bool,
        saves_instructions: bool = True,
    ) -> None:
        self.store = store
        self.record = record
        self.core = core
        self.persistence = persistence
        self._recorder = TurnRecorder(store, record.id, persistence)
        self._recorder.attach(core)
        self._lock = asyncio.Lock()
        self._sync = HistorySync(loaded=history_loaded)
        # The chat row's instructions follow the core chat's; not for an agent session, whose
        # class owns its instructions (the row keeps what they were at creation).
        self._saves_instructions = saves_instructions
        self._saved_instructions = record.instructions
        # Set by the fluent methods that change a chat column, so a turn only compares
        # configuration (an O(history) scan for instructions) when something changed.
        self._config_changed = False
        self._saved_model = (record.model, record.provider)

    @property
    def id(self) -> str:
        return self.record.id

    # ---- turns ---------------------------------------------------------------------------

    async def ask(self, message: str, **options: Unpack[AskOptions]) -> MessageRecord:
        """Send `message`; returns the stored assistant row."""
        checked = self.core.ask_options(options)
        async with self._lock:
            return await self._ask(message, checked)

    async def _ask(self, message: str, options: dict[str, Any]) -> MessageRecord:
        """A turn; the caller holds the lock."""
        turn, start = await self._begin(message, options)
        try:
            response = await self.core.complete(start)
        except BaseException as exc:
            await self._fail(turn, exc)
            raise
        return await self._finish(turn, response)

    def ask_stream(self, message: str, **options: Unpack[AskOptions]) -> ChatStream:
        """Stream the answer to `message`; nothing is written between the chunks of a round."""
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, not {type(message).__name__}")
        return ChatStream(self, message, self.core.ask_options(options))

    stream = ask_stream

    async def _begin(self, message: str, options: dict[str, Any]) -> tuple[Turn, TurnStart]:
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, not {type(message).__name__}")
        # Each is a no-op on most turns: tested here, no coroutine is made for nothing.
        if self._sync.must_read:
            await self._load_history()
        if self._config_changed:
            await self._save_config()
        core = self.core
        # The on_request middlewares run first, so the user row stores what they left.
        start = await core.start_turn(storable_text(message), options)
        if start.user is not None:
            start.user = storable_message(start.user)
        content = start.user.content if start.user is not None else message
        turn = self._recorder.new_turn(content or "", model=core.model, provider=core.provider.name)
        sync = self._sync
        window = sync.window()
        try:
            begun, cancelled = await self._recorder.begin(turn, window, sync.known_before_window)
        except Exception as exc:
            self._recorder.turn = None  # nothing was written
            # Most likely the chat row is gone (deleted elsewhere): say so, not a raw FK error.
            if await self.store.get_chat(self.id) is None:
                raise LookupError(f"chat {self.id} no longer exists") from exc
            raise
        sync.remember([key_of(turn.user), key_of(turn.placeholder)])
        if cancelled:
            # Written, but the turn stops here: end it as one that produced nothing, and read
            # what others wrote meanwhile at the next turn.
            sync.reread = True
            turn.mark = len(core.messages)
            error = asyncio.CancelledError()
            await self._fail(turn, error)
            raise error
        if sync.unseen(begun):
            await self._catch_up(window, turn)
        turn.mark = len(core.messages)
        return turn, start

    async def _finish(self, turn: Turn, response: Response) -> MessageRecord:
        """Write the end of a turn that answered; the in-memory turn then reads as stored."""
        try:
            stored, cancelled = await settle(self._recorder.finish(response))
        except Exception as exc:
            await self._fail(turn, exc, answered=True)
            raise
        messages = self.core.messages
        messages[turn.mark :] = [storable_message(m) for m in messages[turn.mark :]]
        if cancelled:
            raise asyncio.CancelledError
        return record_of(stored)

    async def _fail(self, turn: Turn, error: BaseException, *, answered: bool = False) -> None:
        """End a failed turn; the in-memory turn then reads as what was stored of it."""
        try:
            stored, cancelled = await settle(self._recorder.fail(turn, error, answered=answered))
        except Exception as exc:
            error.add_note(f"the failed turn could not be recorded: {describe_error(exc)}")
            self._sync.reread = True  # the database says what happened: read it next turn
            return
        self.core.messages[turn.mark :] = turn.replay(stored)
        if stored is None:  # the placeholder was removed
            self._sync.forget(key_of(turn.placeholder))
        if cancelled and not isinstance(error, asyncio.CancelledError):
            raise asyncio.CancelledError

    # ---- history -------------------------------------------------------------------------

    async def _load_history(self) -> None:
        sync = self._sync
        if not sync.must_read:
            return
        rows = sync.take_cached()
        if rows is None:
            rows = await self.store.list_messages(self.id)
        # The instructions are the core chat's own field: the history is only the messages.
        self.core.messages = await self._replay(rows)
        sync.read_all(rows, utc_now())

    async def _replay(self, rows: Sequence[MessageRecord]) -> list[Message]:
        ids = [r.id for r in rows if r.role == "assistant"]
        calls = []
        for start in range(0, len(ids), _MESSAGE_ID_CHUNK):
            calls.extend(await self.store.list_tool_calls(ids[start : start + _MESSAGE_ID_CHUNK]))
        return replay(rows, group_tool_calls(calls))

    async def _catch_up(self, window: Cursor | None, turn: Turn) -> None:
        """Another writer added messages: bring them into the in-memory history.

        New rows after the ones held are appended. A row that sorts before one already held
        (its INSERT landed late), or rows counted but outside the window, mean the held order
        is wrong: the whole history is read again now, as a reload would. A turn still in
        flight elsewhere shows as its placeholder; its answer lands in a row already passed,
        so the next turn re-reads once it is done; so it does when another writer's row sorts
        after this turn's question (it started later but was faster).
        """
        rows = await self.store.list_messages(self.id, after=window)
        ours = key_of(turn.user)
        fresh = self._sync.fresh(rows, ours, turn.message_id)
        if fresh is None:
            await self._read_again(turn)
            return
        self.core.messages.extend(await self._replay(fresh))
        self._sync.caught_up(fresh, ours, utc_now())

    async def _read_again(self, turn: Turn) -> None:
        """The whole history, read again during `turn` (whose own rows it leaves out)."""
        rows = await self.store.list_messages(self.id)
        ours = {turn.user["id"], turn.message_id}
        others = [r for r in rows if r.id not in ours]
        self.core.messages = await self._replay(others)
        self._sync.read_again(rows, others, key_of(turn.user), utc_now())

    async def _save_config(self) -> None:
        """Persist instructions/model changed through the fluent API since the last turn."""
        if not self._config_changed:
            return
        self._config_changed = False
        changes: dict[str, Any] = {}
        if self._saves_instructions:
            instructions = self.core.instructions
            if instructions != self._saved_instructions:
                changes["instructions"] = instructions
        model = (self.core.model, self.core.provider.name)
        if model != self._saved_model:
            changes["model"], changes["provider"] = model
        if changes:
            changes["updatedAt"] = utc_now()
            await self.store.update_chat(self.id, storable(changes))
            self._saved_instructions = changes.get("instructions", self._saved_instructions)
            self._saved_model = model
            for key, value in changes.items():
                setattr(self.record, key, value)

    # ---- reading -------------------------------------------------------------------------

    async def messages(self) -> list[MessageRecord]:
        """Every stored message of the chat, in order (re-read: other writers included)."""
        rows = await self.store.list_messages(self.id)
        self._sync.offer(rows)
        return rows

    async def stats(self) -> Usage:
        """Tokens and cost summed over the chat's request rows."""
        totals = await self.store.usage(self.id)
        return Usage(
            input_tokens=totals.inputTokens,
            output_tokens=totals.outputTokens,
            cost=totals.cost,
        )

    async def delete(self) -> None:
        """Delete the chat with its messages, tool calls, requests and agent session."""
        await self.store.delete_chat(self.id)

    # ---- fluent configuration: ChatConfig's methods, configuring the core chat ----------

    def _core(self) -> CoreChat:
        return self.core

    def with_instructions(self, text: str, replace: bool = False) -> Self:
        super().with_instructions(storable_text(text) if isinstance(text, str) else text, replace)
        self._config_changed = True
        return self

    def with_model(self, model: str) -> Self:
        super().with_model(model)
        self._config_changed = True
        return self

    def with_provider(self, name: str, model: str | None = None) -> Self:
        super().with_provider(name, model)
        self._config_changed = True
        return self


def _core_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in CHAT_OPTIONS}


def _check_types(options: Mapping[str, Any]) -> None:
    for key in _STRING_OPTIONS:
        value = options.get(key)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{key} must be a string, not {type(value).__name__}")
    if "metadata" in options:
        check_metadata(options["metadata"])


def _table_names(
    positional: TableNamesLike | None, options: Mapping[str, Any], where: str
) -> TableNames:
    """The table names given positionally or as the `tableNames` option (not both)."""
    from_options = options.get("tableNames")
    if positional is not None and from_options is not None:
        raise TypeError(f"{where}: table names given twice (positionally and as tableNames)")
    return TableNames.coerce(positional if positional is not None else from_options)


async def create_chat(
    db: Database,
    llm: LLM,
    options: Mapping[str, Any] | None = None,
    table_names: TableNamesLike | None = None,
    **kwargs: Unpack[CreateChatOptions],
) -> Chat:
    """Create a chat row and return a Chat that persists every turn.

    Options (keywords, or a JS-style mapping) are `model`, `provider`, `instructions`,
    `metadata` (columns), the chat options (`temperature`, `maxTokens`...; see
    `ChatOptions`), `persistence`, `tableNames`, and, in the mapping, any custom column of the
    chat table (`{"userId": "u-42"}`). An unknown column raises before anything is written.
    """
    check_llm(llm)
    opts = merge_options(options, kwargs)
    _check_types(opts)
    names = _table_names(table_names, opts, "create_chat")
    persistence = Persistence.coerce(opts.get("persistence"))
    runtime = _core_options(opts)
    # Checked before anything is written: a bad value raises naming its option.
    llm.chat(opts.get("model"), **runtime) if opts.get("provider") is None else None
    store = await open_store(db, names, persistence.needs())
    custom = {
        k: v for k, v in opts.items() if k not in CREATE_CHAT_OPTIONS and k not in CHAT_COLUMNS
    }
    if custom:
        columns = await store.chat_columns()
        reserved = {"id", "createdAt", "updatedAt"}
        unknown = sorted(k for k in custom if k not in columns or k in reserved)
        if unknown:
            raise ValueError(
                f"unknown chat option or column {', '.join(map(repr, unknown))}; the chat table "
                f"has columns {sorted(columns - reserved)} and the runtime options are "
                f"{sorted(RUNTIME_OPTIONS)}{near_miss_note(unknown, columns)}"
            )
    chat_llm = llm.with_provider(opts["provider"]) if opts.get("provider") else llm
    core = chat_llm.chat(opts.get("model"), **runtime)
    if opts.get("instructions"):
        core.with_instructions(storable_text(opts["instructions"]))
    now = utc_now()
    row = {
        "id": new_id(),
        "model": core.model,
        "provider": core.provider.name,
        "instructions": opts.get("instructions"),
        "metadata": opts.get("metadata"),
        "createdAt": now,
        "updatedAt": now,
        **custom,
    }
    record = await store.create_chat(storable(row))
    return Chat(store, record, core, persistence=persistence, history_loaded=True)


async def load_chat(
    db: Database,
    llm: LLM,
    chat_id: str,
    options: Mapping[str, Any] | TableNamesLike | None = None,
    table_names: TableNamesLike | None = None,
    **kwargs: Unpack[LoadChatOptions],
) -> Chat | None:
    """Load a stored chat (None if there is none); its history is read at the first turn.

    The 4th argument is the options or, as in the seed README's `loadChat(prisma, llm,
    chatId, tableNames)`, the table names; anything else raises.
    """
    check_llm(llm)
    if not isinstance(chat_id, str):
        raise TypeError(f"chat_id must be a string, not {type(chat_id).__name__}")
    given, positional_names = options_or_table_names(
        options, where="load_chat", option_keys=LOAD_CHAT_OPTIONS
    )
    if positional_names is not None and table_names is not None:
        raise TypeError("load_chat: table names given twice")
    opts = merge_options(given, kwargs)
    unknown = sorted(set(opts) - LOAD_CHAT_OPTIONS)
    if unknown:
        raise TypeError(
            f"unknown load_chat option {', '.join(map(repr, unknown))}; the options are "
            f"{sorted(LOAD_CHAT_OPTIONS)}"
        )
    _check_types(opts)
    names = _table_names(positional_names or table_names, opts, "load_chat")
    persistence = Persistence.coerce(opts.get("persistence"))
    runtime = _core_options(opts)
    llm.chat(opts.get("model"), **runtime) if opts.get("provider") is None else None
    store = await open_store(db, names, persistence.needs())
    record = await store.get_chat(chat_id)
    if record is None:
        return None
    provider = opts.get("provider") or record.provider
    chat_llm = llm.with_provider(provider) if provider else llm
    core = chat_llm.chat(opts.get("model") or record.model, **runtime)
    if record.instructions:
        core.with_instructions(record.instructions)
    chat = Chat(store, record, core, persistence=persistence, history_loaded=False)
    if opts.get("instructions"):
        chat.with_instructions(opts["instructions"], replace=True)
    return chat
