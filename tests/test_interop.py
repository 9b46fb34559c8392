"""One database, two backends: what prisma-client-py writes the sql backend reads, and back.

The database is made by our migration runner (`nodellm-orm migrate`), then used by both a
generated Prisma client (through the query-engine stand-in) and `SqlStore`. On SQLite the
stand-in's JS driver adapter writes DateTime as ISO text; the sql backend follows what the
database holds (ISO text in the adapter's exact form in a new database, epoch milliseconds
where the rows hold them), so every client reads one chat in order.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    Agent,
    Persistence,
    TableNames,
    Tool,
    connect,
    create_agent_session,
    create_chat,
    create_llm,
    load_chat,
)
from nodellm_orm.migrations import load_migrations
from nodellm_orm.migrations.runner import split_sqlite_script
from nodellm_orm.stores import StoreError
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.stores.urls import engine_for_url
from nodellm_orm.testing import FakeProvider
from tests.conftest import (
    PrismaBackend,
    postgres_server,
    prisma_dialects,
    sql_dialects,
    unavailable,
)
from tests.support.postgres import create_database, drop_database
from tests.support.prisma_engine import (
    connected_prisma,
    engine_unavailable_reason,
    prisma_database_url,
)

pytestmark = pytest.mark.toolchain


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"Sunny in {params.city}"


@dataclass
class Pair:
    dialect: str
    url: str
    sql: SqlStore
    prisma: Any


@pytest.fixture(params=prisma_dialects())
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    dialect: str = request.param
    reason = engine_unavailable_reason()
    if reason is not None:
        unavailable(f"query engine stand-in: {reason}")
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        server = postgres_server()
        url = await create_database(server, prefix="interop")
    # connect() runs the migration runner: the database is what `nodellm-orm migrate` makes.
    sql = await connect(url, migrate=True)
    try:
        async with connected_prisma(
            provider=dialect,
            database_url=prisma_database_url(url),
            work_dir=PrismaBackend.work_dir(),
        ) as (client, _):
            yield Pair(dialect, url, sql, client)
    finally:
        await sql.close()
        if dialect == "postgresql":
            await drop_database(url)


def _llm(fake: FakeProvider) -> LLM:
    return create_llm(provider=fake)


async def test_migrated_database_serves_the_prisma_client(pair: Pair) -> None:
    chat = await pair.prisma.llmchat.create(data={"model": "m"})
    await pair.prisma.llmmessage.create(data={"chatId": chat.id, "role": "user", "content": "hi"})

    record = await pair.sql.get_chat(chat.id)
    assert record is not None and record.model == "m"
    assert [m.content for m in await pair.sql.list_messages(chat.id)] == ["hi"]


async def test_chat_moves_between_backends_with_history_tools_and_order(
    pair: Pair, fake: FakeProvider
) -> None:
    llm = _llm(fake)
    fake.reply_tool_call("get_weather", {"city": "Oslo"}, content="Checking.").reply("Sunny.")
    chat = await create_chat(pair.prisma, llm, instructions="Be brief.", metadata={"k": [1]})
    chat.with_tool(Weather)
    await chat.ask("Weather in Oslo?")
    # What a request sends: the instructions, then the history.
    sent_history = [*chat.core.system_messages, *chat.core.messages]
    written_by_prisma = [m.model_dump() for m in sent_history]

    # The sql backend loads the chat and continues it with the full history.
    on_sql = await load_chat(pair.sql, llm, chat.id)
    assert on_sql is not None
    assert on_sql.record.metadata == {"k": [1]}
    on_sql.with_tool(Weather)
    fake.reply("Still sunny.")
    await on_sql.ask("And now?")
    sent = fake.requests[-1].messages
    assert [m.model_dump() for m in sent[:-1]] == written_by_prisma
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]

    # And back: the prisma backend sees both turns, in order, with the tool call intact.
    on_prisma = await load_chat(pair.prisma, llm, chat.id)
    assert on_prisma is not None
    on_prisma.with_tool(Weather)
    fake.reply("Done.")
    await on_prisma.ask("Thanks")
    sent = fake.requests[-1].messages
    assert [(m.role, m.content) for m in sent if m.role != "tool"] == [
        ("system", "Be brief."),
        ("user", "Weather in Oslo?"),
        ("assistant", "Checking."),
        ("assistant", "Sunny."),
        ("user", "And now?"),
        ("assistant", "Still sunny."),
        ("user", "Thanks"),
    ]
    assert sent[3].content == "Sunny in Oslo"
    assert sent[3].tool_call_id == sent[2].tool_calls[0].id

    for store in (pair.sql, on_prisma.store):
        rows = await store.list_messages(chat.id)
        assert [r.content for r in rows] == [
            "Weather in Oslo?",
            "Sunny.",
            "And now?",
            "Still sunny.",
            "Thanks",
            "Done.",
        ]
        created = [r.createdAt for r in rows]
        assert created == sorted(created)
        first_answer = rows[1].id
        (call,) = await store.list_tool_calls([first_answer])
        assert (call.name, json.loads(call.arguments), call.result) == (
            "get_weather",
            {"city": "Oslo"},
            "Sunny in Oslo",
        )
        usage = await store.usage(chat.id)
        assert usage.requests == 4

    if pair.dialect == "sqlite":
        # Both storage forms really are in the one table: the test covers the mixed case.
        path = pair.url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            kinds = {
                k
                for (k,) in conn.execute(
                    'SELECT DISTINCT typeof("createdAt") FROM "LlmMessage" WHERE "chatId" = ?',
                    (chat.id,),
                )
            }
        # The sql backend wrote the form the database holds: one form, in text order.
        assert kinds == {"text"}


async def test_rows_after_a_cursor_span_both_timestamp_forms(
    pair: Pair, fake: FakeProvider
) -> None:
    """A writer on one backend notices a turn another backend wrote since (catch-up)."""
    llm = _llm(fake)
    chat = await create_chat(pair.sql, llm)
    await chat.ask("one")
    other = await load_chat(pair.prisma, llm, chat.id)
    assert other is not None
    await other.ask("two")
    # `chat` (sql) has not seen "two": its next turn must pick it up, in order.
    await chat.ask("three")
    sent = [m.content for m in fake.requests[-1].messages]
    assert sent == [
        "one",
        "(fake) You said: one",
        "two",
        "(fake) You said: two",
        "three",
    ]


# --- databases made elsewhere: minimal schemas, custom names --------------------------------


@pytest.fixture(params=sql_dialects())
async def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (SQLite file or a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'made-elsewhere.db'}"
        return
    server = postgres_server()
    url = await create_database(server, prefix="interop")
    try:
        yield url
    finally:
        await drop_database(url)


async def _run_prisma_ddl(url: str, keep: Any = lambda statement: True) -> None:
    """Run Prisma Migrate's DDL for the reference models (as `prisma db push` would)."""
    engine = engine_for_url(url)
    try:
        provider = engine.dialect.name
        async with engine.begin() as conn:
            for statement in split_sqlite_script(load_migrations(provider)[0].script.decode()):
                if keep(statement):
                    await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _minimal(statement: str) -> bool:
    return not any(t in statement for t in ('"LlmToolCall"', '"LlmRequest"', '"LlmAgentSession"'))


async def test_minimal_schema_serves_chats_with_persistence_off(
    blank_url: str, fake: FakeProvider
) -> None:
    await _run_prisma_ddl(blank_url, _minimal)
    db = await connect(blank_url)  # migrate on: adopts the two tables, creates nothing
    try:
        llm = _llm(fake)
        off = Persistence(tool_calls=False, requests=False)
        fake.reply_tool_call("get_weather", {"city": "Oslo"}).reply("Sunny.")
        chat = await create_chat(db, llm, instructions="Be brief.", persistence=off)
        chat.with_tool(Weather)
        await chat.ask("Weather in Oslo?")
        again = await load_chat(db, llm, chat.id, persistence=off)
        assert again is not None
        await again.ask("Thanks")
        assert [m.content for m in fake.requests[-1].messages][-3:] == [
            "Weather in Oslo?",
            "Sunny.",
            "Thanks",
        ]
        assert (await again.stats()).input_tokens == 0
        chats_before = await db.list_chats()

        # Persistence that needs an absent table is refused before anything is written.
        with pytest.raises(StoreError, match="LlmToolCall"):
            await create_chat(db, llm, persistence=Persistence(requests=False))
        with pytest.raises(StoreError, match="LlmRequest"):
            await load_chat(db, llm, chat.id, persistence=Persistence(tool_calls=False))
        with pytest.raises(StoreError, match="LlmAgentSession"):
            await create_agent_session(db, llm, Helper, persistence=off)
        assert len(await db.list_chats()) == len(chats_before)
    finally:
        await db.close()


class Helper(Agent):
    instructions = "Help."


async def test_custom_table_names_end_to_end_through_connect(
    blank_url: str, fake: FakeProvider
) -> None:
    names = TableNames(
        chat="AssistantChat",
        message="AssistantMessage",
        tool_call="AssistantToolCall",
        request="AssistantRequest",
        agent_session="AssistantAgentSession",
    )
    db = await connect(blank_url, table_names=names)
    try:
        llm = _llm(fake)
        fake.reply_tool_call("get_weather", {"city": "Oslo"}).reply("Sunny.")
        chat = await create_chat(db, llm, table_names=names)
        chat.with_tool(Weather)
        await chat.ask("Weather in Oslo?")
        session = await create_agent_session(db, llm, Helper, table_names=names)
        await session.ask("hello")
        assert (await chat.store.usage(chat.id)).requests == 2
        with pytest.raises(StoreError, match="LlmChat"):
            await create_chat(db, llm)  # the default tables were not made
    finally:
        await db.close()


# --- SQLite DateTime: one form per database ---------------------------------------------------

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def _stored(path: Path, table: str = "LlmMessage") -> list[tuple[str, Any]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            f'SELECT typeof("createdAt"), "createdAt" FROM "{table}" ORDER BY rowid'
        ).fetchall()


async def test_new_sqlite_database_gets_the_js_adapters_iso_text(
    tmp_path: Path, fake: FakeProvider
) -> None:
    path = tmp_path / "new.db"
    db = await connect(f"sqlite:///{path}")
    try:
        chat = await create_chat(db, _llm(fake))
        await chat.ask("one")
        await chat.ask("two")
    finally:
        await db.close()
    rows = _stored(path) + _stored(path, "LlmChat") + _stored(path, "LlmRequest")
    assert rows and all(kind == "text" and ISO_MS.fullmatch(v) for kind, v in rows)
    # Text order is time order: what the JS package's orderBy createdAt relies on.
    messages = _stored(path)
    assert [v for _, v in messages] == sorted(v for _, v in messages)


async def test_sqlite_database_holding_epoch_ms_keeps_getting_epoch_ms(
    tmp_path: Path, fake: FakeProvider
) -> None:
    path = tmp_path / "native.db"
    await (await connect(f"sqlite:///{path}")).close()
    with sqlite3.connect(path) as conn:  # rows as Prisma's native engine writes them
        conn.execute('INSERT INTO "LlmChat" (id, "createdAt", "updatedAt") VALUES (\'c0\', 1, 1)')
        conn.execute(
            'INSERT INTO "LlmMessage" (id, "chatId", role, content, "createdAt") '
            "VALUES ('m0', 'c0', 'user', 'old', 1700000000000)"
        )
    db = await connect(f"sqlite:///{path}")
    try:
        chat = await load_chat(db, _llm(fake), "c0")
        assert chat is not None
        await chat.ask("new")
        assert [r.content for r in await chat.messages()] == ["old", "new", "(fake) You said: new"]
    finally:
        await db.close()
    assert {kind for kind, _ in _stored(path)} == {"integer"}
