"""Fixtures shared by the suite: the backend registry every behaviour test runs on, and a fake LLM.

The backends (`BACKENDS`):
- sql-sqlite: always (a fresh SQLite file per test);
- sql-postgresql: a fresh database per test on the server of tests/support/postgres.py
  ($NODELLM_TEST_PG_URL, else a throwaway cluster started on first use, by a fixture: never
  when a module is imported);
- prisma-sqlite / prisma-postgresql: a prisma-client-py client per test, served by the
  query-engine stand-in (tools/query-engine); marked `toolchain`.

Which run is chosen in one place: `pytest --backends sql-sqlite,sql-postgresql` or
$NODELLM_TEST_BACKENDS (the option wins; default all four). Every test that runs on a backend
says so with a `backend(NAME)` mark, which the parameter lists below carry (`backend_params`,
`sql_dialects`, `prisma_dialects`); a test whose backend is not chosen is deselected. A test
that needs the PostgreSQL server without being parametrised asks `postgres_server()`.
Under CI (CI=true) a chosen backend that cannot run fails the run instead of being skipped.

Markers (pyproject): `toolchain` for tests that drive npm/node, Prisma's CLI or engine, a
browser or mypy (`-m "not toolchain"` leaves the quick Python suite).
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

from nodellm_orm import LLM, TableNames, connect, create_llm
from nodellm_orm.migrations.rename import rename_identifiers
from nodellm_orm.migrations.runner import split_sqlite_script
from nodellm_orm.stores import open_store
from nodellm_orm.stores.base import Store
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider
from tests.support.postgres import create_database, drop_created_databases, postgres_url

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
    renames = {default: tables[key] for key, default in DEFAULT_TABLES.items()}
    sql = rename_identifiers(migration_sql(dialect), renames)
    return [s for s in split_sqlite_script(sql) if "CREATE SCHEMA" not in s]


async def run_sql(store: SqlStore, *statements: str) -> list[Any]:
    """Run raw statements in one transaction on a store's engine; the rows of each (or None)."""
    out: list[Any] = []
    async with store.engine.begin() as conn:
        for statement in statements:
            result = await conn.exec_driver_sql(statement)
            out.append(result.all() if result.returns_rows else None)
    return out


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
        return await create_database(postgres_server())

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


BACKENDS_ENV = "NODELLM_TEST_BACKENDS"
# The chosen backends: set by pytest_configure from --backends / $NODELLM_TEST_BACKENDS.
_chosen: tuple[str, ...] = tuple(BACKENDS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=None,
        metavar="NAME,...",
        help=f"storage backends to test on, comma-separated (default ${BACKENDS_ENV}, else all: "
        f"{','.join(BACKENDS)})",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _chosen
    option = config.getoption("--backends")
    raw = option if option is not None else os.environ.get(BACKENDS_ENV, "")
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if option is not None and not names:
        raise pytest.UsageError("--backends: name at least one backend")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        source = "--backends" if option is not None else f"${BACKENDS_ENV}"
        raise pytest.UsageError(
            f"{source}: unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}"
        )
    _chosen = tuple(names) if names else tuple(BACKENDS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A server of the developer's ($NODELLM_TEST_PG_URL) keeps no database a test made (one
    per PostgreSQL test: hundreds a run, ~8 MB each, were left before)."""
    drop_created_databases()


def chosen_backends() -> tuple[str, ...]:
    return _chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests marked for a backend that was not chosen."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marked = {m.args[0] for m in item.iter_markers("backend")}
        (keep if marked <= set(_chosen) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _param(value: str, backend: str) -> Any:
    marks = [pytest.mark.backend(backend)]
    if backend.startswith("prisma-"):
        marks.append(pytest.mark.toolchain)
    return pytest.param(value, marks=marks, id=value)


def backend_params(names: Sequence[str] = tuple(BACKENDS)) -> list[Any]:
    """Backend names as parameters, each marked with its backend."""
    return [_param(name, name) for name in names]


SQL_BACKENDS = ("sql-sqlite", "sql-postgresql")


def on_backends(*names: str) -> pytest.MarkDecorator:
    """Run a test of the `backend` (or `database`) fixture on these backends only, when its
    subject is one backend's: the others are not set up just to be skipped."""
    return pytest.mark.parametrize("backend", backend_params(names), indirect=True)


def sql_dialects() -> list[Any]:
    """ "sqlite" and "postgresql" as parameters of a test of the sql backend."""
    return [_param(d, f"sql-{d}") for d in ("sqlite", "postgresql")]


def prisma_dialects() -> list[Any]:
    """ "sqlite" and "postgresql" as parameters of a test of the prisma backend."""
    return [_param(d, f"prisma-{d}") for d in ("sqlite", "postgresql")]


def postgres_server() -> str:
    """The test PostgreSQL server's URL, the cluster started on first use.

    Skips when no PostgreSQL backend is chosen; a server that cannot be had skips, or under CI
    fails the test.
    """
    if not any(name.endswith("-postgresql") for name in _chosen):
        pytest.skip("no PostgreSQL backend among the chosen backends")
    server = postgres_url()
    if server is None:
        unavailable("no PostgreSQL server available")
        raise AssertionError  # unreachable: unavailable() raises
    return server


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
async def database(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    opened = await backend.open(tmp_path, tables=None, chat_columns=())
    try:
        yield opened
    finally:
        await backend.close(opened)


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the suite's mypy runs: the library, pydantic and SQLAlchemy are
    analysed once, not once per test (mypy's incremental cache is what a user's runs use)."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def llm(fake: FakeProvider) -> LLM:
    return create_llm(provider=fake)
