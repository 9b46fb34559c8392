"""`PrismaStore`: the Store port over a prisma-client-py (asyncio) client.

The user's generated `Prisma()` client is used as they configured it; the store never connects
or disconnects it. Delegates (`db.llmchat`...) are chosen by `TableNames`, by an exact name of
their model (`LlmChat`, `llmchat` or the JS client's `llmChat`; see `_Shared`).

Round trips (each a request to the query engine):
- writes of one operation go in one request: a create, a `create_many`, a `batch_()` (one
  engine transaction) or a nested create;
- `begin_turn` sends the message inserts and a count in one transactional batch and reads the
  count from the batch's answer. prisma-client-py's `batch_()` drops the answers, so this one
  operation builds its batch with the client's own query builder and sends it to the client's
  engine (private API of prisma-client-py 0.15, pinned). An interactive transaction would cost
  four requests (start, insert, count, commit).

SQLite: a DateTime column may hold INTEGER epoch milliseconds (Prisma's native engine, our sql
backend) or ISO-8601 text (Prisma's JS driver adapters). Prisma orders and compares the column
as stored, and SQLite sorts every integer before any text, so reads that order or filter by
`createdAt` use a raw query over one comparable key (milliseconds), the same expression as the
sql backend. PostgreSQL's TIMESTAMP has one form, so it uses the typed client throughout.
Json fields: `prisma.Json` on PostgreSQL; text we encode on SQLite (Prisma 5's SQLite connector
has no Json type, so the SQLite schema declares them String).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

# Naive datetimes are UTC (the Store convention); the engine wants an offset: as_utc.
from ..core.clock import as_utc, to_datetime, to_epoch_ms, truncate_ms, utc_now
from ..core.jsoncodec import encode as encode_json
from ..model import (
    DEFAULT_DELEGATES,
    OPTIONAL_MODELS,
    AgentSessionRecord,
    ChatRecord,
    Cursor,
    MessageRecord,
    OwnedKind,
    RequestRecord,
    Row,
    RowCounts,
    TableNames,
    ToolCallRecord,
    UsageTotals,
    columns,
)
from ..model.definition import JSON_FIELDS, MODELS
from .base import (
    Store,
    StoreError,
    TurnBegun,
    WriteMark,
    missing_name_error,
    near_misses,
    turn_rows,
)
from .dialects import dialect_for
from .drift import MIGRATIONS_SQL, drift_error, drift_problems
from .tables import build_tables

__all__ = ["PrismaStore"]

# Ids bound per raw administration query.
_ID_CHUNK = 500
_BASE_CHAT = frozenset(columns(ChatRecord))
_ORDER = [{"createdAt": "asc"}, {"id": "asc"}]


def _sqlite_ms(column: str) -> str:
    """A DateTime column on SQLite as integer milliseconds, whether stored as ISO text or as
    an integer: one comparable key."""
    return (
        f"CASE WHEN typeof(\"{column}\") = 'text' "
        f'THEN CAST(round((julianday("{column}") - 2440587.5) * 86400000.0) AS INTEGER) '
        f'ELSE "{column}" END'
    )


_SQLITE_MS = _sqlite_ms("createdAt")

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class _Shape(Generic[_R]):
    """How one model's records are read: its fields by kind (from the model definition)."""

    record: Callable[..., _R]
    fields: tuple[str, ...]  # every column, in record order
    plain: tuple[str, ...]  # read as they come
    dates: tuple[str, ...]  # DateTime
    json: tuple[str, ...]  # Json


def _shape(record: Callable[..., _R], key: str) -> _Shape[_R]:
    model = MODELS[key]
    fields = columns(model.record)
    dates, json_fields = model.of_type("DateTime"), model.of_type("Json")
    plain = tuple(f for f in fields if f not in dates and f not in json_fields)
    return _Shape(record, fields, plain, dates, json_fields)


_CHAT = _shape(ChatRecord, "chat")
_MESSAGE = _shape(MessageRecord, "message")
_TOOL_CALL = _shape(ToolCallRecord, "tool_call")
_REQUEST = _shape(RequestRecord, "request")
_SESSION = _shape(AgentSessionRecord, "agent_session")
_DATES = {key: frozenset(model.of_type("DateTime")) for key, model in MODELS.items()}


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _from_raw(shape: _Shape[_R], row: dict[str, Any]) -> _R:
    """A record from a raw SQLite row (DateTime read as the one comparable key, Json as text)."""
    dt = to_datetime
    return shape.record(
        **{f: row[f] for f in shape.plain},
        **{f: dt(row[f]) for f in shape.dates},
        **{f: _json_text(row[f]) for f in shape.json},
    )


def _from_model(shape: _Shape[_R], model: Any) -> _R:
    """A record from a generated prisma model (PostgreSQL: DateTime and Json decoded)."""
    return shape.record(**{f: getattr(model, f) for f in shape.fields})


def _truncate_ms(value: Any) -> Any:
    """What the database keeps of a datetime: milliseconds."""
    return truncate_ms(value) if isinstance(value, datetime) else value


class _Shared:
    """What every store over one client shares: its delegates, the open transaction."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.provider: str = str(getattr(client, "_active_provider", "") or "")
        if self.provider not in ("sqlite", "postgresql", "postgres"):
            raise StoreError(
                f"PrismaStore supports sqlite and postgresql clients, not {self.provider!r}"
            )
        if self.provider == "postgres":
            self.provider = "postgresql"
        self.package: ModuleType = sys.modules[type(client).__module__.rsplit(".", 1)[0]]
        self.json_type: Any = getattr(self.package, "Json", None) or self.package.fields.Json
        # Delegate attribute by each exact name of its model: the model's own (`LlmChat`, also
        # its table, the schemas we ship have no @@map), prisma-client-py's attribute
        # (`llmchat`) and the JS client's (`llmChat`, what the JS package's tableNames hold).
        # Any other spelling is a near miss: reported at bind, never picked.
        self.delegates: dict[str, str] = {}
        self.models: dict[str, str] = {}  # model name -> delegate attribute
        for name in dir(client):
            if name.startswith("_"):
                continue
            value: Any = getattr(client, name, None)
            if hasattr(value, "_model") and hasattr(value, "_client"):
                model = str(value._model.__name__)
                self.models[model] = name
                for spelling in (name, model, model[:1].lower() + model[1:]):
                    self.delegates[spelling] = name
        self.relations: dict[str, Any] = dict(getattr(client, "_relational_field_mappings", {}))
        self.current: ContextVar[Any] = ContextVar(f"nodellm_prisma_tx_{id(self)}", default=None)
        self.bound: dict[tuple[str, ...], PrismaStore] = {}

    def active(self) -> Any:
        """The transaction's client inside `transaction()`, else the user's client."""
        tx = self.current.get()
        return self.client if tx is None else tx


class PrismaStore:
    """The `Store` port on a prisma-client-py client. Create with `from_client()`."""

    def __init__(
        self, shared: _Shared, names: dict[str, str], absent: Mapping[str, str] | None = None
    ) -> None:
        self._s = shared
        self._n = names  # model key -> delegate attribute
        self.absent: Mapping[str, str] = absent or {}
        client = shared.client
        self._models: dict[str, Any] = {
            k: getattr(client, a)._model for k, a in names.items() if k not in self.absent
        }
        # Physical table names for raw SQL: the model name (the schemas we ship have no @@map).
        self._tables = {k: m.__name__ for k, m in self._models.items()}
        self._sqlite = shared.provider == "sqlite"
        chat_model = self._models["chat"]
        relations = set(shared.relations.get(chat_model.__name__, {}))
        fields = _model_fields(chat_model)
        self._chat_cols = frozenset(f for f in fields if f not in relations)

    @classmethod
    def from_client(cls, client: Any) -> PrismaStore:
        """A store over `client`, bound to the default delegates (checked at `bind`)."""
        shared = _shared_for(client)
        missing = [d for d in DEFAULT_DELEGATES.values() if d not in shared.delegates]
        if missing:
            return _Unbound(shared)  # type: ignore[return-value]
        return cls(shared, {k: shared.delegates[v] for k, v in DEFAULT_DELEGATES.items()})

    @property
    def dialect(self) -> str:
        return self._s.provider

    @property
    def client(self) -> Any:
        return self._s.client

    async def bind(self, table_names: TableNames) -> PrismaStore:
        return await _bind(self._s, table_names)

    async def chat_columns(self) -> frozenset[str]:
        return self._chat_cols

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Calls inside the block run in one interactive transaction; nested blocks join."""
        shared = self._s
        if shared.current.get() is not None:
            yield
            return
        async with shared.client.tx() as tx:
            token = shared.current.set(tx)
            try:
                yield
            finally:
                shared.current.reset(token)

    # -- helpers

    def _d(self, key: str) -> Any:
        return getattr(self._s.active(), self._n[key])

    def _data(self, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if k in JSON_FIELDS:
                text = encode_json(v, field=k)  # raises before anything is written
                if text is None:
                    if self._sqlite:
                        out[k] = None
                    continue
                out[k] = text if self._sqlite else self._s.json_type(v)
            elif isinstance(v, datetime):
                out[k] = as_utc(v)
            else:
                out[k] = v
        return out

    def _check(self, key: str, keys: Sequence[str]) -> None:
        fields = self._chat_cols if key == "chat" else _model_fields(self._models[key])
        unknown = [k for k in keys if k not in fields]
        if unknown:
            raise StoreError(
                f"unknown column(s) {', '.join(map(repr, unknown))} of model "
                f"{self._models[key].__name__!r}; columns: {', '.join(sorted(fields))}"
            )

    def _meta(self, value: Any) -> Any:
        if self._sqlite and isinstance(value, str):
            return json.loads(value)
        return value

    def _chat_record(self, obj: Any) -> ChatRecord:
        get = obj.get if isinstance(obj, dict) else lambda k, d=None: getattr(obj, k, d)
        extra = {c: get(c) for c in self._chat_cols if c not in _BASE_CHAT}
        return self._record(_CHAT, get, extra=extra)

    def _record(self, shape: _Shape[_R], get: Callable[[str], Any], **more: Any) -> _R:
        """A record of one row read field by field (chats and sessions: a row at a time)."""
        return shape.record(
            **{f: get(f) for f in shape.plain},
            **{f: to_datetime(get(f)) for f in shape.dates},
            **{f: self._meta(get(f)) for f in shape.json},
            **more,
        )

    async def _raw(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._s.active().query_raw(sql, *args)
        return rows

    def _select(self, key: str, fields: Sequence[str]) -> str:
        """SELECT of `fields` from a model's table on SQLite, DateTime ones as milliseconds."""
        dates = _DATES[key]
        cols = ", ".join(f'{_sqlite_ms(f)} AS "{f}"' if f in dates else f'"{f}"' for f in fields)
        return f'SELECT {cols} FROM "{self._tables[key]}"'

    async def _batch(self, ops: Sequence[tuple[str, str, dict[str, Any], list[str] | None]]) -> Any:
        """Send (method, model key, arguments, root selection) ops as one transactional batch
        and return the engine's per-operation results (which `batch_()` discards)."""
        client = self._s.active()
        queries = [
            {
                "query": client._make_query_builder(
                    method=method,
                    model=self._models[key],
                    arguments=arguments,
                    root_selection=root,
                ).build_query(),
                "variables": {},
            }
            for method, key, arguments, root in ops
        ]
        payload = json.dumps({"batch": queries, "transaction": True})
        response = await client._engine.query(payload, tx_id=client._tx_id)
        return [item["data"]["result"] for item in response["batchResult"]]

    # -- chats

    async def create_chat(self, row: Row) -> ChatRecord:
        self._check("chat", list(row))
        return self._chat_record(await self._d("chat").create(data=self._data(row)))

    async def get_chat(self, chat_id: str) -> ChatRecord | None:
        found = await self._d("chat").find_unique(where={"id": chat_id})
        return None if found is None else self._chat_record(found)

    async def update_chat(self, chat_id: str, values: Row) -> None:
        self._check("chat", list(values))
        values = {"updatedAt": utc_now(), **values}
        await self._d("chat").update_many(where={"id": chat_id}, data=self._data(values))

    async def delete_chat(self, chat_id: str) -> bool:
        count = await self._d("chat").delete_many(where={"id": chat_id})
        return bool(count)

    async def list_chats(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        where: Mapping[str, Any] | None = None,
        before: datetime | None = None,
        oldest_first: bool = False,
    ) -> list[ChatRecord]:
        conds = dict(where or {})
        self._check("chat", list(conds))
        if self._sqlite:
            cols = sorted(self._chat_cols)
            clauses = [f'"{k}" = ?' for k in conds]
            args: list[Any] = list(conds.values())
            if before is not None:
                clauses.append(f"{_SQLITE_MS} < ?")
                args.append(to_epoch_ms(before))
            filters = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            order = "ASC" if oldest_first else "DESC"
            rows = await self._raw(
                f"{self._select('chat', cols)}{filters} ORDER BY {_SQLITE_MS} {order}, "
                f'"id" {order} LIMIT ? OFFSET ?',
                *args,
                limit,
                offset,
            )
            return [self._chat_record(r) for r in rows]
        filt: dict[str, Any] = dict(conds)
        if before is not None:
            filt["createdAt"] = {"lt": as_utc(before)}
        direction = "asc" if oldest_first else "desc"
        found = await self._d("chat").find_many(
            where=filt,
            order=[{"createdAt": direction}, {"id": direction}],
            take=limit,
            skip=offset,
        )
        return [self._chat_record(c) for c in found]

    # -- messages

    async def begin_turn(
        self,
        chat_id: str,
        rows: Sequence[Row],
        *,
        after: Cursor | None = None,
        known: int | None = None,
        mark: WriteMark | None = None,
    ) -> TurnBegun:
        if not rows:
            return TurnBegun(await self.count_messages(chat_id))
        data = [self._data(r) for r in turn_rows(chat_id, rows)]
        self._check("message", list(data[0]))
        ids = [d["id"] for d in data]
        by_count = self._sqlite and known is not None and after is not None
        table = self._tables["message"] if self._sqlite else ""
        marks = ", ".join("?" * len(ids))
        if by_count:
            # As in SqlStore: a covering count of the chat's chatId index entries, minus ours
            # (found by primary key), beats a per-row createdAt test on SQLite.
            sql = (
                f'SELECT (SELECT COUNT(*) FROM "{table}" WHERE "chatId" = ?) - '
                f'(SELECT COUNT(*) FROM "{table}" WHERE "id" IN ({marks})) AS "n"'
            )
            count: tuple[str, str, dict[str, Any], list[str] | None] = (
                "query_raw",
                "message",
                {"query": sql, "parameters": [chat_id, *ids]},
                None,
            )
        elif self._sqlite:
            # Raw, so the cursor compares one key whichever form createdAt is stored in.
            sql = (
                f'SELECT COUNT(*) AS "n" FROM "{table}" WHERE "chatId" = ? '
                f'AND "id" NOT IN ({marks})'
            )
            args: list[Any] = [chat_id, *ids]
            if after is not None:
                at = to_epoch_ms(after[0])
                sql += f' AND ({_SQLITE_MS} > ? OR ({_SQLITE_MS} = ? AND "id" > ?))'
                args += [at, at, after[1]]
            count = ("query_raw", "message", {"query": sql, "parameters": args}, None)
        else:
            where: dict[str, Any] = {"chatId": chat_id, "id": {"not_in": ids}}
            if after is not None:
                where["OR"] = self._after(after)
            count = ("count", "message", {"where": where}, ["_count { _all }"])
        # One transactional batch: the inserts, then the count, in one engine request.
        _, counted = await self._batch(
            [("create_many", "message", {"data": data}, ["count"]), count]
        )
        if by_count:
            return TurnBegun.from_count(int(counted["rows"][0][0]), known)
        if self._sqlite:
            return TurnBegun(int(counted["rows"][0][0]))
        return TurnBegun(int(counted["_count"]["_all"]))

    @staticmethod
    def _after(after: Cursor) -> list[dict[str, Any]]:
        at = as_utc(after[0])
        return [{"createdAt": {"gt": at}}, {"createdAt": at, "id": {"gt": after[1]}}]

    async def insert_messages(self, rows: Sequence[Row]) -> None:
        await self._create_many("message", rows)

    async def _create_many(self, key: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        data = [self._data(r) for r in rows]
        for d in data:
            self._check(key, list(d))
        await self._d(key).create_many(data=data)

    async def list_messages(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        return await self._page("message", _MESSAGE, chat_id, after, limit)

    async def _page(
        self,
        key: str,
        shape: _Shape[_R],
        chat_id: str,
        after: Cursor | None,
        limit: int | None,
    ) -> list[_R]:
        """A chat's rows of `key` in (createdAt, id) order, after the cursor, at most `limit`."""
        if self._sqlite:
            sql = f'{self._select(key, shape.fields)} WHERE "chatId" = ?'
            args: list[Any] = [chat_id]
            if after is not None:
                at = to_epoch_ms(after[0])
                sql += f' AND ({_SQLITE_MS} > ? OR ({_SQLITE_MS} = ? AND "id" > ?))'
                args += [at, at, after[1]]
            sql += f' ORDER BY {_SQLITE_MS}, "id"'
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            rows = await self._raw(sql, *args)
            return [_from_raw(shape, r) for r in rows]
        where: dict[str, Any] = {"chatId": chat_id}
        if after is not None:
            where["OR"] = self._after(after)
        found = await self._d(key).find_many(where=where, order=_ORDER, take=limit)
        return [_from_model(shape, m) for m in found]

    async def count_messages(self, chat_id: str) -> int:
        return int(await self._d("message").count(where={"chatId": chat_id}))

    async def _update_message(self, message_id: str, values: Row) -> None:
        if not values:
            return
        self._check("message", list(values))
        await self._d("message").update_many(where={"id": message_id}, data=self._data(values))

    async def delete_message(self, message_id: str) -> None:
        await self._d("message").delete_many(where={"id": message_id})

    # -- tool calls

    async def create_tool_calls(
        self, rows: Sequence[Row], *, mark: WriteMark | None = None
    ) -> None:
        await self._create_many("tool_call", rows)

    async def set_tool_results(
        self, results: Sequence[tuple[str, str]], *, mark: WriteMark | None = None
    ) -> None:
        if not results:
            return
        attr = self._n["tool_call"]
        async with self._s.active().batch_() as batch:
            delegate = getattr(batch, attr)
            for row_id, result in results:
                delegate.update_many(where={"id": row_id}, data={"result": result})

    async def list_tool_calls(self, message_ids: Sequence[str]) -> list[ToolCallRecord]:
        if not message_ids or "tool_call" in self.absent:
            return []
        if self._sqlite:
            marks = ", ".join("?" * len(message_ids))
            rows = await self._raw(
                f'{self._select("tool_call", _TOOL_CALL.fields)} WHERE "messageId" IN ({marks}) '
                f'ORDER BY {_SQLITE_MS}, "id"',
                *message_ids,
            )
            return [_from_raw(_TOOL_CALL, r) for r in rows]
        found = await self._d("tool_call").find_many(
            where={"messageId": {"in": list(message_ids)}}, order=_ORDER
        )
        return [_from_model(_TOOL_CALL, t) for t in found]

    # -- requests

    async def create_requests(self, rows: Sequence[Row]) -> None:
        await self._create_many("request", rows)

    async def finish_turn(
        self,
        message_id: str,
        values: Row,
        requests: Sequence[Row],
        *,
        mark: WriteMark | None = None,
    ) -> None:
        self._check("message", list(values))
        if not requests:
            await self._update_message(message_id, values)
            return
        data = [self._data(r) for r in requests]
        for d in data:
            self._check("request", list(d))
        async with self._s.active().batch_() as batch:
            if values:
                getattr(batch, self._n["message"]).update_many(
                    where={"id": message_id}, data=self._data(values)
                )
            getattr(batch, self._n["request"]).create_many(data=data)

    async def list_requests(
        self, chat_id: str, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[RequestRecord]:
        if "request" in self.absent:
            return []
        return await self._page("request", _REQUEST, chat_id, after, limit)

    def _marks(self, n: int, first: int = 1) -> str:
        """n placeholders of the client's raw SQL (`?` on SQLite, `$k` on PostgreSQL)."""
        if self._sqlite:
            return ", ".join("?" * n)
        return ", ".join(f"${i}" for i in range(first, first + n))

    async def usage(
        self, chat_id: str | None = None, *, where: Mapping[str, Any] | None = None
    ) -> UsageTotals:
        if "request" in self.absent:
            return UsageTotals()
        table = self._tables["request"]
        sql = (
            'SELECT COUNT(*) AS "n", COALESCE(SUM(r."inputTokens"), 0) AS "inp", '
            'COALESCE(SUM(r."outputTokens"), 0) AS "outp", SUM(r."cost") AS "cost" '
            f'FROM "{table}" r'
        )
        args: list[Any] = []
        if chat_id is not None:
            sql += ' WHERE r."chatId" = ' + self._marks(1)
            args.append(chat_id)
        elif where:
            self._check("chat", list(where))
            keys = sorted(where)
            marks = [self._marks(1, i + 1) for i in range(len(keys))]
            sql += f' JOIN "{self._tables["chat"]}" c ON c."id" = r."chatId" WHERE ' + " AND ".join(
                f'c."{k}" = {mark}' for k, mark in zip(keys, marks, strict=True)
            )
            args.extend(where[k] for k in keys)
        (row,) = await self._raw(sql, *args)
        cost = row["cost"]
        return UsageTotals(
            requests=int(row["n"]),
            inputTokens=int(row["inp"]),
            outputTokens=int(row["outp"]),
            cost=None if cost is None else float(cost),
        )

    # -- agent sessions

    def _session_record(self, obj: Any) -> AgentSessionRecord:
        return self._record(_SESSION, lambda f: getattr(obj, f))

    async def create_agent_session(self, chat_row: Row, session_row: Row) -> AgentSessionRecord:
        self._check("chat", list(chat_row))
        self._check("agent_session", list(session_row))
        session = self._data(session_row)
        chat = self._data(chat_row)
        session.pop("chatId", None)
        # One nested create: the engine writes both rows in one transaction.
        created = await self._d("agent_session").create(data={**session, "chat": {"create": chat}})
        return self._session_record(created)

    async def get_agent_session(self, session_id: str) -> AgentSessionRecord | None:
        found = await self._d("agent_session").find_unique(where={"id": session_id})
        return None if found is None else self._session_record(found)

    async def agent_session_of(self, chat_id: str) -> AgentSessionRecord | None:
        found = await self._d("agent_session").find_unique(where={"chatId": chat_id})
        return None if found is None else self._session_record(found)

    async def update_agent_session(self, session_id: str, values: Row) -> None:
        self._check("agent_session", list(values))
        values = {"updatedAt": utc_now(), **values}
        await self._d("agent_session").update_many(
            where={"id": session_id}, data=self._data(values)
        )

    # -- administration (scoping, retention)

    async def owner_chats(self, kind: OwnedKind, ids: Sequence[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(ids))
        out: dict[str, str] = {}
        m = self._tables["message"]
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            marks = self._marks(len(chunk))
            if kind == "message":
                sql = f'SELECT "id", "chatId" FROM "{m}" WHERE "id" IN ({marks})'
            else:
                sql = (
                    f'SELECT t."id" AS "id", m."chatId" AS "chatId" FROM '
                    f'"{self._tables["tool_call"]}" t JOIN "{m}" m ON m."id" = t."messageId" '
                    f'WHERE t."id" IN ({marks})'
                )
            out.update({r["id"]: r["chatId"] for r in await self._raw(sql, *chunk)})
        return out

    async def subtree_counts(self, chat_ids: Sequence[str]) -> RowCounts:
        unique = list(dict.fromkeys(chat_ids))
        t = self._tables
        total = RowCounts()
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            n = len(chunk)
            parts = []
            for i, (table, column, join) in enumerate(
                [
                    (t["chat"], '"id"', ""),
                    (t["message"], '"chatId"', ""),
                    (
                        t["tool_call"],
                        'm."chatId"',
                        f' x JOIN "{t["message"]}" m ON m."id" = x."messageId"',
                    ),
                    (t["request"], '"chatId"', ""),
                    (t["agent_session"], '"chatId"', ""),
                ]
            ):
                marks = self._marks(n, 1 + i * n)
                parts.append(f'(SELECT COUNT(*) FROM "{table}"{join} WHERE {column} IN ({marks}))')
            names = ["chats", "messages", "toolCalls", "requests", "agentSessions"]
            sql = "SELECT " + ", ".join(f'{p} AS "{k}"' for p, k in zip(parts, names, strict=True))
            (row,) = await self._raw(sql, *(chunk * 5))
            total += RowCounts(*(int(row[k]) for k in names))
        return total

    async def delete_chats(self, chat_ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(chat_ids))
        deleted = 0
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            deleted += int(await self._d("chat").delete_many(where={"id": {"in": chunk}}))
        return deleted

    async def close(self) -> None:
        """The client is the user's: nothing to release."""


class _Unbound:
    """A client whose delegates are not the default ones: usable only through `bind()`."""

    def __init__(self, shared: _Shared) -> None:
        self._s = shared

    @property
    def dialect(self) -> str:
        return self._s.provider

    async def bind(self, table_names: TableNames) -> PrismaStore:
        return await _bind(self._s, table_names)

    async def close(self) -> None:
        """The client is the user's: nothing to release."""


# Generated clients cannot be weakly referenced (__slots__ without __weakref__), so what is
# learned about a client is kept for the few most recent ones, found by identity.
_RECENT = 8
_shared: dict[int, _Shared] = {}


def _shared_for(client: Any) -> _Shared:
    shared = _shared.get(id(client))
    if shared is None or shared.client is not client:
        shared = _Shared(client)
        _shared[id(client)] = shared
        while len(_shared) > _RECENT:
            del _shared[next(iter(_shared))]
    return shared


async def _bind(shared: _Shared, table_names: TableNames) -> PrismaStore:
    wanted = dict(DEFAULT_DELEGATES)
    for key in wanted:
        given = getattr(table_names, key)
        if given is not None:
            wanted[key] = given
    cache_key = tuple(wanted[k] for k in sorted(wanted))
    store = shared.bound.get(cache_key)
    if store is not None:
        return store
    names: dict[str, str] = {}
    absent: dict[str, str] = {}
    for key, name in wanted.items():
        attr = shared.delegates.get(name)
        if attr is None and key in OPTIONAL_MODELS and not near_misses(name, shared.delegates):
            # A client generated from a minimal schema: reads see no rows.
            absent[key] = attr = name
        if attr is None:
            raise StoreError(
                "the Prisma client has no "
                + missing_name_error("model", name, shared.models, what=key)
                + " (or their delegates: "
                + ", ".join(sorted(shared.models.values()))
                + ")"
            )
        names[key] = attr
    store = PrismaStore(shared, names, absent)
    await _check_columns(shared, store)
    shared.bound[cache_key] = store
    return store


async def _check_columns(shared: _Shared, store: PrismaStore) -> None:
    """SchemaDriftError unless the bound models' tables hold every column the store writes
    (`drift.py`): the client was generated from a schema, the database may be at another
    migration. One catalogue query per table, when a set of delegates is first bound."""
    dialect = dialect_for(shared.provider)
    physical = dict(store._tables)
    tables = build_tables(physical)
    wanted = [getattr(tables, k) for k in physical]
    declared: dict[str, dict[str, str]] = {}
    for table in wanted:
        rows = await shared.client.query_raw(dialect.columns_sql, table.name)
        declared[table.name] = {str(r[0]): str(r[1] or "") for r in map(_values, rows)}
    problems = drift_problems(dialect, wanted, declared)
    if problems:
        existing = {str(_values(r)[0]) for r in await shared.client.query_raw(dialect.tables_sql)}
        migrations = None
        if "_prisma_migrations" in existing:
            migrations = [_values(r) for r in await shared.client.query_raw(MIGRATIONS_SQL)]
        raise drift_error(problems, dialect, migrations)


def _values(row: Mapping[str, Any]) -> list[Any]:
    """A query_raw row's values in column order."""
    return list(row.values())


def _model_fields(model: Any) -> frozenset[str]:
    fields = getattr(model, "model_fields", None) or getattr(model, "__fields__", {})
    return frozenset(fields)


if TYPE_CHECKING:

    def _implements_both_ports(store: PrismaStore) -> Store:  # checked by mypy, never called
        return store
