"""Export/import (issues 11.3, 7.6, 10.5) and retention (11.5), through the library, on every
backend; the 100,000-message round trip on SQLite files and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, Agent, Tool, create_agent_session, create_chat, scoped_store
from nodellm_orm.retention import parse_age, purge_chats
from nodellm_orm.stores.base import RowCounts, Store
from nodellm_orm.testing import FakeProvider
from nodellm_orm.transfer import PAGE, TransferError, export_chats, import_chats
from tests.conftest import BACKENDS, CUSTOM_TABLES, SQL_BACKENDS, Backend, Database, backend_params
from tests.support.documents import HEADER, chat_records


class Weather(Tool):
    name = "get_weather"
    description = "Current weather for a city"

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> str:
        return f"Sunny in {params.city}"


class Helper(Agent):
    model = "fake-model"
    instructions = "Help."


@pytest.fixture
async def tenants(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await backend.open(tmp_path, tables=CUSTOM_TABLES, chat_columns=("userId",))
    try:
        yield opened
    finally:
        await backend.close(opened)


async def _tool_chat(db: Any, llm: LLM, fake: FakeProvider, names: Any, **columns: Any) -> str:
    chat = await create_chat(db, llm, table_names=names, **columns)
    chat.with_tool(Weather)
    fake.reply_tool_call("get_weather", {"city": "Oslo"})
    fake.reply("Sunny.")
    await chat.ask("Weather?")
    return chat.id


async def _session(db: Any, llm: LLM, fake: FakeProvider, names: Any) -> tuple[str, str]:
    session = await create_agent_session(db, llm, Helper, {"tier": "gold"}, table_names=names)
    fake.reply("Hi.")
    await session.ask("hello")
    return session.id, session.chat.id


async def _counts(store: Store) -> RowCounts:
    """Rows in every table (all chats)."""
    ids = [c.id for c in await store.list_chats(limit=10_000)]
    return await store.subtree_counts(ids) if ids else RowCounts()


async def _export(db: Any, names: Any) -> str:
    out = io.StringIO()
    await export_chats(db, out, table_names=names)
    return out.getvalue()


async def test_export_import_round_trip_carries_agent_sessions(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    names = tenants.table_names
    await _tool_chat(tenants.db, llm, fake, names, userId="alice")
    session_id, session_chat = await _session(tenants.db, llm, fake, names)
    store = await tenants.store()
    text = await _export(tenants.db, names)
    kinds = [next(iter(json.loads(line))) for line in text.splitlines()]
    assert kinds.count("agentSession") == 1 and kinds.count("chat") == 2
    before = await _counts(store)

    await store.delete_chats([c.id for c in await store.list_chats()])
    assert await _counts(store) == RowCounts()
    assert await import_chats(tenants.db, text.splitlines(), table_names=names) == 2
    assert await _counts(store) == before
    session = await store.get_agent_session(session_id)
    assert session is not None and session.chatId == session_chat
    assert session.metadata == {"tier": "gold"}
    assert await _export(tenants.db, names) == text


def _doc(chat_id: str, when: str = "2026-01-01T00:00:00Z") -> list[dict[str, Any]]:
    """A small, sound export document: a chat, its session, a message, a tool call, a request."""
    return [dict(HEADER), *chat_records(chat_id, when)]


def _lines(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) for r in records]


# (what to break: record index, field, value) -> words the error must contain
BROKEN = [
    ((3, "chatId", "victim"), ["message 'doc-m'", "'chatId'", "'victim'", "'doc'"]),
    ((5, "chatId", "victim"), ["request 'doc-r'", "'chatId'", "'victim'"]),
    ((2, "chatId", "victim"), ["agentSession 'doc-s'", "'chatId'", "'victim'"]),
    ((4, "messageId", "victim-m"), ["toolCall 'doc-t'", "'messageId'", "'victim-m'"]),
    ((5, "messageId", "victim-m"), ["request 'doc-r'", "'messageId'", "'victim-m'"]),
    ((5, "inputTokens", "12"), ["request 'doc-r'", "'inputTokens'", "integer"]),
    ((5, "statusCode", True), ["'statusCode'", "integer"]),
    ((3, "content", 5), ["message 'doc-m'", "'content'", "string"]),
    ((3, "createdAt", "yesterday"), ["'createdAt'", "ISO-8601"]),
    ((1, "metadata", {"ok": True}), None),  # a sound change: imported
    ((3, "role", None), ["'role'", "required"]),
    ((3, "sneaky", 1), ["unknown field", "'sneaky'"]),
    ((1, "userId", {"x": 1}), ["'userId'", "scalar"]),
]


@pytest.mark.parametrize(("change", "words"), BROKEN)
async def test_import_refuses_rows_of_other_chats_and_wrong_types(
    tenants: Database,
    llm: LLM,
    fake: FakeProvider,
    change: tuple[int, str, Any],
    words: list[str] | None,
) -> None:
    names = tenants.table_names
    store = await tenants.store()
    # The victim: an existing chat whose rows the document tries to join.
    victim = _doc("victim")
    assert await import_chats(tenants.db, _lines(victim), table_names=names) == 1
    before = await _counts(store)
    victim_text = await _export(tenants.db, names)

    records = _doc("doc")
    index, field, value = change
    ((_kind, data),) = records[index].items()
    data[field] = value
    source = "doc.jsonl"
    if words is None:
        assert await import_chats(tenants.db, _lines(records), source=source, table_names=names)
        return
    with pytest.raises(TransferError) as caught:
        await import_chats(tenants.db, _lines(records), source=source, table_names=names)
    message = str(caught.value)
    assert message.startswith("doc.jsonl: line ") and "nothing was imported" in message
    for word in words:
        assert word in message
    assert await _counts(store) == before
    assert await _export(tenants.db, names) == victim_text


async def test_import_through_a_scoped_handle_stamps_and_refuses_other_tenants(
    tenants: Database,
) -> None:
    names = tenants.table_names
    store = await tenants.store()
    alice = scoped_store(tenants.db, userId="alice")
    assert await import_chats(alice, _lines(_doc("a1")), table_names=names) == 1
    chat = await store.get_chat("a1")
    assert chat is not None and chat["userId"] == "alice"
    records = _doc("b1")
    records[1]["chat"]["userId"] = "bob"
    with pytest.raises(Exception, match="userId"):
        await import_chats(alice, _lines(records), table_names=names)
    assert await store.get_chat("b1") is None


async def test_delete_removes_everything_under_a_chat_and_a_session(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    from nodellm_orm import load_agent_session, load_chat

    names = tenants.table_names
    keep = await _tool_chat(tenants.db, llm, fake, names)
    gone = await _tool_chat(tenants.db, llm, fake, names)
    session_id, _ = await _session(tenants.db, llm, fake, names)
    store = await tenants.store()
    kept = await store.subtree_counts([keep])
    assert kept.messages and kept.toolCalls and kept.requests

    chat = await load_chat(tenants.db, llm, gone, table_names=names)
    assert chat is not None
    await chat.delete()
    session = await load_agent_session(tenants.db, llm, Helper, session_id, table_names=names)
    assert session is not None
    await session.delete()
    # Every table, counted directly: only the kept chat's rows remain.
    assert await _counts(store) == kept
    assert await store.get_agent_session(session_id) is None


async def test_purge_reports_what_it_deletes(
    tenants: Database, llm: LLM, fake: FakeProvider
) -> None:
    names = tenants.table_names
    store = await tenants.store()
    old = "2020-01-01T00:00:00Z"
    await import_chats(tenants.db, _lines(_doc("old1", old)), table_names=names)
    records = _doc("old2", old)
    records[1]["chat"]["userId"] = "alice"
    await import_chats(tenants.db, _lines(records), table_names=names)
    fresh = await _tool_chat(tenants.db, llm, fake, names, userId="alice")
    everything = await _counts(store)

    dry = await purge_chats(
        tenants.db, older_than=timedelta(days=30), dry_run=True, table_names=names
    )
    assert dry.counts == RowCounts(2, 2, 2, 2, 2) and dry.dry_run
    assert await _counts(store) == everything

    scoped = await purge_chats(
        tenants.db,
        older_than=timedelta(days=30),
        where={"userId": "alice"},
        table_names=names,
        batch_size=1,
    )
    assert scoped.counts == RowCounts(1, 1, 1, 1, 1)
    assert await store.get_chat("old2") is None and await store.get_chat("old1") is not None

    rest = await purge_chats(tenants.db, older_than=timedelta(days=30), table_names=names)
    assert rest.counts == RowCounts(1, 1, 1, 1, 1)
    assert [c.id for c in await store.list_chats()] == [fresh]


def test_parse_age() -> None:
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("2w") == timedelta(weeks=2)
    with pytest.raises(ValueError, match="not an age"):
        parse_age("soon")


# ---- 100,000 messages ------------------------------------------------------------------------

BIG = 100_000


@pytest.mark.parametrize("backend_name", backend_params(SQL_BACKENDS))
async def test_a_chat_of_100000_messages_exports_and_imports(
    backend_name: str, tmp_path: Path, llm: LLM
) -> None:
    backend = BACKENDS[backend_name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    source = await backend.open(tmp_path / "a", tables=None, chat_columns=())
    target = await backend.open(tmp_path / "b", tables=None, chat_columns=())
    try:
        store = await source.store()
        chat = await create_chat(source.db, llm)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for first in range(0, BIG, 2000):
            await store.insert_messages(
                [
                    {
                        "id": f"m{i:06d}",
                        "chatId": chat.id,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": f"message {i}",
                        "createdAt": start + timedelta(milliseconds=i),
                    }
                    for i in range(first, first + 2000)
                ]
            )
        dump = tmp_path / "big.jsonl"
        seen: list[tuple[int, int | None]] = []
        with dump.open("w", encoding="utf-8") as out:
            assert (
                await export_chats(source.db, out, progress=lambda d, t: seen.append((d, t))) == 1
            )
        assert seen[-1] == (BIG + 1, BIG + 1) and len(seen) > BIG // PAGE  # progress per page
        with dump.open(encoding="utf-8") as lines:
            assert await import_chats(target.db, lines) == 1
        copied = await target.store()
        assert await copied.count_messages(chat.id) == BIG
        rows = await copied.list_messages(chat.id, limit=3)
        assert [r.id for r in rows] == ["m000000", "m000001", "m000002"]
    finally:
        await backend.close(source)
        await backend.close(target)
