"""The query-engine stand-in (tools/query-engine) driven through the real prisma-client-py client.

SQLite runs always, on a file made from the reference Prisma Migrate DDL. PostgreSQL runs when
NODELLM_TEST_PG_URL points at a server we may create throwaway databases on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import migration_sql, postgres_server, prisma_dialects
from tests.support.prisma_engine import (
    connected_prisma,
    engine_unavailable_reason,
    prisma_database_url,
)

_reason = engine_unavailable_reason()
if _reason is not None and os.environ.get("CI"):
    raise RuntimeError(f"query engine stand-in unavailable in CI: {_reason}")
pytestmark = [pytest.mark.toolchain, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


def _ddl(provider: str) -> str:
    # The shipped init migration: the DDL Prisma Migrate generates (test_migrations checks it).
    return migration_sql(provider)


@dataclass
class Backend:
    db: Any
    module: ModuleType
    provider: str

    def json_value(self, value: Any) -> Any:
        """What a Json column takes: prisma.Json on postgresql, encoded text on sqlite."""
        if self.provider == "postgresql":
            return self.module.fields.Json(value)
        return json.dumps(value)

    def decoded(self, stored: Any) -> Any:
        return json.loads(stored) if self.provider == "sqlite" else stored


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prisma-engine")


async def _postgres_database() -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg  # type: ignore[import-untyped]

    server = postgres_server()
    admin_url = prisma_database_url(server)
    name = f"qe_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/{name}")
    await conn.execute(_ddl("postgresql"))
    await conn.close()

    async def drop() -> None:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

    return f"{base}/{name}", drop


@pytest.fixture(params=prisma_dialects())
async def qe(
    request: pytest.FixtureRequest, work_dir: Path, tmp_path: Path
) -> AsyncIterator[Backend]:
    provider: str = request.param
    drop = None
    if provider == "sqlite":
        path = tmp_path / "chat.db"
        with sqlite3.connect(path) as conn:
            conn.executescript(_ddl("sqlite"))
        url = f"file:{path}"
    else:
        url, drop = await _postgres_database()
    try:
        async with connected_prisma(provider=provider, database_url=url, work_dir=work_dir) as (
            db,
            module,
        ):
            yield Backend(db, module, provider)
    finally:
        if drop is not None:
            await drop()


async def _chat(b: Backend, **data: Any) -> Any:
    return await b.db.llmchat.create(data=data)


async def test_create_with_json_metadata_and_nested_connect(qe: Backend) -> None:
    meta = {"topic": "weather", "tags": ["a", "b"], "n": 1.5}
    chat = await _chat(qe, model="gpt-4o", metadata=qe.json_value(meta))
    await qe.db.llmmessage.create(
        data={"role": "user", "content": "hi", "chat": {"connect": {"id": chat.id}}}
    )
    await qe.db.llmagentsession.create(
        data={"agentClass": "Helper", "chat": {"connect": {"id": chat.id}}}
    )

    loaded = await qe.db.llmchat.find_unique(
        where={"id": chat.id}, include={"messages": True, "agentSession": True}
    )

    assert loaded is not None
    assert qe.decoded(loaded.metadata) == meta
    assert [m.content for m in loaded.messages] == ["hi"]
    assert loaded.agentSession.agentClass == "Helper"
    # DateTime comes back as an aware datetime close to now, whatever the storage format.
    assert abs(loaded.createdAt - datetime.now(UTC)) < timedelta(minutes=1)


async def test_find_many_where_order_take_skip(qe: Backend) -> None:
    chat = await _chat(qe)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(5):
        await qe.db.llmmessage.create(
            data={
                "chatId": chat.id,
                "role": "assistant" if i % 2 else "user",
                "content": f"m{i}",
                "createdAt": base + timedelta(seconds=i),
            }
        )

    page = await qe.db.llmmessage.find_many(
        where={"chatId": chat.id, "role": "user"}, order={"createdAt": "desc"}, take=2, skip=1
    )
    after = await qe.db.llmmessage.find_many(
        where={"createdAt": {"gt": base + timedelta(seconds=2)}}, order={"createdAt": "asc"}
    )

    assert [m.content for m in page] == ["m2", "m0"]
    assert [m.content for m in after] == ["m3", "m4"]
    assert page[0].createdAt == base + timedelta(seconds=2)


async def test_update_delete_count_and_missing_records(qe: Backend) -> None:
    chat = await _chat(qe, model="a")
    other = await _chat(qe, model="b")

    updated = await qe.db.llmchat.update(where={"id": chat.id}, data={"model": "c"})
    deleted = await qe.db.llmchat.delete(where={"id": other.id})

    assert updated is not None and updated.model == "c"
    assert deleted is not None and deleted.id == other.id
    assert await qe.db.llmchat.count() == 1
    assert await qe.db.llmchat.count(where={"model": "c"}) == 1
    assert await qe.db.llmchat.update(where={"id": "missing"}, data={"model": "x"}) is None
    with pytest.raises(qe.module.errors.RecordNotFoundError):
        await qe.db.llmchat.find_unique_or_raise(where={"id": "missing"})


async def test_group_by_and_aggregate_token_sums(qe: Backend) -> None:
    first, second = await _chat(qe), await _chat(qe)
    for chat_id, tokens in ((first.id, 3), (first.id, 4), (second.id, 10)):
        await qe.db.llmmessage.create(
            data={"chatId": chat_id, "role": "assistant", "inputTokens": tokens}
        )

    groups = await qe.db.llmmessage.group_by(by=["chatId"], sum={"inputTokens": True}, count=True)

    totals = {g["chatId"]: (g["_sum"]["inputTokens"], g["_count"]["_all"]) for g in groups}
    assert totals == {first.id: (7, 2), second.id: (10, 1)}


async def test_create_many(qe: Backend) -> None:
    chat = await _chat(qe)
    created = await qe.db.llmmessage.create_many(
        data=[{"chatId": chat.id, "role": "user", "content": str(i)} for i in range(3)]
    )

    assert created == 3
    assert await qe.db.llmmessage.count(where={"chatId": chat.id}) == 3


async def test_batch_is_atomic(qe: Backend) -> None:
    chat = await _chat(qe)
    async with qe.db.batch_() as batch:
        batch.llmmessage.create(data={"chatId": chat.id, "role": "user"})
        batch.llmchat.update(where={"id": chat.id}, data={"model": "batched"})

    with pytest.raises(qe.module.errors.UniqueViolationError):
        async with qe.db.batch_() as batch:
            batch.llmmessage.create(data={"chatId": chat.id, "role": "assistant"})
            batch.llmagentsession.create(data={"agentClass": "A", "chatId": chat.id})
            batch.llmagentsession.create(data={"agentClass": "B", "chatId": chat.id})

    roles = [m.role for m in await qe.db.llmmessage.find_many(where={"chatId": chat.id})]
    assert roles == ["user"]
    assert (await qe.db.llmchat.find_unique(where={"id": chat.id})).model == "batched"
    assert await qe.db.llmagentsession.count() == 0


async def test_interactive_transaction_commit_and_rollback(qe: Backend) -> None:
    async with qe.db.tx() as tx:
        kept = await tx.llmchat.create(data={"model": "kept"})
        # Reads inside the transaction see its own writes.
        assert await tx.llmchat.count() == 1

    with pytest.raises(RuntimeError):
        async with qe.db.tx() as tx:
            await tx.llmchat.create(data={"model": "dropped"})
            raise RuntimeError("abort")

    models = [c.model for c in await qe.db.llmchat.find_many()]
    assert models == ["kept"]
    assert kept.model == "kept"


async def test_unique_violation_raises_unique_violation_error(qe: Backend) -> None:
    chat = await _chat(qe)
    await qe.db.llmagentsession.create(data={"agentClass": "A", "chatId": chat.id})

    with pytest.raises(qe.module.errors.UniqueViolationError):
        await qe.db.llmagentsession.create(data={"agentClass": "B", "chatId": chat.id})


async def test_raw_queries(qe: Backend) -> None:
    chat = await _chat(qe, model="raw")
    placeholder = "$1" if qe.provider == "postgresql" else "?"
    second = "$2" if qe.provider == "postgresql" else "?"

    changed = await qe.db.execute_raw(
        f'UPDATE "LlmChat" SET "model" = {placeholder} WHERE "id" = {second}', "edited", chat.id
    )
    rows = await qe.db.query_raw(
        f'SELECT "id", "model" FROM "LlmChat" WHERE "id" = {placeholder}', chat.id
    )

    assert changed == 1
    assert rows == [{"id": chat.id, "model": "edited"}]
