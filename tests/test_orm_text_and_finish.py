"""Text no database can hold, counts an Int column cannot hold, and a database refusing the end
of a turn: never a lost request row, never an "incomplete" row, never a poisoned Chat."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import Tool, Usage, create_chat, create_llm, load_chat
from nodellm_orm.testing import FakeProvider
from tests.conftest import SQL_BACKENDS, Database, on_backends

DIRTY = "a\x00b\ud83dc"
CLEAN = "a\ufffdb\ufffdc"


class Echo(Tool):
    name = "echo"
    description = "Echo a word"

    class Params(BaseModel):
        word: str

    def execute(self, params: Any) -> str:
        return f"echo {params.word} \x00 \udc00"


def sent(fake: FakeProvider) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in fake.requests[-1].messages]


# Checked on the sql backends (the rule is the ORM's; triggers are installed through the sql
# store): every test here takes the `database` fixture.
pytestmark = on_backends(*SQL_BACKENDS)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("ascii\x00only", "ascii\ufffdonly"),  # ASCII text: NUL is all it can hold
        ("caf\xe9\x00", "caf\xe9\ufffd"),  # one byte a character, not ASCII
        ("lone \udc00 half", "lone \ufffd half"),
        ("emoji \U0001f600 ok", "emoji \U0001f600 ok"),  # clean, four bytes a character
    ],
)
async def test_each_kind_of_text_is_stored_by_one_rule(
    database: Database, text: str, stored: str
) -> None:
    fake = FakeProvider()
    chat = await create_chat(database.db, create_llm(provider=fake))
    fake.reply(f"answer {text}")
    answer = await chat.ask(f"question {text}")
    assert answer.content == f"answer {stored}"
    rows = await chat.messages()
    assert [r.content for r in rows] == [f"question {stored}", f"answer {stored}"]
    # The same Chat sends the history as stored.
    await chat.ask("again")
    assert sent(fake)[-3:-1] == [("user", f"question {stored}"), ("assistant", f"answer {stored}")]


async def test_nul_and_lone_surrogates_become_replacement_characters(database: Database) -> None:
    fake = FakeProvider()
    llm = create_llm(provider=fake)
    chat = await create_chat(database.db, llm, instructions=f"Be {DIRTY}", metadata={"k": DIRTY})
    chat.with_tool(Echo)
    fake.reply_tool_call("echo", {"word": DIRTY}, content=f"calling {DIRTY}")
    fake.reply(f"answer {DIRTY}", thinking=f"thought {DIRTY}")
    answer = await chat.ask(f"question {DIRTY}")
    assert answer.content == f"answer {CLEAN}"
    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [
        ("user", f"question {CLEAN}"),
        ("assistant", f"answer {CLEAN}"),
    ]
    store = await database.store()
    (call,) = await store.list_tool_calls([rows[1].id])
    assert json.loads(call.arguments) == {"word": CLEAN}
    assert call.result == "echo a\ufffdb\ufffdc \ufffd \ufffd"
    record = await store.get_chat(chat.id)
    assert record is not None
    assert record.instructions == f"Be {CLEAN}"
    assert record.metadata == {"k": CLEAN}
    # The Chat is not poisoned, and what it sends next is what a reload sends.
    fake.reply("fine")
    await chat.ask("next")
    again = FakeProvider()
    reloaded = await load_chat(database.db, create_llm(provider=again), chat.id)
    assert reloaded is not None
    reloaded.with_tool(Echo)
    await reloaded.ask("next")
    assert sent(again)[: len(sent(fake))] == sent(fake)
    assert all("\x00" not in (c or "") for _, c in sent(fake))


async def test_a_count_over_int32_is_capped_not_a_lost_turn(database: Database) -> None:
    fake = FakeProvider()
    fake.reply("big", usage=Usage(input_tokens=3_000_000_000, output_tokens=5))
    chat = await create_chat(database.db, create_llm(provider=fake))
    answer = await chat.ask("count this")
    assert answer.content == "big"
    store = await database.store()
    (request,) = await store.list_requests(chat.id)
    assert request.inputTokens == 2**31 - 1
    rows = await chat.messages()
    assert rows[1].inputTokens == 2**31 - 1
    assert json.loads(rows[1].contentRaw or "")["usage"]["inputTokens"] == 3_000_000_000


async def test_an_abandoned_stream_keeps_its_request_row_with_status_499(
    database: Database,
) -> None:
    fake = FakeProvider(chunk_size=2)
    fake.reply("a long streamed answer")
    chat = await create_chat(database.db, create_llm(provider=fake))
    async with chat.ask_stream("stream") as stream:
        async for _ in stream:
            break
    store = await database.store()
    (request,) = await store.list_requests(chat.id)
    assert request.statusCode == 499


async def test_a_cancelled_ask_keeps_its_request_row(database: Database) -> None:
    fake = FakeProvider(latency=30)
    chat = await create_chat(database.db, create_llm(provider=fake))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(chat.ask("slow"), 0.2)
    store = await database.store()
    (request,) = await store.list_requests(chat.id)
    assert request.statusCode == 499
    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [("user", "slow")]


REFUSE = {
    "sqlite": [
        'CREATE TRIGGER refuse BEFORE UPDATE ON "LlmMessage" '
        "WHEN NEW.content LIKE '%forbidden%' BEGIN SELECT RAISE(ABORT, 'content refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.content LIKE '%forbidden%' THEN RAISE EXCEPTION 'content refused'; END IF; "
        "RETURN NEW; END $$",
        'CREATE TRIGGER refuse BEFORE UPDATE ON "LlmMessage" FOR EACH ROW EXECUTE FUNCTION '
        "refuse()",
    ],
}


@pytest.mark.parametrize("tools", [False, True])
async def test_a_refused_end_of_turn_keeps_requests_and_marks_the_row_failed(
    database: Database, tools: bool
) -> None:
    async with database.db.engine.begin() as conn:
        for statement in REFUSE[database.dialect]:
            await conn.exec_driver_sql(statement)
    fake = FakeProvider()
    chat = await create_chat(database.db, create_llm(provider=fake))
    chat.with_tool(Echo)
    if tools:
        fake.reply_tool_call("echo", {"word": "w"})
    fake.reply("this answer is forbidden")
    with pytest.raises(Exception, match="content refused"):
        await chat.ask("say it")
    store = await database.store()
    rows = await chat.messages()
    assert [r.role for r in rows] == ["user", "assistant"]
    raw = json.loads(rows[1].contentRaw or "")
    assert raw["interrupted"] is True and raw["reason"] == "error"
    assert "content refused" in raw["error"]
    assert rows[1].content == ""
    assert len(await store.list_requests(chat.id)) == (2 if tools else 1)
    # Memory agrees: the answer the database refused is not replayed by this object either.
    fake.reply("ok")
    await chat.ask("again")
    again = FakeProvider()
    reloaded = await load_chat(database.db, create_llm(provider=again), chat.id)
    assert reloaded is not None
    await reloaded.ask("third")
    assert sent(again)[: len(sent(fake))] == sent(fake)
    assert all("forbidden" not in (c or "") for _, c in sent(fake))
