"""Database URLs: the forms users write (SQLAlchemy, Prisma, plain paths) and their engines.

One place decides how a URL maps to an async driver; the store, the migration runner and the
CLI all read URLs through it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["async_url", "engine_for_url", "normalize_url", "postgres_schema"]


def async_url(url: str) -> str:
    """An SQLAlchemy async URL for a SQLAlchemy, Prisma-style or plain database URL.

    `file:./dev.db` (Prisma's SQLite form), `sqlite:///x.db` and a bare path become
    `sqlite+aiosqlite:///...`; `postgresql://` / `postgres://` become `postgresql+asyncpg://`.
    Prisma's `?schema=` parameter is dropped because asyncpg does not accept it.
    A URL naming another driver (`postgresql+psycopg://`) keeps it; the store refuses drivers
    it cannot drive when it connects.
    """
    if url.startswith("file:"):
        return "sqlite+aiosqlite:///" + url.removeprefix("file:").split("?", 1)[0]
    if "://" not in url:
        return "sqlite+aiosqlite:///" + url
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.get_backend_name() in ("postgresql", "postgres"):
        query = {k: v for k, v in parsed.query.items() if k != "schema"}
        parsed = parsed.set(drivername=parsed.drivername.replace("postgres+", "postgresql+"))
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False)


normalize_url = async_url


def postgres_schema(url: str) -> str | None:
    """The PostgreSQL schema named by Prisma's `?schema=` parameter, if any."""
    if "://" not in url:
        return None
    schema = make_url(url).query.get("schema")
    if isinstance(schema, str) and make_url(async_url(url)).get_backend_name() == "postgresql":
        return schema
    return None


def engine_for_url(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine for any URL form `async_url` accepts, honouring `?schema=`."""
    schema = postgres_schema(url)
    if schema is not None:
        connect_args = dict(engine_kwargs.pop("connect_args", {}))
        settings = dict(connect_args.get("server_settings", {}))
        settings.setdefault("search_path", schema)
        connect_args["server_settings"] = settings
        engine_kwargs["connect_args"] = connect_args
    return create_async_engine(async_url(url), **engine_kwargs)
