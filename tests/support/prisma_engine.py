"""Connected prisma-client-py clients for tests, served by our local query-engine stand-in.

prisma-client-py needs Prisma's native query engine at runtime, which cannot be downloaded
here. `tools/query-engine/` provides a stand-in (the same engine core, as wasm, behind a small
Node HTTP server); this module generates a client offline (via `prisma_offline`) and starts
it against that stand-in.

Generated clients: each (schema, provider) variant is generated once per process into its own
directory under a package name derived from the variant's text, and imported under that name.
So the sqlite and postgresql clients coexist in one test session. The price: their classes
are not `prisma.*` but `<package>.*`, e.g. `module.errors.UniqueViolationError`; code that
catches prisma errors must resolve them from the client's own package.

Typical use:

    async with connected_prisma(provider="sqlite", database_url=f"file:{db}",
                                work_dir=tmp_path_factory.getbasetemp()) as (db, module):
        await db.llmchat.create(data={})
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from nodellm_orm.schema import schema_for

from .prisma_offline import generate_client, import_client, schema_provider

__all__ = [
    "QUERY_ENGINE",
    "connected_prisma",
    "engine_unavailable_reason",
    "generated_module",
    "prisma_database_url",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = REPO_ROOT / "tools" / "query-engine"
QUERY_ENGINE = ENGINE_DIR / "query-engine"

_generated: dict[str, ModuleType] = {}


def engine_unavailable_reason() -> str | None:
    """Why the stand-in engine cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (ENGINE_DIR / "node_modules" / "@prisma" / "query-engine-wasm").is_dir():
        return f"engine packages not installed: run `npm ci --prefix {ENGINE_DIR}`"
    return None


def prisma_database_url(url: str) -> str:
    """Accept the SQLAlchemy URL forms our other tests use and return Prisma's form."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            return "file:" + url[len(prefix) :]
    return url


def _variant_text(schema_path: Path | None, provider: str) -> str:
    if schema_path is None:
        return schema_for(provider)
    text = schema_path.read_text(encoding="utf-8")
    if schema_provider(text) != provider:
        raise ValueError(f"{schema_path} is not a {provider} schema")
    return text


def generated_module(
    provider: str, work_dir: Path, *, schema_path: Path | None = None
) -> ModuleType:
    """The generated client package for the provider's variant of the schema.

    Without `schema_path`, the shipped reference schema adapted to `provider` is used.
    `work_dir` must outlive the process's use of the module (a session temp dir).
    """
    text = _variant_text(schema_path, provider)
    module = _generated.get(text)
    if module is None:
        source = work_dir / f"schema-{provider}-{len(_generated)}.prisma"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(text, encoding="utf-8")
        module = import_client(generate_client(source, work_dir / "prisma-clients"))
        _generated[text] = module
    return module


@contextmanager
def _engine_env() -> Iterator[None]:
    # prisma-client-py reads this when it resolves and spawns the engine, i.e. during connect.
    previous = os.environ.get("PRISMA_QUERY_ENGINE_BINARY")
    os.environ["PRISMA_QUERY_ENGINE_BINARY"] = str(QUERY_ENGINE)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PRISMA_QUERY_ENGINE_BINARY"]
        else:
            os.environ["PRISMA_QUERY_ENGINE_BINARY"] = previous


@asynccontextmanager
async def connected_prisma(
    *,
    provider: str,
    database_url: str,
    work_dir: Path,
    schema_path: Path | None = None,
    **client_kwargs: Any,
) -> AsyncIterator[tuple[Any, ModuleType]]:
    """Yield `(connected Prisma client, its generated package)`; disconnect on exit."""
    reason = engine_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"query engine stand-in unavailable: {reason}")
    module = generated_module(provider, work_dir, schema_path=schema_path)
    client = module.Prisma(datasource={"url": prisma_database_url(database_url)}, **client_kwargs)
    with _engine_env():
        await client.connect()
    try:
        yield client, module
    finally:
        await client.disconnect()
