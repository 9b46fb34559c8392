"""Agent sessions: create, resume, Code Wins, metadata as inputs (on every backend)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    Agent,
    AgentClassMismatchError,
    Tool,
    create_agent_session,
    load_agent_session,
)
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database


class LookupOrder(Tool):
    name = "lookup_order"
    description = "Find an order"

    class Params(BaseModel):
        order_id: str

    def execute(self, params: Any) -> str:
        return f"order {params.order_id}: shipped"


class Support(Agent):
    model = "support-model"
    instructions = "You are a support agent."
    tools = [LookupOrder]
    temperature = 0.0


class Greeter(Agent):
    model = "greeter-model"

    @staticmethod
    def instructions(inputs: dict[str, Any]) -> str:  # type: ignore[override]
        return f"Greet {inputs.get('user', 'someone')} in {inputs.get('lang', 'English')}."


class Other(Agent):
    model = "other-model"


async def test_create_session_writes_session_and_chat(database: Database, llm: LLM) -> None:
    session = await create_agent_session(database.db, llm, Support, metadata={"tier": "gold"})
    store = await database.store()
    record = await store.get_agent_session(session.id)
    assert record is not None
    assert record.agentClass == "Support"
    assert record.chatId == session.chat_id
    assert record.metadata == {"tier": "gold"}
    chat = await store.get_chat(session.chat_id)
    assert chat is not None and chat.model == "support-model"
    assert session.model_id == "support-model"


async def test_session_resumes_with_history_from_the_database(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("lookup_order", {"order_id": "42"}).reply("Your order shipped.")
    session = await create_agent_session(database.db, llm, Support)
    answer = await session.ask("Where is order 42?")
    assert answer.content == "Your order shipped."

    resumed = await load_agent_session(database.db, llm, Support, session.id)
    assert resumed is not None
    await resumed.ask("Thanks!")
    sent = fake.requests[-1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[0].content == "You are a support agent."
    assert sent[3].content == "order 42: shipped"
    rows = await resumed.messages()
    assert [r.role for r in rows] == ["user", "assistant", "user", "assistant"]


async def test_loading_with_another_class_is_refused(database: Database, llm: LLM) -> None:
    session = await create_agent_session(database.db, llm, Support)
    with pytest.raises(AgentClassMismatchError, match=r"Support.*Other|Other.*Support"):
        await load_agent_session(database.db, llm, Other, session.id)
    assert await load_agent_session(database.db, llm, Support, "missing") is None


async def test_code_wins_over_what_was_stored(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(database.db, llm, Support)
    await session.ask("hi")
    # Someone edits the stored chat; the class still decides model and instructions.
    store = await database.store()
    await store.update_chat(session.chat_id, {"model": "edited", "instructions": "edited"})
    resumed = await load_agent_session(database.db, llm, Support, session.id)
    assert resumed is not None
    await resumed.ask("again")
    request = fake.requests[-1]
    assert request.model == "support-model"
    assert request.messages[0].content == "You are a support agent."
    assert [t.name for t in request.tools] == ["lookup_order"]
    assert request.temperature == 0.0


async def test_metadata_is_the_agents_input_and_turn_inputs_merge_over_it(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(database.db, llm, Greeter, metadata={"user": "Ada"})
    await session.ask("hello")
    assert fake.requests[-1].messages[0].content == "Greet Ada in English."
    await session.ask("bonjour", inputs={"lang": "French"})
    assert fake.requests[-1].messages[0].content == "Greet Ada in French."
    await session.ask("hello again")
    assert fake.requests[-1].messages[0].content == "Greet Ada in English."


async def test_update_metadata_persists_and_reaches_the_agent(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(database.db, llm, Greeter, metadata={"user": "Ada"})
    await session.update_metadata({"user": "Grace", "lang": "German"})
    await session.ask("hi")
    assert fake.requests[-1].messages[0].content == "Greet Grace in German."

    resumed = await load_agent_session(database.db, llm, Greeter, session.id)
    assert resumed is not None
    assert resumed.metadata == {"user": "Grace", "lang": "German"}
    await resumed.ask("hi")
    assert fake.requests[-1].messages[0].content == "Greet Grace in German."


async def test_session_stats_and_delete(database: Database, llm: LLM) -> None:
    session = await create_agent_session(database.db, llm, Support)
    await session.ask("one")
    await session.ask("two")
    stats = await session.stats()
    assert stats.input_tokens > 0 and stats.output_tokens > 0
    await session.delete()
    store = await database.store()
    assert await store.get_agent_session(session.id) is None
    assert await store.get_chat(session.chat_id) is None


async def test_bad_session_input_writes_nothing(database: Database, llm: LLM) -> None:
    store = await database.store()
    with pytest.raises(ValueError, match="JSON"):
        await create_agent_session(database.db, llm, Support, metadata={"when": object()})
    with pytest.raises(TypeError, match="Agent subclass"):
        await create_agent_session(database.db, llm, dict)  # type: ignore[arg-type]
    assert await store.list_chats() == []


async def test_session_stream_uses_turn_inputs_and_stores_the_row(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 3
    fake.reply("Hallo Ada!")
    session = await create_agent_session(database.db, llm, Greeter, metadata={"user": "Ada"})
    stream = session.ask_stream("hi", inputs={"lang": "German"})
    text = "".join([str(chunk) async for chunk in stream])
    assert text == "Hallo Ada!"
    assert fake.requests[-1].messages[0].content == "Greet Ada in German."
    assert stream.message is not None and stream.message.content == "Hallo Ada!"
    rows = await session.messages()
    assert [(r.role, r.content) for r in rows] == [("user", "hi"), ("assistant", "Hallo Ada!")]
