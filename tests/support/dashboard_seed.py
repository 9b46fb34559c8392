"""A small database for the dashboard's tests, written through the library's own turns.

Chats of two users (a custom `userId` column) on two models: a tool turn, a turn with
thinking, a failed turn (the provider answers 500: only the question and the request row
stay), a stream interrupted half-way, and an agent session with metadata (on SQLite its
dates are rewritten as ISO-8601 text, as Prisma's JS driver adapters store them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nodellm_orm import Agent, Tool, connect, create_agent_session, create_chat, create_llm
from nodellm_orm.core.messages import Usage
from nodellm_orm.stores.urls import async_url
from nodellm_orm.testing import FakeProvider, FakeResponse
from tests.conftest import postgres_server
from tests.support.postgres import create_database


class GetWeather(Tool):
    name = "get_weather"
    description = "Current weather for a city."

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> dict[str, Any]:
        return {"city": params.city, "temperature_c": 18, "conditions": "sunny"}


class SupportAgent(Agent):
    model = "gpt-4o-mini"
    instructions = "You help customers with their orders."


@dataclass
class Seeded:
    url: str
    tool_chat: str = ""
    failed_chat: str = ""
    interrupted_chat: str = ""
    session_chat: str = ""
    chats_of: dict[str, list[str]] = field(default_factory=dict)


async def fresh_url(dialect: str, tmp_path: Path, name: str) -> str:
    """A new, empty database of `dialect` ("sqlite": a file in `tmp_path`; "postgresql": one
    on the test server), by URL."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    server = postgres_server()
    assert server is not None
    return await create_database(server, prefix=name)


def _usage(inp: int, out: int, cost: float, reasoning: int = 0) -> Usage:
    return Usage(input_tokens=inp, output_tokens=out, cost=cost, reasoning_tokens=reasoning)


async def seed(url: str) -> Seeded:
    """Fill the (migrated here) database at `url`; returns the ids the tests look at."""
    store = await connect(url)
    out = Seeded(url=url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT'))

        fake = FakeProvider()
        llm = create_llm(fake)

        # ada: a tool turn, then an answer with thinking.
        fake.queue.append(
            FakeResponse(tool_calls=[("get_weather", {"city": "Paris"})], delay=0.004)
        )
        fake.queue.append(
            FakeResponse(content="It is sunny in Paris.", usage=_usage(120, 8, 0.0021), delay=0.01)
        )
        fake.queue.append(
            FakeResponse(
                content="Take the metro.",
                thinking="The user asks how to get around; the metro is fastest.",
                usage=_usage(160, 12, 0.0032, reasoning=40),
                delay=0.02,
            )
        )
        chat = await create_chat(store, llm, model="gpt-4o-mini", userId="u-ada")
        chat.with_tool(GetWeather)
        await chat.ask("What's the weather in Paris?")
        await chat.ask("How should I get to the Louvre?")
        out.tool_chat = chat.id

        # bob: one good turn, then the provider fails (no assistant row is kept).
        fake.queue.append(
            FakeResponse(content="Hello Bob.", usage=_usage(30, 3, 0.0150), delay=0.03)
        )
        fake.fail(500, "upstream exploded")
        chat = await create_chat(
            store, llm, model="claude-sonnet-4", provider="fake", userId="u-bob"
        )
        await chat.ask("Hi!")
        try:
            await chat.ask("Are you there?")
        except Exception:
            pass
        else:  # pragma: no cover - the fake was told to fail
            raise AssertionError("the scripted failure did not fail")
        out.failed_chat = chat.id

        # ada again: a stream that breaks after some text (kept, marked interrupted).
        fake.queue.append(
            FakeResponse(
                content="Once upon a time there was a very long story",
                usage=_usage(50, 9, 0.0010),
                status_code=502,
                error="stream broke",
                fail_after_chunks=2,
            )
        )
        chat = await create_chat(store, llm, model="gpt-4o-mini", userId="u-ada")
        try:
            async with chat.ask_stream("Tell me a long story.") as stream:
                async for _ in stream:
                    pass
        except Exception:
            pass
        out.interrupted_chat = chat.id

        fake.queue.append(
            FakeResponse(content="Order A-1 shipped.", usage=_usage(70, 5, 0.0007), delay=0.002)
        )
        session = await create_agent_session(store, llm, SupportAgent, metadata={"ticket": 7})
        await session.ask("Where is order A-1?")
        out.session_chat = session.chat_id if hasattr(session, "chat_id") else session.chat.id
        if store.dialect == "sqlite":
            # SQLite databases hold epoch-ms integers (Prisma's native engine) or ISO-8601 text
            # (Prisma's JS adapters; what the store writes in a new database): give one chat the
            # other form, so both are read in one database.
            iso = (
                "CASE typeof(\"createdAt\") WHEN 'integer' "
                "THEN strftime('%Y-%m-%dT%H:%M:%fZ', \"createdAt\" / 1000.0, 'unixepoch') "
                'ELSE CAST(round((julianday("createdAt") - 2440587.5) * 86400000) AS INTEGER) END'
            )
            async with store.engine.begin() as conn:
                for table, key in (
                    ("LlmChat", "id"),
                    ("LlmMessage", "chatId"),
                    ("LlmRequest", "chatId"),
                ):
                    await conn.execute(
                        text(f'UPDATE "{table}" SET "createdAt" = {iso} WHERE "{key}" = :c'),
                        {"c": out.session_chat},
                    )
        out.chats_of = {
            "u-ada": [out.tool_chat, out.interrupted_chat],
            "u-bob": [out.failed_chat],
        }
    finally:
        await store.close()
    return out


async def long_chat(url: str, turns: int, failing: tuple[int, ...] = ()) -> str:
    """Add a chat of `turns` turns (user u-long) whose `failing` turns get a 500 from the
    provider (their question and request row stay, no answer); returns its id."""
    store = await connect(url)
    fake = FakeProvider()
    try:
        chat = await create_chat(store, create_llm(fake), model="gpt-4o-mini", userId="u-long")
        for turn in range(turns):
            if turn in failing:
                fake.fail(500, "upstream exploded")
            else:
                fake.queue.append(
                    FakeResponse(content=f"Answer {turn}.", usage=_usage(10 + turn, 2, 0.0001))
                )
            try:
                await chat.ask(f"Question {turn}?")
            except Exception:
                if turn not in failing:
                    raise
    finally:
        await store.close()
    return chat.id


async def sql(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    """Raw SQL on a seeded database, through an engine of the test's own."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(query), params)]
    finally:
        await engine.dispose()
