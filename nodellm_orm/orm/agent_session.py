"""Resumable agent sessions: an `LlmAgentSession` row pointing at a chat.

"Code wins": the agent class supplies model, tools and instructions every time; the database
supplies the history and the session metadata (passed to the agent as its inputs). Loading a
session with a different class than the one that created it is an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Unpack

from ..core.agent import Agent
from ..core.llm import LLM
from ..core.messages import Message, Usage
from ..core.options import AskOptions, normalize
from ..core.tools import Tool
from ..model import AgentSessionRecord, MessageRecord, TableNames
from ..stores import Database, open_store
from .chat import Chat, ChatStream, check_llm, check_metadata
from .ids import new_id, utc_now
from .options import Persistence, TableNamesLike, options_or_table_names
from .text import storable


@contextmanager
def _inputs_of_turn(agent: Agent, inputs: dict[str, Any]) -> Iterator[None]:
    """The agent sees `inputs` for one turn; entered with the chat's lock held, so
    concurrent turns on one session each see their own."""
    agent._turn_inputs = inputs
    try:
        yield
    finally:
        agent._turn_inputs = None


class AgentClassMismatchError(ValueError):
    """The stored session was created by another agent class."""


def _check_agent_class(agent_class: Any) -> type[Agent]:
    if not (isinstance(agent_class, type) and issubclass(agent_class, Agent)):
        raise TypeError(f"agent_class must be an Agent subclass, not {agent_class!r}")
    return agent_class


class _AgentStream(ChatStream):
    """A chat stream during which the agent sees the turn's inputs."""

    def __init__(
        self, session: AgentSession, content: str, options: dict[str, Any], inputs: dict[str, Any]
    ) -> None:
        super().__init__(session.chat, content, options)
        self._agent = session.instance
        self._inputs = inputs

    def _during_turn(self) -> AbstractContextManager[None]:
        return _inputs_of_turn(self._agent, self._inputs)


class AgentSession:
    """A persisted conversation with an agent; `ask` merges per-turn inputs over metadata."""

    def __init__(self, record: AgentSessionRecord, agent: Agent, chat: Chat) -> None:
        self.record = record
        self.instance = agent
        self.chat = chat

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def chat_id(self) -> str:
        return self.record.chatId

    @property
    def metadata(self) -> Any:
        return self.record.metadata

    @property
    def agent_class(self) -> str:
        return self.record.agentClass

    @property
    def model_id(self) -> str:
        return self.instance.model_id

    @property
    def total_usage(self) -> Usage:
        return self.instance.total_usage

    @property
    def history(self) -> list[Message]:
        return self.instance.history

    def _inputs(self, inputs: dict[str, Any] | None) -> dict[str, Any]:
        if inputs is not None and not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict, not {type(inputs).__name__}")
        base = self.metadata if isinstance(self.metadata, dict) else {}
        return {**base, **(inputs or {})}

    async def ask(
        self, message: str, *, inputs: dict[str, Any] | None = None, **options: Unpack[AskOptions]
    ) -> MessageRecord:
        checked = self.chat.core.ask_options(options)
        turn_inputs = self._inputs(inputs)
        async with self.chat._lock:
            with _inputs_of_turn(self.instance, turn_inputs):
                return await self.chat._ask(message, checked)

    def ask_stream(
        self, message: str, *, inputs: dict[str, Any] | None = None, **options: Unpack[AskOptions]
    ) -> ChatStream:
        """Like `Chat.ask_stream`; `.message` holds the stored row once the stream ends."""
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, not {type(message).__name__}")
        checked = self.chat.core.ask_options(options)
        return _AgentStream(self, message, checked, self._inputs(inputs))

    async def messages(self) -> list[MessageRecord]:
        return await self.chat.messages()

    async def stats(self) -> Usage:
        return await self.chat.stats()

    async def delete(self) -> None:
        """Delete the session's chat; the session row goes with it (cascade)."""
        await self.chat.delete()

    async def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge `metadata` into the session's (and so into the agent's inputs)."""
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        merged = {**(self.metadata if isinstance(self.metadata, dict) else {}), **metadata}
        check_metadata(merged)
        merged = storable(merged)
        now = utc_now()
        await self.chat.store.update_agent_session(self.id, {"metadata": merged, "updatedAt": now})
        self.record.metadata = merged
        self.record.updatedAt = now
        self.instance.inputs = dict(merged)

    def with_tool(self, tool: Tool | type[Tool]) -> AgentSession:
        self.instance.with_tool(tool)
        return self

    def with_instructions(self, text: str, replace: bool = False) -> AgentSession:
        """Add to the agent's instructions for this session object (as in JS: appends)."""
        self.instance.with_instructions(text, replace)
        return self


# Where a session's creation overrides are kept: the chat row's metadata (unused otherwise
# for agent sessions), so load_agent_session re-applies them. JS spelling, as stored JSON.
OVERRIDES_KEY = "agentOverrides"
_OVERRIDE_SPELLINGS = {"maxToolCalls": "max_tool_calls"}
# Keys of JS `CreateAgentSessionOptions`: a 4th positional dict made of these is a JS-style
# options object passed where the metadata goes.
_JS_SESSION_OPTIONS = frozenset(
    {"metadata", "tableNames", "debug", "model", "provider", "instructions", "maxToolCalls"}
)


def _agent(agent_class: type[Agent], llm: LLM, metadata: Any, overrides: dict[str, Any]) -> Agent:
    model = overrides.get("model")
    instructions = overrides.get("instructions")
    limit = overrides.get("maxToolCalls")
    agent = agent_class(
        llm=llm,
        inputs=metadata if isinstance(metadata, dict) else None,
        model=model,
        instructions=instructions,
        **({"max_tool_calls": limit} if limit is not None else {}),
    )
    return agent


def _stored_overrides(chat_metadata: Any) -> dict[str, Any]:
    if isinstance(chat_metadata, str):
        chat_metadata = json.loads(chat_metadata)
    if isinstance(chat_metadata, dict) and isinstance(chat_metadata.get(OVERRIDES_KEY), dict):
        return dict(chat_metadata[OVERRIDES_KEY])
    return {}


async def create_agent_session(
    db: Database,
    llm: LLM,
    agent_class: type[Agent],
    metadata: dict[str, Any] | None = None,
    table_names: TableNamesLike | None = None,
    model: str | None = None,
    provider: str | None = None,
    instructions: str | None = None,
    max_tool_calls: int | None = None,
    debug: bool = False,
    persistence: Persistence | Mapping[str, Any] | None = None,
) -> AgentSession:
    """Create a chat and an agent session row for `agent_class`, in one transaction.

    `model`, `provider`, `instructions` and `max_tool_calls` override the class for this
    session: they are stored with it and re-applied by `load_agent_session`.
    """
    check_llm(llm)
    agent_class = _check_agent_class(agent_class)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        js_keys = sorted(set(metadata) & _JS_SESSION_OPTIONS - {"model", "provider"})
        if js_keys:
            raise TypeError(
                f"create_agent_session: the metadata has {', '.join(map(repr, js_keys))}, keys "
                "of the JS options object (createAgentSession(prisma, llm, Agent, {...})); in "
                "Python pass them as keywords: metadata=..., table_names=..., model=..., "
                "max_tool_calls=..., debug=..."
            )
        check_metadata(metadata)
    for name, value in (("model", model), ("provider", provider), ("instructions", instructions)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if max_tool_calls is not None:
        normalize({"max_tool_calls": max_tool_calls})
    if not isinstance(debug, bool):
        raise TypeError("debug must be True or False")
    needs = ("agent_session", *Persistence.coerce(persistence).needs())
    store = await open_store(db, TableNames.coerce(table_names), needs)
    base = llm.with_provider(provider) if provider else llm
    overrides = {
        k: v
        for k, v in (
            ("model", model),
            ("provider", provider),
            ("instructions", instructions),
            ("maxToolCalls", max_tool_calls),
        )
        if v is not None
    }
    agent = _agent(agent_class, base, metadata, overrides)
    agent.chat.debug = debug  # log each round trip (logger "nodellm_orm")
    now = utc_now()
    resolved = agent.resolve_instructions()
    chat_row: dict[str, Any] = {
        "id": new_id(),
        "model": agent.chat.model,
        "provider": agent.chat.provider.name,
        "instructions": resolved,
        "metadata": {OVERRIDES_KEY: overrides} if overrides else None,
        "createdAt": now,
        "updatedAt": now,
    }
    session_row = {
        "id": new_id(),
        "agentClass": agent_class.__name__,
        "chatId": chat_row["id"],
        "metadata": metadata,
        "createdAt": now,
        "updatedAt": now,
    }
    record = await store.create_agent_session(storable(chat_row), storable(session_row))
    chat_record = await store.get_chat(chat_row["id"])
    assert chat_record is not None
    chat = Chat(
        store,
        chat_record,
        agent.chat,
        persistence=Persistence.coerce(persistence),
        history_loaded=True,
        saves_instructions=False,
    )
    return AgentSession(record, agent, chat)


async def load_agent_session(
    db: Database,
    llm: LLM,
    agent_class: type[Agent],
    session_id: str,
    table_names: TableNamesLike | None = None,
    persistence: Persistence | Mapping[str, Any] | None = None,
    debug: bool = False,
) -> AgentSession | None:
    """Resume a session: history from the database, everything else from `agent_class`
    (and the overrides its creation stored)."""
    check_llm(llm)
    agent_class = _check_agent_class(agent_class)
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a string, not {type(session_id).__name__}")
    if not isinstance(debug, bool):
        raise TypeError("debug must be True or False")
    options, names = options_or_table_names(
        table_names, where="load_agent_session", option_keys=frozenset({"tableNames", "debug"})
    )
    if options is not None:  # the JS shape: {tableNames, debug}
        names = TableNames.coerce(options.get("tableNames"))
        debug = bool(options.get("debug", debug))
    store = await open_store(db, names or TableNames())
    record = await store.get_agent_session(session_id)
    if record is None:
        return None
    if record.agentClass != agent_class.__name__:
        raise AgentClassMismatchError(
            f"agent session {session_id} was created by {record.agentClass}, "
            f"not {agent_class.__name__}"
        )
    chat_record = await store.get_chat(record.chatId)
    if chat_record is None:  # pragma: no cover - the foreign key prevents it
        raise LookupError(f"agent session {session_id} has no chat {record.chatId}")
    if isinstance(record.metadata, str):
        record.metadata = json.loads(record.metadata)
    overrides = _stored_overrides(chat_record.metadata)
    base = llm.with_provider(overrides["provider"]) if overrides.get("provider") else llm
    agent = _agent(agent_class, base, record.metadata, overrides)
    agent.chat.debug = debug
    chat = Chat(
        store,
        chat_record,
        agent.chat,
        persistence=Persistence.coerce(persistence),
        history_loaded=False,
        saves_instructions=False,
    )
    return AgentSession(record, agent, chat)
