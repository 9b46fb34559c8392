"""Instructions are one field of the core chat (`system_messages`, JS `systemMessages`), kept
apart from the history and rendered first when a request is built, for plain chats, loaded
chats and agents alike (no system messages joined back into the history, no agent hook).
"""

from __future__ import annotations

from typing import Any

from nodellm_orm import LLM, Agent, create_agent_session, create_chat, create_llm, load_chat
from nodellm_orm.core.messages import Message
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database


def _sent(fake: FakeProvider) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in fake.requests[-1].messages]


async def test_the_core_chat_keeps_instructions_apart_and_sends_them_first() -> None:
    fake = FakeProvider()
    chat = create_llm(provider=fake).chat(
        messages=[Message(role="user", content="earlier"), Message(role="system", content="A.")]
    )
    chat.with_instructions("B.")
    assert [m.content for m in chat.system_messages] == ["A.", "B."]
    assert [m.role for m in chat.messages] == ["user"]
    assert chat.instructions == "A.\n\nB."
    await chat.ask("hi")
    assert _sent(fake)[:3] == [("system", "A."), ("system", "B."), ("user", "earlier")]
    assert all(m.role != "system" for m in chat.messages)
    chat.with_instructions("C.", replace=True)
    await chat.ask("again")
    assert [c for r, c in _sent(fake) if r == "system"] == ["C."]


async def test_a_loaded_chat_holds_its_stored_instructions_in_the_field(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    chat = await create_chat(database.db, llm, instructions="Be brief.")
    await chat.ask("one")
    loaded = await load_chat(database.db, llm, chat.id)
    assert loaded is not None
    assert [m.content for m in loaded.core.system_messages] == ["Be brief."]
    loaded.with_instructions("And kind.")
    await loaded.ask("two")
    assert _sent(fake)[:3] == [("system", "Be brief."), ("system", "And kind."), ("user", "one")]
    assert all(m.role != "system" for m in loaded.core.messages)
    assert (await load_chat(database.db, llm, chat.id)).record.instructions == (  # type: ignore[union-attr]
        "Be brief.\n\nAnd kind."
    )


class Greeter(Agent):
    model = "greeter-model"

    @staticmethod
    def instructions(inputs: dict[str, Any]) -> str:  # type: ignore[override]
        return f"Greet {inputs.get('user', 'someone')}."


async def test_an_agent_renders_its_instructions_into_the_field_per_turn(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    session = await create_agent_session(database.db, llm, Greeter, metadata={"user": "Ada"})
    chat = session.instance.chat
    assert chat.before_request_hooks == []  # no hook: the field is rendered like any chat's
    assert [m.content for m in chat.system_messages] == ["Greet Ada."]
    await session.ask("hi", inputs={"user": "Bob"})
    assert _sent(fake)[0] == ("system", "Greet Bob.")
    await session.ask("hi again")
    assert _sent(fake)[0] == ("system", "Greet Ada.")
    assert [c for r, c in _sent(fake) if r == "system"] == ["Greet Ada."]
    assert all(m.role != "system" for m in session.history)
