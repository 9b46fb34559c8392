"""Storage backends behind one port, and the choice of backend from what the user passes."""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, Union

from ..model import TableNames
from .base import Store, StoreError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Database", "PrismaClient", "Store", "StoreError", "open_store"]


class PrismaClient(Protocol):
    """What a generated prisma-client-py `Prisma` client is recognised by (structurally, so a
    type checker accepts any generated client without this package importing one)."""

    def is_connected(self) -> bool: ...


# What the entry points accept as `db`: a store (`await connect(url)`, a `scoped_store`
# handle), an SQLAlchemy AsyncEngine, or a prisma-client-py client. Strings, so SQLAlchemy is
# imported only by a type checker.
Database: TypeAlias = Union["Store", "AsyncEngine", "PrismaClient"]

# One unbound store per user-supplied engine or client, so what a store learns about the
# database (tables, columns, compiled statements) is learned once.
_stores: weakref.WeakKeyDictionary[Any, Store] = weakref.WeakKeyDictionary()


def is_prisma_client(db: Any) -> bool:
    """A prisma-client-py client, recognised without importing a generated client."""
    module = type(db).__module__ or ""
    return module.split(".")[0] == "prisma" or (
        hasattr(db, "_engine") and hasattr(db, "query_raw") and hasattr(db, "is_connected")
    )


def _is_async_engine(db: Any) -> bool:
    # An AsyncEngine exists only once SQLAlchemy is imported: asking costs a prisma user nothing.
    module = sys.modules.get("sqlalchemy.ext.asyncio")
    return module is not None and isinstance(db, module.AsyncEngine)


def _base_store(db: Any) -> Store:
    store: Store | None
    try:
        store = _stores.get(db)
    except TypeError:  # not weak-referenceable: certainly not an engine or a client
        store = None
    if store is not None:
        return store
    if _is_async_engine(db):
        from .sql import SqlStore

        store = SqlStore.from_engine(db)
    elif is_prisma_client(db):
        from .prisma import PrismaStore

        store = PrismaStore.from_client(db)
    else:
        raise TypeError(
            "db must be a store from `await connect(url)`, an SQLAlchemy AsyncEngine or a "
            f"prisma-client-py Prisma client, not {type(db).__name__}"
        )
    # prisma-client-py clients have __slots__ without __weakref__: PrismaStore caches itself.
    with contextlib.suppress(TypeError):
        _stores[db] = store
    return store


async def open_store(db: Database, table_names: TableNames, needs: Collection[str] = ()) -> Store:
    """The store for `db`, bound to `table_names` (checked to exist).

    `needs`: optional models the caller will write (from its persistence switches, or
    `agent_session`); one whose table is absent raises StoreError before anything is written.
    """
    from .scoped import ScopedStore

    # A scoped handle first: it must never be mistaken for (or unwrapped to) its inner store.
    scoped = isinstance(db, ScopedStore) or (isinstance(db, Store) and not is_prisma_client(db))
    target: Any = db if scoped else _base_store(db)
    store: Store = await target.bind(table_names)
    missing = [m for m in needs if m in store.absent]
    if missing:
        raise StoreError(
            "the database has no table for "
            + ", ".join(f"{m} ({store.absent[m]!r}, {_WHY[m]})" for m in missing)
            + "; create it (`nodellm-orm migrate`, or add the model to schema.prisma) or "
            "switch that persistence off (Persistence(tool_calls=False, requests=False))"
        )
    return store


_WHY = {
    "tool_call": "needed by tool-call persistence",
    "request": "needed by request persistence",
    "agent_session": "needed by agent sessions",
}
