"""SqlStore against real databases: a SQLite file, and PostgreSQL when NODELLM_TEST_PG_URL is set.

Each PostgreSQL test runs in a schema of its own (search_path), dropped afterwards.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from nodellm_orm.migrations.rename import rename_identifiers
from nodellm_orm.migrations.runner import split_sqlite_script
from nodellm_orm.model import TableNames
from nodellm_orm.stores.base import AdminStore, Store, StoreError, TurnBegun, TurnStore
from nodellm_orm.stores.sql import SqlStore, connect, normalize_url
from tests.conftest import migration_sql, postgres_server, sql_dialects


def ddl(dialect: str, rename: dict[str, str] | None = None) -> list[str]:
    # The shipped init migration: the DDL Prisma Migrate generates (test_migrations checks it).
    text = rename_identifiers(migration_sql(dialect), rename or {})
    return [s for s in split_sqlite_script(text) if not s.upper().startswith("CREATE SCHEMA")]


Factory = Callable[..., Awaitable[SqlStore]]


@pytest.fixture(params=sql_dialects())
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Build a store over a fresh database; `rename` maps default table names to others."""
    dialect: str = request.param
    pg_url = postgres_server() if dialect == "postgresql" else None
    stores: list[SqlStore] = []
    schemas: list[str] = []

    async def factory(
        rename: dict[str, str] | None = None, extra: tuple[str, ...] = ()
    ) -> SqlStore:
        if dialect == "sqlite":
            path = tmp_path / f"db{len(stores)}.sqlite"
            with sqlite3.connect(path) as conn:
                for stmt in [*ddl("sqlite", rename), *extra]:
                    conn.execute(stmt)
            store = await connect(f"sqlite:///{path}", migrate=False)
        else:
            assert pg_url is not None
            schema = f"t_{uuid.uuid4().hex[:12]}"
            schemas.append(schema)
            store = await connect(
                pg_url,
                migrate=False,
                connect_args={"server_settings": {"search_path": schema}},
            )
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                for stmt in [*ddl("postgresql", rename), *extra]:
                    await conn.exec_driver_sql(stmt)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        if dialect == "postgresql" and schemas:
            async with store.engine.begin() as conn:
                for schema in schemas:
                    await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            schemas.clear()
        await store.close()


@pytest.fixture
async def store(make_store: Factory) -> SqlStore:
    return await (await make_store()).bind(TableNames())


T0 = datetime(2026, 11, 27, 18, 23, 3, 123000, tzinfo=UTC)


def ms(n: int) -> datetime:
    return T0 + timedelta(milliseconds=n)


def chat_row(chat_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": chat_id or str(uuid.uuid4()),
        "model": "gpt-x",
        "provider": "fake",
        "createdAt": T0,
        "updatedAt": T0,
        **extra,
    }


def msg(chat_id: str, mid: str, at: datetime, role: str = "user", **kw: Any) -> dict[str, Any]:
    return {"id": mid, "chatId": chat_id, "role": role, "createdAt": at, **kw}


def req(chat_id: str, message_id: str | None, rid: str, **kw: Any) -> dict[str, Any]:
    base = {
        "id": rid,
        "chatId": chat_id,
        "messageId": message_id,
        "provider": "fake",
        "model": "gpt-x",
        "statusCode": 200,
        "duration": 12,
        "inputTokens": 10,
        "outputTokens": 5,
        "cost": 0.25,
        "createdAt": T0,
    }
    return {**base, **kw}


def session_row(sid: str, chat_id: str) -> dict[str, Any]:
    return {"id": sid, "agentClass": "A", "chatId": chat_id, "createdAt": T0, "updatedAt": T0}


def tool_call_row(tid: str, message_id: str) -> dict[str, Any]:
    return {
        "id": tid,
        "messageId": message_id,
        "toolCallId": f"call_{tid}",
        "name": "n",
        "arguments": "{}",
        "createdAt": T0,
    }


def test_normalize_url() -> None:
    assert normalize_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalize_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def test_is_a_store(store: SqlStore) -> None:
    assert isinstance(store, Store)
    assert store.dialect in ("sqlite", "postgresql")


async def test_chat_round_trip_with_json_metadata(store: SqlStore) -> None:
    meta = {"tags": ["a", "b"], "n": 1, "nested": {"ok": True, "none": None}, "text": "é"}
    row = chat_row(metadata=meta, instructions="be brief")
    created = await store.create_chat(row)
    assert created.metadata == meta
    got = await store.get_chat(row["id"])
    assert got is not None
    assert (got.id, got.model, got.provider, got.instructions) == (
        row["id"],
        "gpt-x",
        "fake",
        "be brief",
    )
    assert got.metadata == meta
    assert got.createdAt == T0 and got.createdAt.tzinfo is not None
    assert await store.get_chat("missing") is None

    await store.update_chat(row["id"], {"model": "other", "metadata": [1, 2]})
    got = await store.get_chat(row["id"])
    assert got is not None and got.model == "other" and got.metadata == [1, 2]
    assert got.updatedAt is not None and got.updatedAt > T0


async def test_list_chats_newest_first(store: SqlStore) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i, cid in enumerate(ids):
        await store.create_chat(chat_row(cid, createdAt=ms(i), updatedAt=ms(i)))
    assert [c.id for c in await store.list_chats()] == ids[::-1]
    assert [c.id for c in await store.list_chats(limit=1, offset=1)] == [ids[1]]


async def test_non_serialisable_metadata_rejected_before_write(store: SqlStore) -> None:
    row = chat_row(metadata={"when": object()})
    with pytest.raises(TypeError, match="metadata"):
        await store.create_chat(row)
    assert await store.get_chat(row["id"]) is None
    with pytest.raises((TypeError, ValueError)):
        await store.create_chat(chat_row(metadata={"x": float("nan")}))
    assert await store.list_chats() == []


async def test_unknown_column_rejected_before_write(store: SqlStore) -> None:
    row = chat_row(userId="u1")
    with pytest.raises(StoreError, match="userId"):
        await store.create_chat(row)
    assert await store.list_chats() == []


async def test_begin_turn_returns_count_of_other_messages(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    n = await store.begin_turn(cid, [msg(cid, "m1", ms(0)), msg(cid, "m2", ms(0), "assistant")])
    assert n == TurnBegun(0)
    await store.insert_messages([msg(cid, "x1", ms(1)), msg(cid, "x2", ms(2))])
    n = await store.begin_turn(cid, [msg(cid, "m3", ms(3)), msg(cid, "m4", ms(3), "assistant")])
    assert n == TurnBegun(4)
    assert await store.count_messages(cid) == 6
    # Another chat's rows do not count.
    other = str(uuid.uuid4())
    await store.create_chat(chat_row(other))
    assert await store.begin_turn(other, [msg(other, "o1", ms(0))]) == TurnBegun(0)


async def test_begin_turn_reports_rows_written_after_the_cursor(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.begin_turn(cid, [msg(cid, "m1", ms(0)), msg(cid, "m2", ms(0), "assistant")])
    cursor = (ms(0), "m2")
    # Nothing new since the cursor, whether the store counts the window or uses `known`.
    turn = [msg(cid, "m3", ms(5)), msg(cid, "m4", ms(5), "assistant")]
    assert await store.begin_turn(cid, turn, after=cursor, known=2) == TurnBegun(0)
    # Another writer adds two rows after our cursor.
    await store.insert_messages([msg(cid, "x1", ms(6)), msg(cid, "x2", ms(7))])
    turn = [msg(cid, "m5", ms(8)), msg(cid, "m6", ms(8), "assistant")]
    assert await store.begin_turn(cid, turn, after=(ms(5), "m4"), known=4) == TurnBegun(2)
    turn = [msg(cid, "m7", ms(9))]
    assert await store.begin_turn(cid, turn, after=(ms(8), "m6")) == TurnBegun(0)


async def test_begin_turn_tells_rows_deleted_elsewhere_when_it_counts_by_known(
    store: SqlStore,
) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.begin_turn(cid, [msg(cid, "m1", ms(0)), msg(cid, "m2", ms(0), "assistant")])
    await store.delete_message("m1")  # another writer deletes a row the caller holds
    turn = [msg(cid, "m3", ms(5)), msg(cid, "m4", ms(5), "assistant")]
    begun = await store.begin_turn(cid, turn, after=(ms(0), "m2"), known=2)
    # A store counting the chat's rows sees one fewer than the caller holds; one counting the
    # window after the cursor sees nobody else's row. Neither reports a negative count.
    assert begun in (TurnBegun(0, read_again=True), TurnBegun(0))
    assert begun.others >= 0


async def test_begin_turn_writes_its_rows_to_its_chat_only(store: SqlStore) -> None:
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.create_chat(chat_row(other))
    # A row that names another chat is refused, and none of the turn's rows is written.
    stray = [msg(cid, "m1", ms(0)), msg(other, "m2", ms(0), "assistant")]
    with pytest.raises(ValueError, match="must belong to the chat"):
        await store.begin_turn(cid, stray)
    assert await store.count_messages(cid) == 0
    assert await store.count_messages(other) == 0
    # A row that names no chat is written to the turn's.
    unnamed = {"id": "m3", "role": "assistant", "createdAt": ms(1)}
    await store.begin_turn(cid, [msg(cid, "m1", ms(1)), unnamed])
    assert [m.id for m in await store.list_messages(cid)] == ["m1", "m3"]
    assert await store.count_messages(other) == 0


def test_turn_begun_from_a_count() -> None:
    assert TurnBegun.from_count(3) == TurnBegun(3)
    assert TurnBegun.from_count(0) == TurnBegun(0)
    assert TurnBegun.from_count(2, known=2) == TurnBegun(0)
    assert TurnBegun.from_count(3, known=1) == TurnBegun(2)
    assert TurnBegun.from_count(1, known=3) == TurnBegun(0, read_again=True)


async def test_the_store_implements_both_ports(store: SqlStore) -> None:
    assert isinstance(store, TurnStore) and isinstance(store, AdminStore)
    assert isinstance(store, Store)
    scoped = store.scoped(userId="u")
    assert isinstance(scoped, TurnStore) and isinstance(scoped, AdminStore)


async def test_messages_order_and_cursor(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    # Same millisecond: id decides; insertion order is deliberately scrambled.
    rows = [msg(cid, "b", ms(5)), msg(cid, "a", ms(5)), msg(cid, "z", ms(1)), msg(cid, "c", ms(9))]
    await store.insert_messages(rows)
    listed = await store.list_messages(cid)
    assert [m.id for m in listed] == ["z", "a", "b", "c"]
    assert listed[0].createdAt == ms(1)
    after = await store.list_messages(cid, after=(ms(5), "a"))
    assert [m.id for m in after] == ["b", "c"]
    assert await store.list_messages(cid, after=(ms(9), "c")) == []


async def test_finish_and_delete_message(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.insert_messages([msg(cid, "m1", ms(0), "assistant")])
    await store.finish_turn("m1", {"content": "hi", "inputTokens": 3, "thinkingText": "t"}, [])
    (m,) = await store.list_messages(cid)
    assert (m.content, m.inputTokens, m.thinkingText, m.role) == ("hi", 3, "t", "assistant")
    with pytest.raises(StoreError, match="nope"):
        await store.finish_turn("m1", {"nope": 1}, [])
    await store.delete_message("m1")
    assert await store.count_messages(cid) == 0


async def test_unknown_columns_are_refused_every_time(store: SqlStore) -> None:
    """Rows of a shape already written pass; a key that is no column is refused each time,
    whichever call carries it, and nothing of that call is written."""
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    for i in range(2):
        await store.insert_messages([msg(cid, f"ok{i}", ms(i))])
        with pytest.raises(StoreError, match="'bogus'"):
            await store.insert_messages([msg(cid, f"bad{i}", ms(i)), msg(cid, "x", ms(i), bogus=1)])
        with pytest.raises(StoreError, match="'bogus'"):
            await store.begin_turn(cid, [msg(cid, f"turn{i}", ms(i), bogus=1)])
        with pytest.raises(StoreError, match="'bogus'"):
            await store.finish_turn(f"ok{i}", {"content": "a", "bogus": 2}, [])
    assert [m.id for m in await store.list_messages(cid)] == ["ok0", "ok1"]


async def test_tool_calls(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.insert_messages([msg(cid, "m1", ms(0), "assistant")])
    await store.create_tool_calls(
        [
            {
                "id": f"t{i}",
                "messageId": "m1",
                "toolCallId": f"call_{i}",
                "name": "weather",
                "arguments": '{"city": "Paris"}',
                "createdAt": ms(i),
            }
            for i in range(3)
        ]
    )
    await store.set_tool_results([("t0", "sunny"), ("t2", "rain")])
    calls = await store.list_tool_calls(["m1"])
    assert [(c.id, c.result) for c in calls] == [("t0", "sunny"), ("t1", None), ("t2", "rain")]
    assert calls[0].arguments == '{"city": "Paris"}'
    assert await store.list_tool_calls([]) == []


async def test_finish_turn_requests_and_usage(store: SqlStore) -> None:
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.create_chat(chat_row(other))
    await store.begin_turn(cid, [msg(cid, "u", ms(0)), msg(cid, "a", ms(0), "assistant")])
    await store.finish_turn(
        "a",
        {"content": "answer", "outputTokens": 5, "modelId": "gpt-x"},
        [req(cid, "a", "r1"), req(cid, "a", "r2", statusCode=500, cost=None, createdAt=ms(1))],
    )
    a = {m.id: m for m in await store.list_messages(cid)}["a"]
    assert (a.content, a.outputTokens, a.modelId) == ("answer", 5, "gpt-x")
    reqs = await store.list_requests(cid)
    assert [(r.id, r.statusCode, r.cost, r.messageId) for r in reqs] == [
        ("r1", 200, 0.25, "a"),
        ("r2", 500, None, "a"),
    ]
    await store.create_requests([req(other, None, "r3", inputTokens=100, cost=1.0)])
    u = await store.usage(cid)
    assert (u.requests, u.inputTokens, u.outputTokens, u.cost) == (2, 20, 10, 0.25)
    total = await store.usage()
    assert (total.requests, total.inputTokens, total.cost) == (3, 120, 1.25)
    empty = await store.usage("missing")
    assert (empty.requests, empty.inputTokens, empty.cost) == (0, 0, None)
    # Only the update when there are no requests; only the insert when no values.
    await store.finish_turn("a", {"content": "again"}, [])
    await store.finish_turn("a", {}, [req(cid, "a", "r4")])
    assert {m.id: m for m in await store.list_messages(cid)}["a"].content == "again"
    assert len(await store.list_requests(cid)) == 3


async def test_finish_turn_is_atomic(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    await store.begin_turn(cid, [msg(cid, "a", ms(0), "assistant")])
    await store.create_requests([req(cid, "a", "dup")])
    with pytest.raises(IntegrityError):
        await store.finish_turn("a", {"content": "lost"}, [req(cid, "a", "dup")])
    (a,) = await store.list_messages(cid)
    assert a.content is None


async def test_delete_chat_cascades(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    await store.create_agent_session(
        chat_row(cid),
        session_row("s1", cid),
    )
    await store.begin_turn(cid, [msg(cid, "m", ms(0), "assistant")])
    await store.create_tool_calls(
        [
            {
                "id": "t",
                "messageId": "m",
                "toolCallId": "c",
                "name": "n",
                "arguments": "{}",
                "createdAt": T0,
            }
        ]
    )
    await store.create_requests([req(cid, "m", "r")])
    assert await store.delete_chat(cid) is True
    assert await store.delete_chat(cid) is False
    assert await store.count_messages(cid) == 0
    assert await store.list_tool_calls(["m"]) == []
    assert await store.list_requests(cid) == []
    assert await store.get_agent_session("s1") is None


async def test_agent_sessions(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    rec = await store.create_agent_session(
        chat_row(cid, instructions="sys"),
        {
            "id": "s1",
            "agentClass": "Helper",
            "chatId": cid,
            "metadata": {"user": "ada"},
            "createdAt": T0,
            "updatedAt": T0,
        },
    )
    assert (rec.id, rec.agentClass, rec.chatId, rec.metadata) == (
        "s1",
        "Helper",
        cid,
        {"user": "ada"},
    )
    assert (await store.get_chat(cid)) is not None
    await store.update_agent_session("s1", {"metadata": {"user": "bob"}})
    got = await store.get_agent_session("s1")
    assert got is not None and got.metadata == {"user": "bob"} and got.createdAt == T0
    assert got.updatedAt is not None and got.updatedAt > T0
    assert await store.get_agent_session("nope") is None


async def test_agent_session_rolls_back_chat_on_failure(store: SqlStore) -> None:
    cid = str(uuid.uuid4())
    with pytest.raises(IntegrityError):
        # chatId points elsewhere: the FK fails, so the chat insert must not stay either.
        await store.create_agent_session(
            chat_row(cid),
            {"id": "s", "agentClass": "A", "chatId": "ghost", "createdAt": T0, "updatedAt": T0},
        )
    assert await store.get_chat(cid) is None


async def test_transaction_commits_and_rolls_back(store: SqlStore) -> None:
    kept, lost = str(uuid.uuid4()), str(uuid.uuid4())
    async with store.transaction():
        await store.create_chat(chat_row(kept))
        async with store.transaction():  # nested: joins
            await store.insert_messages([msg(kept, "m", ms(0))])
    assert await store.count_messages(kept) == 1

    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_chat(chat_row(lost))
            await store.insert_messages([msg(lost, "m2", ms(0))])
            assert await store.count_messages(lost) == 1  # visible inside
            raise RuntimeError("boom")
    assert await store.get_chat(lost) is None
    assert await store.count_messages(lost) == 0
    # The store still works after a rollback.
    assert await store.get_chat(kept) is not None


async def test_custom_table_names(make_store: Factory) -> None:
    rename = {"LlmChat": "Conversation", "LlmMessage": "chat_messages"}
    base = await make_store(rename=rename)
    with pytest.raises(StoreError) as err:
        await base.bind(TableNames())
    assert "LlmChat" in str(err.value) and "Conversation" in str(err.value)
    with pytest.raises(StoreError, match="chat_messages"):
        await base.bind(TableNames(chat="Conversation", message="nope"))
    # Exact (quoted identifiers): a name differing in case only is reported, never used.
    with pytest.raises(StoreError, match="'Conversation' differs from 'conversation'"):
        await base.bind(TableNames(chat="conversation", message="chat_messages"))
    store = await base.bind(TableNames(chat="Conversation", message="chat_messages"))
    assert await base.bind(TableNames(chat="Conversation", message="chat_messages")) is store
    cid = str(uuid.uuid4())
    await store.create_chat(chat_row(cid))
    assert await store.begin_turn(cid, [msg(cid, "m", ms(0))]) == TurnBegun(0)
    assert [m.id for m in await store.list_messages(cid)] == ["m"]
    assert await store.delete_chat(cid)
    assert await store.count_messages(cid) == 0


async def test_custom_chat_columns(make_store: Factory) -> None:
    base = await make_store(extra=('ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT',))
    store = await base.bind(TableNames())
    assert "userId" in await store.chat_columns()
    cid = str(uuid.uuid4())
    created = await store.create_chat(chat_row(cid, userId="u-42"))
    assert created.extra == {"userId": "u-42"}
    got = await store.get_chat(cid)
    assert got is not None and got["userId"] == "u-42" and got.extra == {"userId": "u-42"}
    await store.update_chat(cid, {"userId": "u-7"})
    assert [c["userId"] for c in await store.list_chats()] == ["u-7"]


@pytest.mark.parametrize("store_kind", ["file"])
async def test_sqlite_mixed_datetime_forms_order(tmp_path: Path, store_kind: str) -> None:
    path = tmp_path / "mixed.sqlite"
    with sqlite3.connect(path) as conn:
        for stmt in ddl("sqlite"):
            conn.execute(stmt)
        # Rows written the way Prisma's JS driver adapters do: ISO-8601 text.
        conn.execute(
            "INSERT INTO LlmChat (id, createdAt, updatedAt) VALUES "
            "('c', '2026-11-27T18:23:03.000+00:00', '2026-11-27T18:23:03.000+00:00')"
        )
        conn.executemany(
            "INSERT INTO LlmMessage (id, chatId, role, createdAt) VALUES (?, 'c', 'user', ?)",
            [
                ("iso-early", "2026-11-27T18:23:03.100+00:00"),
                ("iso-z", "2026-11-27T18:23:03.300Z"),
                ("iso-space", "2026-11-27 18:23:03.500"),
                ("iso-plus2", "2026-11-27T20:23:03.700+02:00"),
            ],
        )
    store = await connect(f"sqlite:///{path}", migrate=False)
    try:
        at = datetime(2026, 11, 27, 18, 23, 3, tzinfo=UTC)
        await store.insert_messages(
            [
                msg("c", "int-200", at + timedelta(milliseconds=200)),
                msg("c", "int-300", at + timedelta(milliseconds=300)),
                msg("c", "int-600", at + timedelta(milliseconds=600)),
            ]
        )
        listed = await store.list_messages("c")
        assert [m.id for m in listed] == [
            "iso-early",
            "int-200",
            "int-300",  # same instant as iso-z; ids break the tie ('int' < 'iso')
            "iso-z",
            "iso-space",
            "int-600",
            "iso-plus2",
        ]
        assert listed[1].createdAt == at + timedelta(milliseconds=200)
        assert listed[3].createdAt == at + timedelta(milliseconds=300)
        assert listed[-1].createdAt == at + timedelta(milliseconds=700)
        assert all(m.createdAt is not None and m.createdAt.tzinfo == UTC for m in listed)
        after = await store.list_messages("c", after=(at + timedelta(milliseconds=300), "int-300"))
        assert [m.id for m in after] == ["iso-z", "iso-space", "int-600", "iso-plus2"]
        # What we wrote follows what the database held when the store first looked (ISO text).
        with sqlite3.connect(path) as conn:
            (kind,) = conn.execute(
                "SELECT typeof(createdAt) FROM LlmMessage WHERE id = 'int-200'"
            ).fetchone()
        assert kind == "text"
        chat = await store.get_chat("c")
        assert chat is not None and chat.createdAt == at
    finally:
        await store.close()


async def test_sqlite_memory_and_pragmas() -> None:
    store = await connect("sqlite:///:memory:", migrate=False)
    try:
        async with store.engine.begin() as conn:
            for stmt in ddl("sqlite"):
                await conn.exec_driver_sql(stmt)
            fk = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert fk == 1
        s = await store.bind(TableNames())
        await s.create_chat(chat_row("c"))
        assert [c.id for c in await s.list_chats()] == ["c"]
    finally:
        await store.close()


async def test_sqlite_file_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite"
    store = await connect(f"sqlite:///{path}", migrate=False)
    try:
        async with store.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert (mode, sync) == ("wal", 1)
    finally:
        await store.close()


async def test_from_engine_does_not_dispose_user_engine(tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    path = tmp_path / "user.sqlite"
    with sqlite3.connect(path) as conn:
        for stmt in ddl("sqlite"):
            conn.execute(stmt)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    store = await SqlStore.from_engine(engine).bind(TableNames())
    await store.create_agent_session(
        chat_row("c"),
        session_row("s", "c"),
    )
    # Foreign keys were switched on for the store's connection: the cascade happens.
    assert await store.delete_chat("c")
    assert await store.get_agent_session("s") is None
    await store.close()
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM LlmChat")).scalar() == 0
    await engine.dispose()


async def test_postgres_datetimes_are_utc_whatever_the_session_time_zone() -> None:
    """The store reads and writes TIMESTAMP as UTC on a connection whose TimeZone is not UTC,
    and a user's engine gets its connections back reading TIMESTAMP as it did before."""
    pg_url = postgres_server()
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.support.postgres import create_database, drop_database

    url = await create_database(pg_url, prefix="tz")
    engine = create_async_engine(
        make_url(url).set(drivername="postgresql+asyncpg"),
        pool_size=1,
        max_overflow=0,
        connect_args={"server_settings": {"TimeZone": "Asia/Tokyo"}},
    )
    try:
        async with engine.begin() as conn:
            for stmt in ddl("postgresql"):
                await conn.exec_driver_sql(stmt)
        store = await SqlStore.from_engine(engine).bind(TableNames())
        await store.create_chat(chat_row("c"))
        local = datetime(2026, 11, 27, 20, 0, 0, 5000)
        await store.insert_messages(
            [
                msg("c", "m1", ms(1)),
                msg("c", "m2", ms(2).astimezone(timezone(timedelta(hours=-5)))),
                msg("c", "m3", local),  # naive means UTC
            ]
        )
        rows = await store.list_messages("c")
        assert [(r.id, r.createdAt) for r in rows] == [
            ("m1", ms(1)),
            ("m2", ms(2)),
            ("m3", local.replace(tzinfo=UTC)),
        ]
        assert all(r.createdAt is not None and r.createdAt.tzinfo is UTC for r in rows)
        assert [r.id for r in await store.list_messages("c", after=(ms(1), "m1"))] == ["m2", "m3"]
        await store.close()
        async with engine.connect() as conn:
            stored = (
                await conn.exec_driver_sql(
                    'SELECT "createdAt" FROM "LlmMessage" ORDER BY "createdAt"'
                )
            ).scalars()
            # What the server holds, read through the user's pool as asyncpg reads it.
            assert list(stored) == [ms(1).replace(tzinfo=None), ms(2).replace(tzinfo=None), local]
    finally:
        await engine.dispose()
        await drop_database(url)
