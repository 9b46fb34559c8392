"""The Starlette application: three pages over `Reader`, plus the static files they load.

Everything the browser loads comes from this app: the page, its stylesheet and script, and
plotly.js read from the plotly package's own files. The Content-Security-Policy header says
so to the browser, which then refuses anything from elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ._charts import overview_charts
from ._queries import DEFAULT_RANGE, RANGES, ChatFilter, DashboardError, Reader

_HERE = Path(__file__).resolve().parent
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'"
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _num(value: Any) -> str:
    return f"{int(value or 0):,}"


def _money(value: Any) -> str:
    return "n/a" if value is None else f"${float(value):,.6f}"


def _ms(value: Any) -> str:
    return f"{float(value):,.1f} ms"


def _pct(value: Any) -> str:
    return f"{100 * float(value):.2f}%"


def _when(value: Any) -> str:
    if not isinstance(value, datetime):
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


_env.filters.update(num=_num, money=_money, ms=_ms, pct=_pct, when=_when, pretty=_pretty)


@functools.cache
def _plotly_js() -> bytes:
    # The minified bundle inside the plotly wheel (4-5 MB), read once per process.
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).encode("utf-8")


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/")
    reader: Reader = request.app.state.reader
    html = _env.get_template(template).render(base=base, scope=reader.scope, **context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": _CSP})


def _day(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise DashboardError(f"{field} must be a date (YYYY-MM-DD), not {value!r}") from exc
    at = datetime.combine(day, time(), tzinfo=UTC)
    return at + timedelta(days=1) if end else at


def _page(value: str | None) -> int:
    if not value:
        return 1
    try:
        page = int(value)
    except ValueError as exc:
        raise DashboardError(f"page must be a number, not {value!r}") from exc
    if page < 1:
        raise DashboardError(f"page must be 1 or more, not {page}")
    return page


_CHAT_PARAMS = frozenset(("id", "model", "from", "to", "column", "value", "agent", "page"))
_OVERVIEW_PARAMS = frozenset(("range", "bucket"))
_CONVERSATION_PARAMS = frozenset(("page",))


def _check_params(request: Request, allowed: frozenset[str]) -> Mapping[str, str]:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise DashboardError(
            f"unknown parameter {unknown[0]!r}; this page takes {', '.join(sorted(allowed))}"
        )
    return request.query_params


async def overview(request: Request) -> Response:
    params = _check_params(request, _OVERVIEW_PARAMS)
    reader: Reader = request.app.state.reader
    data = await reader.overview(params.get("range") or DEFAULT_RANGE, params.get("bucket"))
    return _render(
        request,
        "overview.html",
        page="overview",
        o=data,
        ranges=list(RANGES),
        # "<" escaped: a model name holding "</script>" cannot end the JSON's script element.
        charts=json.dumps(overview_charts(data)).replace("<", "\\u003c"),
    )


async def chats(request: Request) -> Response:
    params = _check_params(request, _CHAT_PARAMS)
    reader: Reader = request.app.state.reader
    flt = ChatFilter(
        id=params.get("id") or None,
        model=params.get("model") or None,
        since=_day(params.get("from"), "from"),
        until=_day(params.get("to"), "to", end=True),
        column=params.get("column") or None,
        value=params.get("value") if params.get("column") else None,
        agent_class=params.get("agent") or None,
    )
    result = await reader.chats(flt, _page(params.get("page")))
    query = {k: v for k, v in params.items() if k != "page" and v}
    return _render(
        request,
        "chats.html",
        page="chats",
        p=result,
        params=params,
        query=query,
        columns=reader.filterable_columns(),
    )


async def conversation(request: Request) -> Response:
    params = _check_params(request, _CONVERSATION_PARAMS)
    reader: Reader = request.app.state.reader
    chat_id = request.path_params["chat_id"]
    conv = await reader.conversation(chat_id, _page(params.get("page")))
    if conv is None:
        raise HTTPException(404, f"no chat with id {chat_id!r}")
    return _render(request, "conversation.html", page="chats", c=conv)


async def plotly_js(request: Request) -> Response:
    return Response(
        _plotly_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _render(request, "error.html", status=400, message=str(exc), page="")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _render(request, "error.html", status=exc.status_code, message=exc.detail, page="")


def _read_only_engine(url: str) -> AsyncEngine:
    """An engine that cannot write, over a database URL as the CLI accepts it."""
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    from ..stores.urls import async_url
    from ._queries import dialect_of

    target = make_url(async_url(url))
    dialect = dialect_of(target.get_backend_name())
    target = dialect.read_only_url(target)
    engine = create_async_engine(target, connect_args=dialect.read_only_connect_args())
    statements = dialect.read_only_statements()
    if statements:

        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            for sql in statements:
                cur.execute(sql)
            cur.close()

        event.listen(engine.sync_engine, "connect", _on_connect)
    return engine


def create_app(
    db: str | AsyncEngine | Any,
    *,
    table_names: Any = None,
    where: Mapping[str, str] | None = None,
) -> Starlette:
    """The dashboard as an ASGI app: serve it with uvicorn or mount it in your own app.

    `db` is a database URL (opened read-only, disposed when the app shuts down), an
    SQLAlchemy `AsyncEngine`, or a store from `await connect(url)` (both yours to close).
    `table_names` is a `TableNames` or a dict of the tables' physical names; `where` keeps
    the dashboard to the chats whose columns have these values (`{"userId": "u-42"}`).
    """
    owned: AsyncEngine | None = None
    if isinstance(db, str):
        engine = owned = _read_only_engine(db)
    elif isinstance(db, AsyncEngine):
        engine = db
    elif isinstance(getattr(db, "engine", None), AsyncEngine):
        engine = db.engine
    else:
        raise TypeError(
            "db must be a database URL, an SQLAlchemy AsyncEngine or a store from "
            f"`await connect(url)`, not {type(db).__name__}"
        )
    names = _names(table_names)
    reader = Reader(engine, names, where)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned is not None:
                await owned.dispose()

    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/chats", chats),
            Route("/chats/{chat_id:path}", conversation),
            Route("/static/plotly.min.js", plotly_js),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        ],
        exception_handlers={DashboardError: _bad_request, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.reader = reader
    return app


def _names(table_names: Any) -> dict[str, str]:
    if table_names is None:
        return {}
    if isinstance(table_names, Mapping):
        return {str(k): str(v) for k, v in table_names.items()}
    keys = ("chat", "message", "tool_call", "request", "agent_session")
    return {k: v for k in keys if (v := getattr(table_names, k, None)) is not None}
