"""One database, two clients: nodellm-orm and the real @node-llm/orm 0.8.0 from npm.

The JS side (tools/js-interop, pinned by its package-lock.json) is @node-llm/orm 0.8.0 on
@node-llm/core 1.17.1 and Prisma 7 with the better-sqlite3 and pg driver adapters in their
default set-up, with a scripted provider registered in @node-llm/core. The package ships no
dist/, so its src/ is transpiled once per session (tools/js-interop/build.mjs), and its own
schema.prisma (provider switched, Prisma 7's url-less datasource) is generated into a client
offline: `prisma generate` only needs the schema engine's presence, which a stub satisfies.

`prisma db push` / `migrate` need that engine for real and it is not installable offline, so
"a database the JS side created" is one where the JS process ran Prisma Migrate's own DDL for
the schema (the shipped init migration, which is that output) through its adapter.

Each scenario checks order and content on both sides: what each side reads from the tables
and what each side sends its provider as the history.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    Agent,
    Tool,
    connect,
    create_agent_session,
    create_chat,
    create_llm,
    load_agent_session,
    load_chat,
)
from nodellm_orm.migrations import load_migrations
from nodellm_orm.testing import FakeProvider
from tests.conftest import postgres_server, sql_dialects, unavailable
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.toolchain

JS_DIR = Path(__file__).resolve().parent.parent / "tools" / "js-interop"


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"Sunny in {params.city}"


class Helper(Agent):
    # The JS side's agent class has the same name: sessions are checked by class name.
    instructions = "Help."


@dataclass
class JsSide:
    work: Path
    orm: str

    def client(self, provider: str) -> str:
        return str(self.work / f"client-{provider}")

    def run(self, provider: str, url: str, steps: list[dict[str, Any]]) -> list[Any]:
        request = {
            "client": self.client(provider),
            "orm": self.orm,
            "provider": provider,
            "url": url,
            "steps": steps,
        }
        done = subprocess.run(
            ["node", str(JS_DIR / "client.mjs")],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"JS side failed ({done.returncode}):\n{done.stderr[-4000:]}")
        results: list[Any] = json.loads(done.stdout)["results"]
        return results


def _js_schema(provider: str, output: Path) -> str:
    """The JS package's own schema.prisma, as a Prisma 7 user on `provider` adapts it."""
    text = (JS_DIR / "node_modules" / "@node-llm" / "orm" / "schema.prisma").read_text()
    text = text.replace('provider = "postgresql"', f'provider = "{provider}"', 1)
    text = re.sub(r'\n\s*url\s*=\s*env\("DATABASE_URL"\)', "", text)  # Prisma 7: no url
    return text.replace(
        'provider = "prisma-client-js"', f'provider = "prisma-client-js"\n  output   = "{output}"'
    )


@pytest.fixture(scope="module")
def js(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsSide]:
    if shutil.which("node") is None:
        unavailable("node is not installed")
    if not (JS_DIR / "node_modules" / "@node-llm" / "orm").is_dir():
        unavailable("tools/js-interop has no node_modules (run `npm ci` there)")
    work = tmp_path_factory.mktemp("js")
    built = subprocess.run(
        ["node", str(JS_DIR / "build.mjs"), str(work)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    orm = json.loads(built.stdout)["orm"]
    env = {
        **os.environ,
        # generate only checks that a schema engine exists; it never runs it.
        "PRISMA_SCHEMA_ENGINE_BINARY": shutil.which("false") or "/bin/false",
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    for provider in ("sqlite", "postgresql"):
        schema = work / f"schema-{provider}.prisma"
        schema.write_text(_js_schema(provider, work / f"client-{provider}"))
        subprocess.run(
            [str(JS_DIR / "node_modules" / ".bin" / "prisma"), "generate", "--schema", str(schema)],
            cwd=work,
            env=env,
            capture_output=True,
            check=True,
            timeout=300,
        )
    yield JsSide(work, orm)


@dataclass
class Database:
    provider: str
    url: str  # for connect()
    js_url: str  # for the JS adapter


@pytest.fixture(params=sql_dialects())
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        yield Database("sqlite", f"sqlite:///{path}", str(path))
        return
    server = postgres_server()
    url = await create_database(server, prefix="jsinterop")
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        yield Database("postgresql", url, plain)
    finally:
        await drop_database(url)


def _llm(fake: FakeProvider) -> LLM:
    return create_llm(provider=fake)


def _pairs(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m["content"]) for m in messages]


async def test_chat_we_create_is_read_and_continued_by_the_js_package(
    js: JsSide, database: Database, fake: FakeProvider
) -> None:
    db = await connect(database.url)
    llm = _llm(fake)
    try:
        fake.reply("Hello.")
        fake.reply_tool_call("get_weather", {"city": "Oslo"}, content="Checking.").reply("Sunny.")
        fake.reply("Streamed answer.")
        fake.reply("Agent hi.")
        chat = await create_chat(db, llm, instructions="Be brief.", metadata={"k": [1]})
        chat.with_tool(Weather)
        await chat.ask("Hi")
        await chat.ask("Weather in Oslo?")
        async for _ in chat.ask_stream("Stream it"):
            pass
        session = await create_agent_session(db, llm, Helper, metadata={"user": "u1"})
        await session.ask("hello agent")
    finally:
        await db.close()

    ours = [
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Weather in Oslo?"),
        ("assistant", "Sunny."),
        ("user", "Stream it"),
        ("assistant", "Streamed answer."),
    ]
    read, asked, again, session_turn = js.run(
        database.provider,
        database.js_url,
        [
            {"do": "read", "chatId": chat.id},
            {
                "do": "ask",
                "chatId": chat.id,
                "message": "From JS",
                "script": [{"content": "JS answer."}],
            },
            {"do": "read", "chatId": chat.id},
            {
                "do": "sessionAsk",
                "sessionId": session.id,
                "message": "agent again",
                "script": [{"content": "Agent again."}],
            },
        ],
    )
    # The JS package reads every row we wrote, in order, with the types its client declares.
    assert _pairs(read["messages"]) == ours
    assert read["chat"]["instructions"] == "Be brief."
    assert read["chat"]["metadata"] == {"k": [1]}  # Json: parsed, on SQLite too
    [call] = read["toolCalls"]
    assert (call["name"], json.loads(call["arguments"]), call["result"]) == (
        "get_weather",
        {"city": "Oslo"},
        "Sunny in Oslo",
    )
    assert len(read["requests"]) == 4
    # It sends that history, in order, and appends its turn after ours.
    [sent] = asked["sent"]
    assert [p for p in _pairs(sent) if p[0] != "system"] == [*ours, ("user", "From JS")]
    assert _pairs(again["messages"]) == [*ours, ("user", "From JS"), ("assistant", "JS answer.")]
    assert [p for p in _pairs(session_turn["sent"][0]) if p[0] != "system"] == [
        ("user", "hello agent"),
        ("assistant", "Agent hi."),
        ("user", "agent again"),
    ]

    # We load and continue: the JS turn is in its place in what we send.
    db = await connect(database.url)
    try:
        again_py = await load_chat(db, llm, chat.id)
        assert again_py is not None
        again_py.with_tool(Weather)
        fake.reply("Back in Python.")
        await again_py.ask("Python again")
        sent_py = [(m.role, m.content) for m in fake.requests[-1].messages if m.role != "tool"]
        assert sent_py == [
            ("system", "Be brief."),
            ("user", "Hi"),
            ("assistant", "Hello."),
            ("user", "Weather in Oslo?"),
            ("assistant", "Checking."),
            ("assistant", "Sunny."),
            ("user", "Stream it"),
            ("assistant", "Streamed answer."),
            ("user", "From JS"),
            ("assistant", "JS answer."),
            ("user", "Python again"),
        ]
        resumed = await load_agent_session(db, llm, Helper, session.id)
        assert resumed is not None
        assert resumed.metadata == {"user": "u1"}
    finally:
        await db.close()

    (final,) = js.run(database.provider, database.js_url, [{"do": "read", "chatId": chat.id}])
    assert _pairs(final["messages"]) == [
        *ours,
        ("user", "From JS"),
        ("assistant", "JS answer."),
        ("user", "Python again"),
        ("assistant", "Back in Python."),
    ]


async def test_database_the_js_side_created_is_adopted_read_and_continued(
    js: JsSide, database: Database, fake: FakeProvider
) -> None:
    ddl = load_migrations(database.provider)[0].script.decode()
    _, created, plain, streamed, session = js.run(
        database.provider,
        database.js_url,
        [
            {"do": "ddl", "sql": ddl},
            {
                "do": "create",
                "instructions": "Be brief.",
                "model": "fake-model",
                "provider": "fake",
                "metadata": {"k": [1]},
            },
            {"do": "ask", "chatId": "$chat", "message": "Hi", "script": [{"content": "Hello."}]},
            {
                "do": "stream",
                "chatId": "$chat",
                "message": "Stream it",
                "script": [{"content": "Streamed from JS."}],
            },
            {
                "do": "createSession",
                "message": "hello agent",
                "metadata": {"user": "u1"},
                "script": [{"content": "Agent hi."}],
            },
        ],
    )
    chat_id = created["chatId"]
    theirs = [
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Stream it"),
        ("assistant", "Streamed from JS."),
    ]

    llm = _llm(fake)
    db = await connect(database.url)  # migrate on: the JS side's tables are adopted as they are
    try:
        chat = await load_chat(db, llm, chat_id)
        assert chat is not None
        assert chat.record.metadata == {"k": [1]} and chat.record.instructions == "Be brief."
        assert [(r.role, r.content) for r in await chat.messages()] == theirs
        chat.with_tool(Weather)
        fake.reply_tool_call("get_weather", {"city": "Oslo"}, content="Checking.").reply("Sunny.")
        await chat.ask("Weather in Oslo?")
        sent = [(m.role, m.content) for m in fake.requests[0].messages]
        assert sent == [("system", "Be brief."), *theirs, ("user", "Weather in Oslo?")]
        agent = await load_agent_session(db, llm, Helper, session["sessionId"])
        assert agent is not None and agent.metadata == {"user": "u1"}
        fake.reply("Agent again.")
        await agent.ask("agent again")
        assert [(m.role, m.content) for m in fake.requests[-1].messages][-3:] == [
            ("user", "hello agent"),
            ("assistant", "Agent hi."),
            ("user", "agent again"),
        ]
    finally:
        await db.close()

    (final,) = js.run(database.provider, database.js_url, [{"do": "read", "chatId": chat_id}])
    assert _pairs(final["messages"]) == [
        *theirs,
        ("user", "Weather in Oslo?"),
        ("assistant", "Sunny."),
    ]
    [call] = final["toolCalls"]
    assert (call["name"], call["result"]) == ("get_weather", "Sunny in Oslo")
    assert plain["sent"] == [[{"role": "user", "content": "Hi"}]]
    assert streamed["message"]["content"] == "Streamed from JS."
