"""The dashboard's reads: SQLAlchemy Core over the store's tables, aggregated in the database.

Every figure on a page comes from a GROUP BY (or a window) in SQL; Python only arranges the
grouped rows for display. What differs between SQLite and PostgreSQL (how a DateTime is
stored, compared and bucketed, how a connection is made read-only) is asked of the store's
dialect object (stores/dialects.py). Nothing here writes: connections the app opens itself
are read-only, and this module issues SELECTs only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    inspect,
    literal_column,
    null,
    or_,
    over,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeEngine

from ..core.clock import utc_now
from ..core.jsoncodec import decode_arguments
from ..core.jsoncodec import decode_object as decode_raw
from ..stores.base import StoreError
from ..stores.dialects import SqlDialect, dialect_for
from ..stores.tables import Tables, build_tables

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
DEFAULT_RANGE = "7d"
DEFAULT_BUCKET = {"24h": "hour", "7d": "day", "30d": "day", "90d": "week", "all": "week"}
BUCKETS = tuple(SqlDialect.bucket_ms_of)
PERCENTILES = (0.5, 0.95, 0.99)
PAGE_SIZE = 50
# The share of a table's rows in a range from which reading the whole table beats reading
# the range through the createdAt index, where the dialect asks (SQLite: the bench's 550k
# requests and 1M messages, the overview's statements either way, in CPU time: requests,
# 22% of them 123 ms through the index against 134 read whole, 33% 175 against 165;
# messages, which carry their text, 33% 143 against 167, 50% 218 against 184).
SCAN_SHARE = {"request": 0.25, "message": 0.4}
# Messages per page of the conversation view: a 10,000-message chat is read and drawn a
# page at a time.
MESSAGES_PER_PAGE = 100
EXPENSIVE = 10
_STANDARD_CHAT_COLUMNS = frozenset(
    ("id", "model", "provider", "instructions", "metadata", "createdAt", "updatedAt")
)


class DashboardError(Exception):
    """A request the dashboard cannot answer as asked; the message names what is wrong."""


def dialect_of(name: str) -> SqlDialect:
    """The store's dialect object for a database the dashboard can read."""
    try:
        return dialect_for(name)
    except StoreError:
        raise DashboardError(
            f"the dashboard reads SQLite and PostgreSQL databases, not {name!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class ModelTotals:
    provider: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost: float
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    model: str
    requests: int
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class ExpensiveChat:
    chat_id: str
    model: str | None
    requests: int
    tokens: int
    cost: float


@dataclass(slots=True)
class Overview:
    range: str
    bucket: str
    since: datetime | None
    by_model: list[ModelTotals]
    latency: list[Latency]
    expensive: list[ExpensiveChat]
    series: list[dict[str, Any]]
    reasoning_series: list[dict[str, Any]]
    totals: ModelTotals = field(init=False)

    def __post_init__(self) -> None:
        # The sum of a handful of grouped rows (one per model), not of the request rows.
        rows = self.by_model
        self.totals = ModelTotals(
            provider="",
            model="all",
            requests=sum(r.requests for r in rows),
            input_tokens=sum(r.input_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            reasoning_tokens=sum(r.reasoning_tokens for r in rows),
            cost=sum(r.cost for r in rows),
            errors=sum(r.errors for r in rows),
        )


@dataclass(frozen=True, slots=True)
class ChatFilter:
    id: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    column: str | None = None
    value: str | None = None
    agent_class: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRow:
    id: str
    model: str | None
    provider: str | None
    created_at: datetime | None
    extra: dict[str, Any]
    agent_class: str | None
    agent_metadata: Any
    messages: int
    requests: int
    tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class ChatPage:
    rows: list[ChatRow]
    total: int
    page: int
    pages: int
    custom_columns: tuple[str, ...]
    models: list[str]
    agent_classes: list[str]


@dataclass(slots=True)
class ToolCallView:
    id: str
    name: str
    arguments: str
    result: str | None
    thought: str | None


@dataclass(slots=True)
class RequestView:
    id: str
    message_id: str | None
    provider: str
    model: str
    status: int
    duration: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    correction_rounds: int | None
    created_at: datetime | None

    @property
    def failed(self) -> bool:
        return self.status >= 400


@dataclass(slots=True)
class RoundView:
    content: str | None
    thinking: str | None
    calls: list[ToolCallView]


@dataclass(slots=True)
class MessageView:
    id: str
    role: str
    content: str | None
    created_at: datetime | None
    model: str | None
    provider: str | None
    thinking: str | None
    thinking_tokens: int | None
    input_tokens: int | None
    output_tokens: int | None
    interrupted: bool
    reason: str | None
    raw: dict[str, Any]
    rounds: list[RoundView] = field(default_factory=list)
    requests: list[RequestView] = field(default_factory=list)
    failed_turn: bool = False


@dataclass(slots=True)
class Conversation:
    id: str
    model: str | None
    provider: str | None
    instructions: str | None
    metadata: Any
    created_at: datetime | None
    extra: dict[str, Any]
    agent_class: str | None
    agent_metadata: Any
    messages: list[MessageView]
    requests: int
    tokens: int
    cost: float
    # This page of the history: messages first_message..first_message + len(messages) - 1
    # (counted from 1) of message_count.
    page: int = 1
    pages: int = 1
    message_count: int = 0
    first_message: int = 1


def _coerce(value: str, kind: TypeEngine[Any]) -> Any:
    """A filter's text as the column's Python type (PostgreSQL compares typed values)."""
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return value
    if python_type is int:
        return int(value)
    if python_type is float:
        return float(value)
    if python_type is bool:
        return value.lower() in ("1", "true", "yes")
    return value


class Reader:
    """Read-only queries over one database's nodellm-orm tables."""

    def __init__(
        self,
        engine: AsyncEngine,
        table_names: Mapping[str, str] | None = None,
        where: Mapping[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine.dialect.name)
        self._names = dict(table_names or {})
        self._where = dict(where or {})
        self._t: Tables | None = None
        self._custom: tuple[str, ...] = ()
        self._types: dict[str, TypeEngine[Any]] = {}
        self._lock = asyncio.Lock()

    # -- set-up

    async def check(self) -> None:
        """Find the tables and the chat table's columns; validate the `where` scope."""
        async with self._lock:
            if self._t is not None:
                return
            tables = build_tables(self._names)
            names = {
                "chat": tables.chat.name,
                "message": tables.message.name,
                "tool_call": tables.tool_call.name,
                "request": tables.request.name,
                "agent_session": tables.agent_session.name,
            }

            def look(conn: Connection) -> tuple[list[str], list[Any]]:
                insp = inspect(conn)
                return insp.get_table_names(), list(insp.get_columns(names["chat"]))

            async with self.engine.connect() as conn:
                unsupported = self.dialect.analytics_unsupported(conn.dialect.server_version_info)
                if unsupported is not None:
                    raise DashboardError(unsupported)
                existing = await conn.run_sync(lambda c: inspect(c).get_table_names())
                missing = [f"{n!r} (for {m})" for m, n in names.items() if n not in existing]
                if missing:
                    verb = "does not exist" if len(missing) == 1 else "do not exist"
                    raise DashboardError(
                        f"table{'s' if len(missing) > 1 else ''} {', '.join(missing)} {verb}; "
                        f"available tables: {', '.join(sorted(existing)) or '(none)'}"
                    )
                _, columns = await conn.run_sync(look)
            types = {str(c["name"]): c["type"] for c in columns}
            custom = [n for n in types if n not in _STANDARD_CHAT_COLUMNS]
            for name in custom:
                kind = types[name]
                tables.chat.append_column(Column(name, kind if kind is not None else NullType()))
            for key in self._where:
                if key not in types:
                    raise DashboardError(
                        f"--where: {tables.chat.name} has no column {key!r}; its columns: "
                        f"{', '.join(types)}"
                    )
            self._types = types
            self._custom = tuple(custom)
            self._t = tables

    async def _tables(self) -> Tables:
        if self._t is None:
            await self.check()
        assert self._t is not None
        return self._t

    def _chat_scope(self, t: Tables) -> ColumnElement[bool]:
        clauses = [
            t.chat.c[k] == _coerce(v, self._types[k]) for k, v in sorted(self._where.items())
        ]
        return and_(true(), *clauses)

    def _scoped(self, t: Tables, chat_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """Rows of chats inside the `where` scope (everything when there is none)."""
        if not self._where:
            return true()
        return chat_id.in_(select(t.chat.c.id).where(self._chat_scope(t)))

    @property
    def scope(self) -> dict[str, str]:
        return dict(self._where)

    # -- overview

    async def _wide_ranges(
        self, tables: Sequence[tuple[Table, float]], since: datetime | None
    ) -> tuple[bool, ...]:
        """For each (table, share), whether `createdAt >= since` holds for that share of the
        table's rows or more (every row when there is no `since`), where the dialect must be
        told so."""
        d = self.dialect
        probes = [None if since is None else d.wide_range(t, since, share) for t, share in tables]
        if all(p is None for p in probes):
            return tuple(since is None for _ in tables)
        wide = []
        async with self.engine.connect() as conn:
            for probe in probes:
                wide.append(since is None if probe is None else bool(await conn.scalar(probe)))
        return tuple(wide)

    async def overview(self, range_name: str, bucket: str | None) -> Overview:
        if range_name not in RANGES:
            raise DashboardError(f"range must be one of {', '.join(RANGES)}, not {range_name!r}")
        bucket = bucket or DEFAULT_BUCKET[range_name]
        if bucket not in BUCKETS:
            raise DashboardError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
        t = await self._tables()
        d = self.dialect
        r, m = t.request, t.message
        span = RANGES[range_name]
        since = None if span is None else utc_now() - span
        wide_requests, wide_messages = await self._wide_ranges(
            ((r, SCAN_SHARE["request"]), (m, SCAN_SHARE["message"])), since
        )
        in_range = and_(
            d.at_or_after(r.c.createdAt, since, scan=wide_requests) if since else true(),
            self._scoped(t, r.c.chatId),
        )
        msg_range = and_(
            d.at_or_after(m.c.createdAt, since, scan=wide_messages) if since else true(),
            m.c.thinkingTokens.is_not(None),
            m.c.role == "assistant",
            self._scoped(t, m.c.chatId),
        )
        # One grouped pass over the range's request rows feeds two tables: grouped by
        # (chat, bucket, provider, model), about a row per chat and bucket it spans (3,400
        # for the bench's last 30 days, from 180,000 request rows), it regroups cheaply into
        # the series (bucket, provider, model) and into the dearest chats (chat). Each GROUP
        # BY over the raw rows is a sort of all of them on SQLite and a scan on PostgreSQL:
        # this pass replaces two. The bucket is grouped in the dialect's cheapest form and
        # read as epoch milliseconds on the regrouped rows only.
        b = d.bucket(r.c.createdAt, bucket)
        if d.groups_by_sorting and wide_requests and bucket != "hour":
            usage = _usage_by_chat_first(r, b, in_range).cte("usage")
        else:
            usage = _usage(r, b, in_range).cte("usage")
        u = usage.c
        n, i, o = func.sum(u.n), func.sum(u.i), func.sum(u.o)
        cost = func.coalesce(func.sum(u.c), 0.0)
        string, big = t.chat.c.id.type, BigInteger()
        series_part = select(
            _lit("0").label("part"),
            d.epoch_ms(u.b).label("b"),
            u.provider,
            u.model,
            cast(null(), string).label("chat_id"),
            cast(null(), string).label("chat_model"),
            n.label("n"),
            i.label("i"),
            o.label("o"),
            cost.label("c"),
            func.sum(u.e).label("e"),
        ).group_by(u.b, u.provider, u.model)
        top_cost = cost.label("c")
        top = (
            select(u.chatId, n.label("n"), func.sum(u.i + u.o).label("tokens"), top_cost)
            .group_by(u.chatId)
            .order_by(top_cost.desc(), u.chatId)
            .limit(EXPENSIVE)
            .subquery("top")
        )
        top_part = select(
            _lit("1"),
            cast(null(), big),
            cast(null(), string),
            cast(null(), string),
            top.c.chatId,
            t.chat.c.model,
            top.c.n,
            top.c.tokens,
            cast(null(), big),
            top.c.c,
            cast(null(), big),
        ).join_from(top, t.chat, t.chat.c.id == top.c.chatId, isouter=True)
        both = union_all(series_part, top_part).subquery("both")
        usage_q = select(both).order_by(
            both.c.part, both.c.b, both.c.provider, both.c.model, both.c.c.desc(), both.c.chat_id
        )
        mb = d.bucket(m.c.createdAt, bucket).label("b")
        thinking = (
            select(mb, m.c.provider, m.c.modelId, func.sum(m.c.thinkingTokens).label("k"))
            .where(msg_range)
            .group_by(mb, m.c.provider, m.c.modelId)
            .subquery("thinking")
        )
        reasoning_q = select(
            d.epoch_ms(thinking.c.b), thinking.c.provider, thinking.c.modelId, thinking.c.k
        ).order_by(thinking.c.b)
        latency_q = _percentiles(r.c.duration, r.c.model, in_range, PERCENTILES)

        async def fetch(query: Any) -> list[Any]:
            async with self.engine.connect() as conn:
                for statement in d.aggregate_settings():
                    await conn.exec_driver_sql(statement)
                return list((await conn.execute(query)).all())

        # Three scans (two of the request rows, one of the messages), each on its own
        # connection: they run side by side (the drivers leave the interpreter's lock while
        # the database works).
        usage_rows, reasoning_rows, latency_rows = await asyncio.gather(
            fetch(usage_q), fetch(reasoning_q), fetch(latency_q)
        )
        series_rows = [row[1:4] + row[6:] for row in usage_rows if row[0] == 0]
        expensive_rows = [(*row[4:8], row[9]) for row in usage_rows if row[0] == 1]

        # Per-model totals: the time buckets of series_rows regrouped (a few hundred rows).
        totals: dict[tuple[str, str], list[float]] = {}
        for _, provider, model, n, inp, out, c, err in series_rows:
            acc = totals.setdefault((provider, model), [0, 0, 0, 0, 0.0, 0])
            acc[0] += n
            acc[1] += inp or 0
            acc[2] += out or 0
            acc[4] += c or 0.0
            acc[5] += err or 0
        series = [
            {
                "bucket": int(bk),
                "provider": provider,
                "model": model,
                "requests": int(n),
                "input": int(inp or 0),
                "output": int(out or 0),
                "cost": float(c or 0.0),
                "errors": int(err or 0),
            }
            for bk, provider, model, n, inp, out, c, err in series_rows
        ]
        reasoning = []
        for bk, provider, model, tokens in reasoning_rows:
            key = (provider or "", model or "")
            totals.setdefault(key, [0, 0, 0, 0, 0.0, 0])[3] += tokens or 0
            reasoning.append(
                {"bucket": int(bk), "provider": key[0], "model": key[1], "tokens": int(tokens)}
            )
        by_model = [
            ModelTotals(
                provider=p,
                model=mo,
                requests=int(a[0]),
                input_tokens=int(a[1]),
                output_tokens=int(a[2]),
                reasoning_tokens=int(a[3]),
                cost=float(a[4]),
                errors=int(a[5]),
            )
            for (p, mo), a in sorted(totals.items())
        ]
        return Overview(
            range=range_name,
            bucket=bucket,
            since=since,
            by_model=by_model,
            latency=[
                Latency(str(g), int(n), float(p50), float(p95), float(p99))
                for g, n, p50, p95, p99 in latency_rows
            ],
            expensive=[
                ExpensiveChat(str(cid), model, int(n), int(tok or 0), float(c or 0.0))
                for cid, model, n, tok, c in expensive_rows
            ],
            series=series,
            reasoning_series=reasoning,
        )

    # -- chats

    def custom_columns(self) -> tuple[str, ...]:
        return self._custom

    def filterable_columns(self) -> tuple[str, ...]:
        return ("model", "provider", *self._custom)

    async def chats(self, flt: ChatFilter, page: int = 1) -> ChatPage:
        t = await self._tables()
        d = self.dialect
        c, s = t.chat, t.agent_session
        where: list[ColumnElement[bool]] = [self._chat_scope(t)]
        if flt.id:
            where.append(c.c.id.startswith(flt.id, autoescape=True))
        if flt.model:
            where.append(c.c.model == flt.model)
        if flt.since is not None:
            where.append(d.at_or_after(c.c.createdAt, flt.since))
        if flt.until is not None:
            where.append(d.before(c.c.createdAt, flt.until))
        if flt.column:
            if flt.column not in self.filterable_columns():
                raise DashboardError(
                    f"cannot filter on column {flt.column!r}; filterable columns: "
                    f"{', '.join(self.filterable_columns())}"
                )
            if flt.value is None:
                raise DashboardError(f"a filter on {flt.column!r} needs a value")
            try:
                wanted = _coerce(flt.value, self._types[flt.column])
            except ValueError as exc:
                raise DashboardError(f"bad value for {flt.column!r}: {exc}") from exc
            where.append(c.c[flt.column] == wanted)
        if flt.agent_class:
            where.append(s.c.agentClass == flt.agent_class)
        cond = and_(*where)
        joined = c.outerjoin(s, s.c.chatId == c.c.id)
        count_q = select(func.count()).select_from(joined).where(cond)
        key = d.epoch_ms(c.c.createdAt)
        page = max(page, 1)
        page_q = (
            select(c, s.c.agentClass, s.c.metadata.label("agent_metadata"))
            .select_from(joined)
            .where(cond)
            .order_by(key.desc(), c.c.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
        scoped = self._chat_scope(t)
        models_q = (
            select(c.c.model).where(scoped, c.c.model.is_not(None)).distinct().order_by(c.c.model)
        )
        classes_q = (
            select(s.c.agentClass)
            .join_from(s, c, c.c.id == s.c.chatId)
            .where(scoped)
            .distinct()
            .order_by(s.c.agentClass)
        )
        async with self.engine.connect() as conn:
            total = int((await conn.execute(count_q)).scalar_one())
            rows = (await conn.execute(page_q)).mappings().all()
            ids = [row["id"] for row in rows]
            counts: dict[str, int] = {}
            usage: dict[str, tuple[int, int, float]] = {}
            if ids:
                m, r = t.message, t.request
                for cid, n in await conn.execute(
                    select(m.c.chatId, func.count()).where(m.c.chatId.in_(ids)).group_by(m.c.chatId)
                ):
                    counts[cid] = int(n)
                for cid, n, tok, cost in await conn.execute(
                    select(
                        r.c.chatId,
                        func.count(),
                        func.sum(r.c.inputTokens + r.c.outputTokens),
                        func.coalesce(func.sum(r.c.cost), 0.0),
                    )
                    .where(r.c.chatId.in_(ids))
                    .group_by(r.c.chatId)
                ):
                    usage[cid] = (int(n), int(tok or 0), float(cost or 0.0))
            models = [str(v) for (v,) in await conn.execute(models_q)]
            classes = [str(v) for (v,) in await conn.execute(classes_q)]
        out = []
        for row in rows:
            n, tok, cost = usage.get(row["id"], (0, 0, 0.0))
            out.append(
                ChatRow(
                    id=row["id"],
                    model=row["model"],
                    provider=row["provider"],
                    created_at=row["createdAt"],
                    extra={k: row[k] for k in self._custom},
                    agent_class=row["agentClass"],
                    agent_metadata=row["agent_metadata"],
                    messages=counts.get(row["id"], 0),
                    requests=n,
                    tokens=tok,
                    cost=cost,
                )
            )
        return ChatPage(
            rows=out,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            custom_columns=self._custom,
            models=models,
            agent_classes=classes,
        )

    # -- one conversation

    async def conversation(self, chat_id: str, page: int = 1) -> Conversation | None:
        """One page of a chat's history (MESSAGES_PER_PAGE messages, oldest first), with the
        tool calls and request rows of those turns; the chat's totals cover every page."""
        if page < 1:
            raise DashboardError(f"page must be 1 or more, not {page}")
        t = await self._tables()
        d = self.dialect
        c, s, m, tc, r = t.chat, t.agent_session, t.message, t.tool_call, t.request
        chat_q = (
            select(c, s.c.agentClass, s.c.metadata.label("agent_metadata"))
            .select_from(c.outerjoin(s, s.c.chatId == c.c.id))
            .where(c.c.id == chat_id, self._chat_scope(t))
        )
        count_q = select(func.count()).select_from(m).where(m.c.chatId == chat_id)
        totals_q = select(
            func.count(),
            func.coalesce(func.sum(r.c.inputTokens + r.c.outputTokens), 0),
            func.coalesce(func.sum(r.c.cost), 0.0),
        ).where(r.c.chatId == chat_id)
        # One message past the page: the next page's first, which bounds this page's time
        # span and tells whether the page's last question was answered.
        messages_q = (
            select(m)
            .where(m.c.chatId == chat_id)
            .order_by(d.epoch_ms(m.c.createdAt), m.c.id)
            .limit(MESSAGES_PER_PAGE + 1)
            .offset((page - 1) * MESSAGES_PER_PAGE)
        )
        async with self.engine.connect() as conn:
            chat = (await conn.execute(chat_q)).mappings().first()
            if chat is None:
                return None
            count = int((await conn.execute(count_q)).scalar_one())
            pages = max(1, -(-count // MESSAGES_PER_PAGE))
            if page > pages:
                raise DashboardError(
                    f"page {page} is past the last page of this chat ({pages}: "
                    f"{count:,} messages, {MESSAGES_PER_PAGE} a page)"
                )
            n_requests, tokens, cost = (await conn.execute(totals_q)).one()
            rows = (await conn.execute(messages_q)).mappings().all()
            message_rows, after = rows[:MESSAGES_PER_PAGE], rows[MESSAGES_PER_PAGE:]
            ids = [row["id"] for row in message_rows]
            call_rows: Sequence[RowMapping] = []
            if ids:
                call_rows = (
                    (
                        await conn.execute(
                            select(tc)
                            .where(tc.c.messageId.in_(ids))
                            .order_by(d.epoch_ms(tc.c.createdAt), tc.c.id)
                        )
                    )
                    .mappings()
                    .all()
                )
            # A request row goes beside its assistant message; one with none (a turn that
            # failed before any answer) beside the question before it, so such rows are this
            # page's when they fall in its time span (from its first message, page 1 from
            # the start, up to the next page's first message).
            orphan: list[ColumnElement[bool]] = [r.c.messageId.is_(None)]
            if page > 1 and message_rows:
                orphan.append(d.at_or_after(r.c.createdAt, _aware(message_rows[0]["createdAt"])))
            if after:
                orphan.append(d.before(r.c.createdAt, _aware(after[0]["createdAt"])))
            own = r.c.messageId.in_(ids) if ids else false()
            requests_q = (
                select(r)
                .where(r.c.chatId == chat_id, or_(own, and_(*orphan)))
                .order_by(d.epoch_ms(r.c.createdAt), r.c.id)
            )
            request_rows = (await conn.execute(requests_q)).mappings().all()
        conv = _arrange(
            chat,
            self._custom,
            message_rows,
            call_rows,
            request_rows,
            next_role=after[0]["role"] if after else None,
            totals=(int(n_requests), int(tokens), float(cost)),
        )
        conv.page, conv.pages, conv.message_count = page, pages, count
        conv.first_message = (page - 1) * MESSAGES_PER_PAGE + 1
        return conv


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _usage_sums(r: Table) -> list[ColumnElement[Any]]:
    """What a usage row adds up of its request rows: n, i(nput), o(utput), c(ost), e(rrors)."""
    return [
        func.count().label("n"),
        func.sum(r.c.inputTokens).label("i"),
        func.sum(r.c.outputTokens).label("o"),
        func.sum(r.c.cost).label("c"),
        func.sum(case((r.c.statusCode >= 400, 1), else_=0)).label("e"),
    ]


def _usage(r: Table, b: ColumnElement[Any], where: ColumnElement[bool]) -> Select[Any]:
    """Request rows grouped by (chat, bucket, provider, model). On SQLite the chat leads: a
    sort of the rows settles most comparisons on it (the bench's 550k rows: 783 -> 618 ms;
    30 days of them through the createdAt index: 312 -> 297 ms)."""
    keys = (r.c.chatId, b, r.c.provider, r.c.model)
    return (
        select(b.label("b"), r.c.provider, r.c.model, r.c.chatId, *_usage_sums(r))
        .where(where)
        .group_by(*keys)
    )


def _usage_by_chat_first(
    r: Table, b: ColumnElement[Any], where: ColumnElement[bool]
) -> Select[Any]:
    """What `_usage` returns, for a range holding most of a database whose GROUP BY sorts.

    A chat mostly runs on one provider and model within one bucket. Grouped by chat alone,
    which the chatId index delivers in order (no sort), a chat whose rows share one bucket,
    provider and model has its usage row already; only the chats that span buckets or
    models (100 of 3,300 over the bench's last 30 days, by day) are grouped again, finely,
    through the same index. The statement alone, CPU, on the bench's 550k requests: 90 days
    by week 724 -> 443 ms, 30 days by day 278 -> 218 ms. By the hour most chats span buckets
    (a conversation of an hour crosses one boundary), both passes read most rows, and it
    lost (the whole overview over all 90 days by hour 984 -> 1,244 ms): hours take `_usage`.
    """
    per_chat = (
        select(
            r.c.chatId,
            func.min(b).label("b"),
            func.max(b).label("b_hi"),
            func.min(r.c.provider).label("provider"),
            func.max(r.c.provider).label("provider_hi"),
            func.min(r.c.model).label("model"),
            func.max(r.c.model).label("model_hi"),
            *_usage_sums(r),
        )
        .where(where)
        .group_by(r.c.chatId)
        .cte("per_chat")
    )
    p = per_chat.c
    uniform = and_(p.b == p.b_hi, p.provider == p.provider_hi, p.model == p.model_hi)
    mixed = select(p.chatId).where(~uniform)
    return (
        union_all(
            select(p.b, p.provider, p.model, p.chatId, p.n, p.i, p.o, p.c, p.e).where(uniform),
            _usage(r, b, and_(where, r.c.chatId.in_(mixed))),
        )
        .subquery("usage_rows")
        .select()
    )


def _lit(text: str) -> ColumnElement[Any]:
    # Literal constants rather than bind parameters keep the statements cacheable.
    return literal_column(text)


def _percentiles(
    value: ColumnElement[Any],
    group: ColumnElement[Any],
    where: ColumnElement[bool],
    fractions: tuple[float, ...],
) -> Select[Any]:
    """Rows (group, count, p for each fraction): continuous percentiles per group, as
    PostgreSQL's percentile_cont defines them.

    A histogram first (one row per distinct value: durations repeat a lot); running counts
    over those few rows then give the rank range [lo, hi) each value covers, and the answer
    interpolates between the two neighbouring ranks. Both databases take it: over all 550k
    bench requests PostgreSQL's own percentile_cont sorts every row (270 ms) where its
    histogram hashes them (100 ms), and over 30 days the two tie. The value leads the
    histogram's GROUP BY: SQLite sorts the rows, and an integer first settles most
    comparisons without reading the group's text (470 -> 390 ms over the 550k rows).
    """
    hist = (
        # An int4 count: PostgreSQL sums those as bigint, where summing bigint gives numeric,
        # whose arithmetic in the running sums and ranks below costs 25 ms over 4,000 rows.
        select(group.label("g"), value.label("v"), cast(func.count(), Integer).label("c"))
        .where(where)
        .group_by(value, group)
        .subquery("hist")
    )
    running = over(func.sum(hist.c.c), partition_by=hist.c.g, order_by=hist.c.v)
    ranked = select(
        hist.c.g,
        hist.c.v,
        (running - hist.c.c).label("lo"),
        running.label("hi"),
        over(func.sum(hist.c.c), partition_by=hist.c.g).label("n"),
    ).subquery("ranked")
    g, v, lo, hi, n = ranked.c.g, ranked.c.v, ranked.c.lo, ranked.c.hi, ranked.c.n
    columns = [g, func.max(n).label("n")]
    for i, p in enumerate(fractions):
        # Position h = (n - 1) * p; interpolate between ranks floor(h) and floor(h) + 1.
        h = cast(n - 1, Float) * _lit(repr(float(p)))
        k = cast(func.floor(h), Integer)
        columns.append(func.max(case((and_(lo <= k, k < hi), v))).label(f"lo{i}"))
        columns.append(func.max(case((and_(lo <= k + 1, k + 1 < hi), v))).label(f"hi{i}"))
        columns.append(func.max(h - k).label(f"f{i}"))
    picked = select(*columns).group_by(g).subquery("picked")
    out: list[ColumnElement[Any]] = [picked.c.g, picked.c.n]
    for i in range(len(fractions)):
        low, high, f = picked.c[f"lo{i}"], picked.c[f"hi{i}"], picked.c[f"f{i}"]
        out.append((cast(low, Float) + f * (func.coalesce(high, low) - low)).label(f"p{i}"))
    return select(*out).order_by(picked.c.g)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _pretty_arguments(text: str) -> str:
    return json.dumps(decode_arguments(text), ensure_ascii=False, indent=2)


def _arrange(
    chat: RowMapping,
    custom: Sequence[str],
    message_rows: Sequence[RowMapping],
    call_rows: Sequence[RowMapping],
    request_rows: Sequence[RowMapping],
    next_role: str | None,
    totals: tuple[int, int, float],
) -> Conversation:
    """A page of one chat's rows laid out turn by turn, as the model saw them (display only).

    `next_role` is the role of the message after the page (None on the last page); `totals`
    the whole chat's requests, tokens and cost, summed in SQL."""
    calls: dict[str, list[ToolCallView]] = {}
    for row in call_rows:
        calls.setdefault(row["messageId"], []).append(
            ToolCallView(
                id=row["toolCallId"],
                name=row["name"],
                arguments=_pretty_arguments(row["arguments"]),
                result=row["result"],
                thought=row["thought"],
            )
        )
    messages: list[MessageView] = []
    by_id: dict[str, MessageView] = {}
    for row in message_rows:
        raw = decode_raw(row["contentRaw"])
        view = MessageView(
            id=row["id"],
            role=row["role"],
            content=row["content"],
            created_at=row["createdAt"],
            model=row["modelId"],
            provider=row["provider"],
            thinking=row["thinkingText"],
            thinking_tokens=row["thinkingTokens"],
            input_tokens=row["inputTokens"],
            output_tokens=row["outputTokens"],
            interrupted=bool(raw.get("interrupted")),
            reason=_text(raw.get("reason")),
            raw=raw,
        )
        own = calls.get(row["id"], [])
        if own:
            view.rounds = _rounds(raw, own)
        messages.append(view)
        by_id[view.id] = view

    unanswered: set[str] = set()
    for i, view in enumerate(messages):
        following = messages[i + 1].role if i + 1 < len(messages) else next_role
        if view.role == "user" and following != "assistant":
            unanswered.add(view.id)
    views = [_request_view(row) for row in request_rows]
    for req in views:
        target = by_id.get(req.message_id) if req.message_id else None
        if target is None:
            # No assistant row (a turn that failed before any content keeps only its user
            # message and request rows): the request goes beside the question before it.
            target = _question_before(messages, req.created_at, unanswered)
        if target is not None:
            target.requests.append(req)
    for view in messages:
        if view.id in unanswered:
            view.failed_turn = any(q.failed for q in view.requests)
    requests, tokens, cost = totals
    return Conversation(
        id=chat["id"],
        model=chat["model"],
        provider=chat["provider"],
        instructions=chat["instructions"],
        metadata=chat["metadata"],
        created_at=chat["createdAt"],
        extra={k: chat[k] for k in custom},
        agent_class=chat["agentClass"],
        agent_metadata=chat["agent_metadata"],
        messages=messages,
        requests=requests,
        tokens=tokens,
        cost=cost,
    )


def _rounds(raw: Mapping[str, Any], calls: list[ToolCallView]) -> list[RoundView]:
    by_call = {call.id: call for call in calls}
    rounds: list[RoundView] = []
    placed: set[str] = set()
    entries = raw.get("rounds")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        own = [by_call[i] for i in entry.get("toolCallIds", ()) if i in by_call]
        placed.update(call.id for call in own)
        thinking = entry.get("thinking")
        rounds.append(
            RoundView(
                content=_text(entry.get("content")),
                thinking=_text(thinking.get("text")) if isinstance(thinking, dict) else None,
                calls=own,
            )
        )
    rest = [call for call in calls if call.id not in placed]
    if rest:  # rows written without `rounds` (the JS original): one round of every call
        rounds.append(RoundView(content=None, thinking=None, calls=rest))
    return rounds


def _request_view(row: RowMapping) -> RequestView:
    return RequestView(
        id=row["id"],
        message_id=row["messageId"],
        provider=row["provider"],
        model=row["model"],
        status=int(row["statusCode"]),
        duration=int(row["duration"]),
        input_tokens=int(row["inputTokens"]),
        output_tokens=int(row["outputTokens"]),
        cost=row["cost"],
        correction_rounds=row["correctionRounds"],
        created_at=row["createdAt"],
    )


def _question_before(
    messages: Sequence[MessageView], at: datetime | None, unanswered: set[str]
) -> MessageView | None:
    """The question a request without an answer row belongs to: the last unanswered one at
    or before it, else the last one. Unanswered first, because a fast failure's request row
    can share its millisecond with the next turn's question (timestamps are kept to the ms)."""
    last = last_unanswered = None
    for view in messages:
        if view.role != "user":
            continue
        if at is not None and view.created_at is not None and view.created_at > at:
            break
        last = view
        if view.id in unanswered:
            last_unanswered = view
    return last_unanswered or last


__all__ = [
    "DEFAULT_RANGE",
    "MESSAGES_PER_PAGE",
    "PAGE_SIZE",
    "RANGES",
    "ChatFilter",
    "DashboardError",
    "Reader",
]
