"""The persistence behaviour users rely on (SPEC section 4), on every backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    RateLimitError,
    ServerError,
    Tool,
    Usage,
    create_chat,
    create_llm,
    load_chat,
)
from nodellm_orm.core.providers.base import RetryPolicy
from nodellm_orm.testing import FakeProvider, FakeResponse
from tests.conftest import Database, on_backends


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"Sunny in {params.city}"


async def test_create_and_load_chat_keep_the_columns(database: Database, llm: LLM) -> None:
    chat = await create_chat(
        database.db, llm, model="fake-model", instructions="Be brief.", metadata={"team": "a"}
    )
    loaded = await load_chat(database.db, llm, chat.id)
    assert loaded is not None
    assert loaded.id == chat.id
    assert loaded.record.model == "fake-model"
    assert loaded.record.provider == "fake"
    assert loaded.record.instructions == "Be brief."
    assert loaded.record.metadata == {"team": "a"}
    assert await load_chat(database.db, llm, "no-such-chat") is None


async def test_ask_stores_the_user_and_the_assistant_row(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply("Paris.", usage=Usage(input_tokens=12, output_tokens=3))
    chat = await create_chat(database.db, llm)
    answer = await chat.ask("Capital of France?")

    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
    ]
    stored = rows[1]
    assert answer.id == stored.id
    assert (stored.inputTokens, stored.outputTokens) == (12, 3)
    assert (stored.modelId, stored.provider) == ("fake-model", "fake")
    raw = json.loads(stored.contentRaw or "")
    assert raw["finishReason"] == "stop"
    assert raw["usage"] == {"inputTokens": 12, "outputTokens": 3}
    assert "interrupted" not in raw


async def test_instructions_reach_the_model_also_after_reload(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    chat = await create_chat(database.db, llm, instructions="Answer in French.")
    await chat.ask("Hello")
    first = fake.requests[-1].messages
    assert (first[0].role, first[0].content) == ("system", "Answer in French.")

    reloaded = await load_chat(database.db, llm, chat.id)
    assert reloaded is not None
    await reloaded.ask("Again")
    sent = [(m.role, m.content) for m in fake.requests[-1].messages]
    assert sent == [
        ("system", "Answer in French."),
        ("user", "Hello"),
        ("assistant", "(fake) You said: Hello"),
        ("user", "Again"),
    ]


async def test_tool_calls_are_rows_with_json_arguments_and_results(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("get_weather", {"city": "Paris"}).reply("It is sunny in Paris.")
    chat = await create_chat(database.db, llm)
    chat.with_tool(Weather)
    answer = await chat.ask("Weather in Paris?")

    assert answer.content == "It is sunny in Paris."
    store = await database.store()
    (call,) = await store.list_tool_calls([answer.id])
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.result == "Sunny in Paris"
    assert call.messageId == answer.id
    # One assistant row for the whole turn.
    assert [r.role for r in await chat.messages()] == ["user", "assistant"]


async def test_history_replays_tool_rounds_to_a_fresh_chat_object(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("get_weather", {"city": "Oslo"}, content="Let me check.")
    fake.reply("Sunny.")
    chat = await create_chat(database.db, llm, instructions="Be helpful.")
    chat.with_tool(Weather)
    await chat.ask("Weather in Oslo?")
    # What a request sends: the instructions, then the history.
    sent_history = [*chat.core.system_messages, *chat.core.messages]
    in_memory = [m.model_dump() for m in sent_history]

    reloaded = await load_chat(database.db, llm, chat.id)
    assert reloaded is not None
    reloaded.with_tool(Weather)
    await reloaded.ask("And tomorrow?")
    sent = fake.requests[-1].messages
    assert [m.model_dump() for m in sent[:-1]] == in_memory
    roles = [m.role for m in sent]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assistant_call = sent[2]
    assert assistant_call.content == "Let me check."
    assert assistant_call.tool_calls[0].arguments == {"city": "Oslo"}
    assert sent[3].tool_call_id == assistant_call.tool_calls[0].id
    assert sent[3].content == "Sunny in Oslo"


async def test_every_round_trip_is_a_request_row_with_real_figures(
    database: Database, fake: FakeProvider
) -> None:
    fake.latency = 0.02
    llm = create_llm(provider=fake)
    fake.reply_tool_call("get_weather", {"city": "Rome"})
    fake.reply("Warm.", usage=Usage(input_tokens=40, output_tokens=2, cost=0.0015))
    chat = await create_chat(database.db, llm)
    chat.with_tool(Weather)
    answer = await chat.ask("Weather in Rome?")

    store = await database.store()
    requests = await store.list_requests(chat.id)
    assert len(requests) == 2
    assert all(r.statusCode == 200 for r in requests)
    assert all(r.duration >= 15 for r in requests)
    assert all(r.messageId == answer.id for r in requests)
    assert (requests[1].inputTokens, requests[1].outputTokens) == (40, 2)
    assert requests[1].cost == pytest.approx(0.0015)
    assert (requests[0].provider, requests[0].model) == ("fake", "fake-model")


async def test_provider_error_keeps_question_and_failed_request_but_no_placeholder(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.fail(429, "rate limited")
    chat = await create_chat(database.db, llm)
    with pytest.raises(RateLimitError) as info:
        await chat.ask("Hello?")
    assert info.value.status_code == 429

    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [("user", "Hello?")]
    store = await database.store()
    (request,) = await store.list_requests(chat.id)
    assert request.statusCode == 429
    assert request.messageId is None

    # The chat goes on, and the unanswered question is still part of the history.
    await chat.ask("Still there?")
    assert [m.content for m in fake.requests[-1].messages] == ["Hello?", "Still there?"]


async def test_failure_after_a_tool_round_keeps_the_round(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("get_weather", {"city": "Lima"}).fail(500, "upstream down")
    chat = await create_chat(database.db, llm)
    chat.with_tool(Weather)
    with pytest.raises(ServerError):
        await chat.ask("Weather in Lima?")

    rows = await chat.messages()
    assert [r.role for r in rows] == ["user", "assistant"]
    assert rows[1].content is not None
    raw = json.loads(rows[1].contentRaw or "")
    assert raw["interrupted"] is True and raw["reason"] == "error"
    store = await database.store()
    (call,) = await store.list_tool_calls([rows[1].id])
    assert call.result == "Sunny in Lima"
    assert [r.statusCode for r in await store.list_requests(chat.id)] == [200, 500]

    reloaded = await load_chat(database.db, llm, chat.id)
    assert reloaded is not None
    await reloaded.ask("Try again")
    roles = [m.role for m in fake.requests[-1].messages]
    assert roles == ["user", "assistant", "tool", "user"]


async def test_stream_yields_chunks_then_persists_with_usage(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 4
    fake.reply("Streaming works fine.", usage=Usage(input_tokens=7, output_tokens=4))
    chat = await create_chat(database.db, llm)
    store = await database.store()

    stream = chat.ask_stream("Stream please")
    texts = []
    async for chunk in stream:
        texts.append(str(chunk))
        if len(texts) == 2:
            # Nothing is written while chunks flow: the row is still the placeholder.
            rows = await store.list_messages(chat.id)
            assert rows[-1].content == ""
    assert "".join(texts) == "Streaming works fine."
    assert len(texts) > 3
    assert stream.message is not None
    assert stream.message.content == "Streaming works fine."
    (row,) = [r for r in await chat.messages() if r.role == "assistant"]
    assert (row.content, row.inputTokens, row.outputTokens) == ("Streaming works fine.", 7, 4)


async def test_abandoned_stream_keeps_partial_text_marked_interrupted(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 5
    fake.reply("One two three four five six.")
    chat = await create_chat(database.db, llm)
    stream = chat.ask_stream("Count")
    async with stream:
        async for chunk in stream:
            assert str(chunk) == "One t"
            break

    rows = await chat.messages()
    assert [(r.role, r.content) for r in rows] == [("user", "Count"), ("assistant", "One t")]
    raw = json.loads(rows[1].contentRaw or "")
    assert (raw["interrupted"], raw["reason"]) == (True, "aborted")


async def test_stream_failing_after_content_keeps_it_marked(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 3
    fake.reply("abcdefghij", fail_after_chunks=2, error="connection reset", status_code=502)
    chat = await create_chat(database.db, llm)
    received = []
    with pytest.raises(ServerError):
        async for chunk in chat.ask_stream("Go"):
            received.append(str(chunk))
    assert received == ["abc", "def"]
    rows = await chat.messages()
    assert rows[-1].content == "abcdef"
    raw = json.loads(rows[-1].contentRaw or "")
    assert raw["reason"] == "error" and "connection reset" in raw["error"]
    store = await database.store()
    assert [r.statusCode for r in await store.list_requests(chat.id)] == [502]


async def test_messages_keep_ask_order_within_one_millisecond(database: Database, llm: LLM) -> None:
    chat = await create_chat(database.db, llm)
    for i in range(15):
        await chat.ask(f"q{i}")
    rows = await chat.messages()
    users = [r.content for r in rows if r.role == "user"]
    assert users == [f"q{i}" for i in range(15)]
    assert [r.role for r in rows] == ["user", "assistant"] * 15


async def test_two_chat_objects_on_one_chat_see_each_other(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    first = await create_chat(database.db, llm)
    await first.ask("from first")
    second = await load_chat(database.db, llm, first.id)
    assert second is not None
    await second.ask("from second")
    await first.ask("first again")
    sent = [m.content for m in fake.requests[-1].messages]
    assert sent == [
        "from first",
        "(fake) You said: from first",
        "from second",
        "(fake) You said: from second",
        "first again",
    ]


async def test_stats_sum_every_request(database: Database, llm: LLM, fake: FakeProvider) -> None:
    fake.reply("a", usage=Usage(input_tokens=10, output_tokens=1, cost=0.5))
    fake.reply("b", usage=Usage(input_tokens=20, output_tokens=2, cost=0.25))
    chat = await create_chat(database.db, llm)
    await chat.ask("1")
    await chat.ask("2")
    stats = await chat.stats()
    assert (stats.input_tokens, stats.output_tokens) == (30, 3)
    assert stats.cost == pytest.approx(0.75)


async def test_persistence_switches_skip_optional_rows(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply_tool_call("get_weather", {"city": "Kyiv"}).reply("Cold.")
    chat = await create_chat(database.db, llm, persistence={"tool_calls": False, "requests": False})
    chat.with_tool(Weather)
    answer = await chat.ask("Weather?")
    store = await database.store()
    assert await store.list_tool_calls([answer.id]) == []
    assert await store.list_requests(chat.id) == []
    assert answer.content == "Cold."


async def test_delete_removes_the_chat_and_its_rows(database: Database, llm: LLM) -> None:
    chat = await create_chat(database.db, llm)
    await chat.ask("hi")
    await chat.delete()
    assert await load_chat(database.db, llm, chat.id) is None
    store = await database.store()
    assert await store.list_messages(chat.id) == []
    assert await store.list_requests(chat.id) == []


async def test_concurrent_asks_on_one_chat_are_serialised(database: Database, llm: LLM) -> None:
    chat = await create_chat(database.db, llm)
    await asyncio.gather(chat.ask("a"), chat.ask("b"), chat.ask("c"))
    rows = await chat.messages()
    assert [r.role for r in rows] == ["user", "assistant"] * 3
    for question, answer in zip(rows[::2], rows[1::2], strict=True):
        assert answer.content == f"(fake) You said: {question.content}"


async def test_fake_stream_chunks_are_the_same_response_as_ask(
    database: Database, fake: FakeProvider
) -> None:
    fake.queue.extend([FakeResponse("same text"), FakeResponse("same text")])
    llm = create_llm(provider=fake)
    chat = await create_chat(database.db, llm)
    asked = await chat.ask("x")
    stream = chat.ask_stream("x")
    async for _ in stream:
        pass
    assert stream.message is not None
    assert (asked.content, asked.outputTokens) == (
        stream.message.content,
        stream.message.outputTokens,
    )


async def test_thinking_is_stored_and_replayed(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply(
        "42.",
        thinking="Six times seven.",
        thinking_signature="sig-abc",
        usage=Usage(input_tokens=5, output_tokens=9, reasoning_tokens=6),
    )
    chat = await create_chat(database.db, llm)
    answer = await chat.ask("Meaning of life?")
    assert (answer.thinkingText, answer.thinkingSignature) == ("Six times seven.", "sig-abc")
    assert answer.thinkingTokens == 6

    reloaded = await load_chat(database.db, llm, chat.id)
    assert reloaded is not None
    await reloaded.ask("Why?")
    replayed = fake.requests[-1].messages[1]
    assert replayed.thinking is not None
    assert (replayed.thinking.text, replayed.thinking.signature) == ("Six times seven.", "sig-abc")


async def test_correction_rounds_are_recorded_per_request(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    class Answer(BaseModel):
        value: int

    fake.reply("forty-two").reply('{"value": 42}')
    chat = await create_chat(database.db, llm, schema=Answer)
    answer = await chat.ask("The answer?")
    assert answer.content == '{"value": 42}'
    store = await database.store()
    requests = await store.list_requests(chat.id)
    assert [r.correctionRounds for r in requests] == [0, 1]
    assert [(r.role, r.content) for r in await chat.messages()] == [
        ("user", "The answer?"),
        ("assistant", '{"value": 42}'),
    ]


async def test_stream_left_by_break_is_finalised_without_a_context_manager(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 4
    fake.reply("Partial answers are kept.")
    chat = await create_chat(database.db, llm)
    async for _chunk in chat.ask_stream("Go"):
        break
    # The event loop finalises the abandoned generator soon after; nothing is awaited here.
    for _ in range(200):
        rows = await chat.messages()
        if rows[-1].content:
            break
        await asyncio.sleep(0.01)
    assert rows[-1].content == "Part"
    assert json.loads(rows[-1].contentRaw or "")["reason"] == "aborted"
    # The chat is usable again, and the partial answer is part of its history.
    await chat.ask("Next")
    assert [m.content for m in fake.requests[-1].messages] == ["Go", "Part", "Next"]


async def test_naming_the_llms_own_provider_keeps_its_configuration(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.reply("scripted answer")
    chat = await create_chat(database.db, llm, provider="fake")
    assert (await chat.ask("hi")).content == "scripted answer"


async def test_asking_a_deleted_chat_says_so(database: Database, llm: LLM) -> None:
    chat = await create_chat(database.db, llm)
    other = await load_chat(database.db, llm, chat.id)
    assert other is not None
    await other.delete()
    with pytest.raises(LookupError, match=f"chat {chat.id} no longer exists"):
        await chat.ask("anyone?")


async def test_a_retried_failure_is_a_request_row_of_its_own(database: Database) -> None:
    fake = FakeProvider(retry=RetryPolicy(attempts=3, base_delay=0, jitter=0))
    fake.fail(429, "slow down").fail(503, "overloaded").reply("finally")
    chat = await create_chat(database.db, create_llm(provider=fake))
    answer = await chat.ask("Hello?")
    assert answer.content == "finally"
    store = await database.store()
    requests = await store.list_requests(chat.id)
    assert [r.statusCode for r in requests] == [429, 503, 200]
    assert all(r.messageId == answer.id for r in requests)
    assert [(r.inputTokens, r.outputTokens) for r in requests[:2]] == [(0, 0), (0, 0)]


async def test_a_turn_in_flight_elsewhere_is_read_once_it_has_ended(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    fake.chunk_size = 5
    fake.reply("Answer to A.")
    first = await create_chat(database.db, llm)
    second = await load_chat(database.db, llm, first.id)
    assert second is not None

    stream = first.ask_stream("from A")
    chunks = stream.__aiter__()
    await chunks.__anext__()  # A's turn has begun: its placeholder is in the table
    fake.queue.appendleft(FakeResponse("Answer to B."))
    await second.ask("from B")
    async for _ in chunks:  # A's turn ends
        pass

    await second.ask("B again")
    sent = [m.content for m in fake.requests[-1].messages]
    assert sent == ["from A", "Answer to A.", "from B", "Answer to B.", "B again"]


# Only SQLite's count check notices deletions (PostgreSQL counts new rows).
@on_backends("sql-sqlite", "prisma-sqlite")
async def test_rows_deleted_elsewhere_leave_the_history_on_sqlite(
    database: Database, llm: LLM, fake: FakeProvider
) -> None:
    chat = await create_chat(database.db, llm)
    await chat.ask("forget me")
    await chat.ask("keep me")
    store = await database.store()
    for row in (await store.list_messages(chat.id))[:2]:
        await store.delete_message(row.id)
    await chat.ask("noticed?")  # the count shows rows went missing
    await chat.ask("and now")  # so this turn re-reads the history first
    sent = [m.content for m in fake.requests[-1].messages]
    assert sent == [
        "keep me",
        "(fake) You said: keep me",
        "noticed?",
        "(fake) You said: noticed?",
        "and now",
    ]
