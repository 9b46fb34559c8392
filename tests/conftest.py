"""Fixtures shared by the suite: the backends every behaviour test runs on, and a fake LLM.

`backend` is parametrised over every storage backend available here:
- sql-sqlite: always (a fresh SQLite file per test);
- sql-postgresql: when a PostgreSQL server is available (CI starts one; locally one is
  started from the installed binaries), a fresh database per test;
- prisma-sqlite / prisma-postgresql: when the query-engine stand-in is installed
  (tools/query-engine), a prisma-client-py client per test.
Under CI (CI=true) a backend that cannot run fails the run instead of being skipped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from nodellm_orm import LLM, SqlStore, TableNames, connect, create_llm
from nodellm_orm.stores import open_store
from nodellm_orm.stores.base import Store
from nodellm_orm.testing import FakeProvider
from tests.support.postgres import create_database, postgres_url

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = REPO / "nodellm_orm" / "migrations"
DEFAULT_TABLES = {
    "chat": "LlmChat",
    "message": "LlmMessage",
    "tool_call": "LlmToolCall",
    "request": "LlmRequest",
    "agent_session": "LlmAgentSession",
}
CUSTOM_TABLES = {
    "chat": "AssistantChat",
    "message": "AssistantMessage",
    "tool_call": "AssistantToolCall",
    "request": "AssistantRequest",
    "agent_session": "AssistantAgentSession",
}
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"backend required in CI is unavailable: {reason}")
    pytest.skip(reason)


def migration_sql(dialect: str) -> str:
    (path,) = sorted((MIGRATIONS / dialect).glob("*/migration.sql"))
    return path.read_text()


def renamed_ddl(dialect: str, tables: dict[str, str]) -> list[str]:
    """The shipped migration with every table (and so its index/constraint names) renamed."""
    sql = migration_sql(dialect)
    for key, default in DEFAULT_TABLES.items():
        sql = sql.replace(default, tables[key])
    statements = []
    for chunk in sql.split(";"):
        lines = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text and "CREATE SCHEMA" not in text:
            statements.append(text)
    return statements


@dataclass
class Database:
    """What a test gets: the `db` to pass to create_chat, and a store to inspect rows."""

    db: Any
    backend: str
    dialect: str
    table_names: TableNames = field(default_factory=TableNames)

    async def store(self) -> Store:
        return await open_store(self.db, self.table_names)


class Backend(Protocol):
    name: str

    async def open(
        self, tmp_path: Path, *, tables: dict[str, str] | None, chat_columns: Sequence[str]
    ) -> Database: ...

    async def close(self, database: Database) -> None: ...


class SqlBackend:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.name = f"sql-{dialect}"

    async def url(self, tmp_path: Path) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{tmp_path / 'test.db'}"
        server = postgres_url()
        if server is None:
            unavailable("no PostgreSQL server available")
            raise AssertionError  # unreachable: unavailable() raises
        return await create_database(server)

    async def open(
        self, tmp_path: Path, *, tables: dict[str, str] | None, chat_columns: Sequence[str]
    ) -> Database:
        store = await connect(await self.url(tmp_path), migrate=True)
        names = tables or DEFAULT_TABLES
        statements = renamed_ddl(self.dialect, names) if tables else []
        chat = f'"{names["chat"]}"'
        statements += [f'ALTER TABLE {chat} ADD COLUMN "{c}" TEXT' for c in chat_columns]
        if statements:
            async with store.engine.begin() as conn:
                for statement in statements:
                    await conn.exec_driver_sql(statement)
        table_names = TableNames(**tables) if tables else TableNames()
        return Database(store, self.name, self.dialect, table_names)

    async def close(self, database: Database) -> None:
        assert isinstance(database.db, SqlStore)
        await database.db.close()


def prisma_schema(provider: str, tables: dict[str, str] | None, chat_columns: Sequence[str]) -> str:
    """The shipped schema for `provider`; with `tables`, plus a copy of its models renamed.

    The copy keeps the default models (a test may open the default tables of the same database)
    and adds `chat_columns` as optional String fields of the renamed chat model.
    """
    from nodellm_orm.schema import schema_for

    text = schema_for(provider)
    if not tables:
        if chat_columns:
            raise ValueError("custom chat columns need custom tables on the prisma backend")
        return text
    start = text.index("model ")
    models = text[start:]
    for key, default in DEFAULT_TABLES.items():
        models = models.replace(default, tables[key])
    head = f"model {tables['chat']} {{\n"
    fields = "".join(f"  {c} String?\n" for c in chat_columns)
    models = models.replace(head, head + fields, 1)
    return text + "\n" + models


class PrismaBackend:
    """A generated prisma-client-py client served by the query-engine stand-in.

    The database is made by our migration runner (as `nodellm-orm migrate` would), custom tables
    and columns by DDL, then the client for the matching schema variant connects to it. Each
    variant is generated once per process.
    """

    _work_dir: Path | None = None

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.name = f"prisma-{dialect}"
        self._stacks: dict[int, AsyncExitStack] = {}

    @classmethod
    def work_dir(cls) -> Path:
        if cls._work_dir is None:
            cls._work_dir = Path(tempfile.mkdtemp(prefix="nodellm-prisma-"))
        return cls._work_dir

    async def open(
        self, tmp_path: Path, *, tables: dict[str, str] | None, chat_columns: Sequence[str]
    ) -> Database:
        from sqlalchemy.ext.asyncio import create_async_engine

        from nodellm_orm.migrations.runner import migrate
        from tests.support.prisma_engine import (
            connected_prisma,
            engine_unavailable_reason,
            prisma_database_url,
        )

        reason = engine_unavailable_reason()
        if reason is not None:
            unavailable(f"query engine stand-in: {reason}")
        url = await SqlBackend(self.dialect).url(tmp_path)
        if self.dialect == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        engine = create_async_engine(url)
        try:
            await migrate(engine)
            names = tables or DEFAULT_TABLES
            statements = renamed_ddl(self.dialect, names) if tables else []
            chat = f'"{names["chat"]}"'
            statements += [f'ALTER TABLE {chat} ADD COLUMN "{c}" TEXT' for c in chat_columns]
            if statements:
                async with engine.begin() as conn:
                    for statement in statements:
                        await conn.exec_driver_sql(statement)
        finally:
            await engine.dispose()
        text = prisma_schema(self.dialect, tables, chat_columns)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        schema = self.work_dir() / f"{self.name}-{digest}.prisma"
        schema.write_text(text, encoding="utf-8")
        stack = AsyncExitStack()
        client, _ = await stack.enter_async_context(
            connected_prisma(
                provider=self.dialect,
                database_url=prisma_database_url(url),
                work_dir=self.work_dir(),
                schema_path=schema,
            )
        )
        table_names = TableNames(**tables) if tables else TableNames()
        database = Database(client, self.name, self.dialect, table_names)
        self._stacks[id(database)] = stack
        return database

    async def close(self, database: Database) -> None:
        stack = self._stacks.pop(id(database))
        await stack.aclose()


BACKENDS: dict[str, Backend] = {
    "sql-sqlite": SqlBackend("sqlite"),
    "sql-postgresql": SqlBackend("postgresql"),
    "prisma-sqlite": PrismaBackend("sqlite"),
    "prisma-postgresql": PrismaBackend("postgresql"),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
async def database(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await backend.open(tmp_path, tables=None, chat_columns=())
    try:
        yield opened
    finally:
        await backend.close(opened)


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def llm(fake: FakeProvider) -> LLM:
    return create_llm(provider=fake)
