"""The `nodellm-orm` command line: schema, migrations, a demo, and chat inspection.

```
nodellm-orm init [--provider sqlite]      write prisma/schema.prisma
nodellm-orm sync                          what an existing schema.prisma is missing
nodellm-orm migrate --url URL             apply the shipped migrations (no Prisma engine)
nodellm-orm demo                          a persisted chat with a tool call and a stream
nodellm-orm chats list|show|export|import|stats
```

Database URLs: `sqlite:///path.db` (the default), `postgresql://user:pw@host/db` (with
`pip install nodellm-orm[postgresql]`), or Prisma's `file:./dev.db`. `--url` defaults to
$DATABASE_URL, as Prisma's own schema does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from .core.errors import LLMError
from .core.llm import LLM, create_llm, provider_class, provider_names
from .core.redaction import mask_urls
from .core.tools import Tool
from .migrations.runner import MigrationError, migrate_url
from .orm.chat import create_chat, load_chat
from .orm.options import TableNames
from .orm.records import ChatRecord, MessageRecord, ToolCallRecord
from .schema import PROVIDERS, datasource_provider, parse_models, schema_for, shaped_schema
from .stores.base import Store, StoreError
from .stores.sql import SqlStore, connect
from .stores.urls import async_url

T = TypeVar("T")

DEFAULT_URL = "sqlite:///nodellm.db"
DEMO_URL = "sqlite:///nodellm-demo.db"
DEFAULT_SCHEMA_PATH = "prisma/schema.prisma"
# Chats are read in pages so `export` keeps memory bounded by a page, not the database.
_PAGE = 200

url_option = click.option(
    "--url",
    envvar="DATABASE_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Database URL (env DATABASE_URL).",
)


# ---- plumbing -------------------------------------------------------------------------------


def _run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine, turning database failures into one-line errors."""

    async def guarded() -> T:
        try:
            return await coro
        except (click.ClickException, click.exceptions.Exit):
            raise
        except MigrationError as exc:
            raise click.ClickException(f"migration failed: {exc}") from exc
        except StoreError as exc:
            raise click.ClickException(
                f"{exc} (run `{_self_command()} migrate --url ...` to create the tables)"
            ) from exc
        except LLMError as exc:
            raise click.ClickException(f"LLM provider error: {exc}") from exc
        except ModuleNotFoundError as exc:
            hint = " (pip install 'nodellm-orm[postgresql]')" if exc.name == "asyncpg" else ""
            raise click.ClickException(f"missing database driver {exc.name!r}{hint}") from exc
        except Exception as exc:
            # SQLAlchemy/driver errors (cannot open file, connection refused, bad scheme):
            # their class name says which layer failed, their message says why.
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, OSError):
                raise click.ClickException(
                    f"cannot connect to the database: {_first_line(exc)}"
                ) from exc
            if isinstance(exc, SQLAlchemyError | ValueError):
                raise click.ClickException(f"{type(exc).__name__}: {_first_line(exc)}") from exc
            raise

    return asyncio.run(guarded())


def _plural(count: int, word: str) -> str:
    """`1 row`, `2 rows`: the count with its noun in the right number."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _self_command() -> str:
    """How to run this CLI again from here: `nodellm-orm` only when PATH finds this one."""
    import shutil

    script = Path(sys.executable).parent / "nodellm-orm"
    on_path = shutil.which("nodellm-orm")
    if on_path is not None and script.exists() and Path(on_path).resolve() == script.resolve():
        return "nodellm-orm"
    if script.exists():
        with contextlib.suppress(ValueError):
            return str(script.absolute().relative_to(Path.cwd()))
        return str(script)
    return f"{sys.executable} -m nodellm_orm"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def _sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL (None for other databases and for `:memory:`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _check_url(url: str) -> str:
    """The SQLAlchemy async URL for `url`, or a ClickException naming what is wrong."""
    if "://" not in url and not url.startswith("file:"):
        # A bare word would silently become an SQLite file of that name.
        raise click.ClickException(
            f"not a database URL: {url!r} (use sqlite:///{url} for an SQLite file, Prisma's "
            f"file:{url}, or postgresql://user:password@host/db)"
        )
    try:
        target = async_url(url)
        from sqlalchemy.engine import make_url

        backend = make_url(target).get_backend_name()
    except Exception as exc:
        raise click.ClickException(f"bad database URL {url!r}: {_first_line(exc)}") from exc
    if backend not in ("sqlite", "postgresql"):
        raise click.ClickException(
            f"unsupported database URL {url!r}: the sql backend speaks sqlite:///file.db and "
            "postgresql://user:password@host/db (for MySQL use the prisma backend)"
        )
    return target


async def _open(url: str, *, migrate: bool = False, must_exist: bool = True) -> SqlStore:
    """A store over `url`, checked to hold our tables."""
    target = _check_url(url)
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise click.ClickException(
            f"no database file at {path} (create it with `{_self_command()} migrate --url "
            f"{url}`, or fill it with the demo: `{_self_command()} demo --url {url}`)"
        )
    if path is not None and not path.parent.exists():
        raise click.ClickException(f"directory {path.parent} does not exist (database URL {url})")
    store = await connect(target, migrate=migrate)
    try:
        await store.bind(TableNames())
    except BaseException:
        await store.close()
        raise
    return store


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _clip(text: str | None, width: int = 72) -> str:
    if text is None:
        return "(none)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def _when(value: datetime | None) -> str:
    return _iso(value) or "-"


# ---- init / sync ----------------------------------------------------------------------------


class _Commands(click.Group):
    """The command group; every error message leaves it with database passwords masked."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            masked = mask_urls(exc.message)
            if masked == exc.message:
                raise
            raise click.ClickException(masked) from None


@click.group(cls=_Commands)
@click.version_option(package_name="nodellm-orm")
def main() -> None:
    """Persist LLM conversations in SQL (the Python counterpart of @node-llm/orm)."""


@main.command()
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="postgresql",
    show_default=True,
    help="Datasource provider of the schema.",
)
@click.option(
    "--sqlite-json",
    type=click.Choice(["Json", "String"]),
    default="Json",
    show_default=True,
    help="Type of the Json fields on SQLite: Json (Prisma >= 6.2, the JS package's client) or "
    "String (prisma-client-py, which pins Prisma 5.17).",
)
@click.option(
    "--minimal",
    is_flag=True,
    help="Only LlmChat and LlmMessage (tool-call and request persistence off, no agent sessions).",
)
@click.option(
    "--table-names",
    "table_names",
    default=None,
    metavar="MODEL=TABLE,...",
    help="Name the models (and so the tables), e.g. chat=AssistantChat,message=AssistantMessage.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing schema file.")
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SCHEMA_PATH,
    show_default=True,
)
def init(
    provider: str,
    sqlite_json: str,
    minimal: bool,
    table_names: str | None,
    force: bool,
    path: Path,
) -> None:
    """Write the reference schema.prisma (the five Llm* models)."""
    names = _parse_table_names(table_names)
    if path.exists() and not force:
        raise click.ClickException(
            f"{path} already exists; not overwriting it. Run `nodellm-orm sync --path {path}` "
            "to see what it is missing, or pass --force to replace it."
        )
    try:
        text = shaped_schema(provider, table_names=names, minimal=minimal, sqlite_json=sqlite_json)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--table-names") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path} (datasource provider {provider})")
    click.echo("next: `prisma generate` for the typed client, then `prisma migrate dev`,")
    click.echo("      or `nodellm-orm migrate --url ...` to create the tables without Prisma.")


@main.command()
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SCHEMA_PATH,
    show_default=True,
)
def sync(path: Path) -> None:
    """Report what an existing schema.prisma lacks of the reference models.

    Exits 1 and prints the lines to add when a model, field or index is missing or a field
    has another type.
    """
    if not path.exists():
        raise click.ClickException(
            f"{path} does not exist (create it with `nodellm-orm init --path {path}`)"
        )
    theirs_text = path.read_text(encoding="utf-8")
    provider = datasource_provider(theirs_text) or "postgresql"
    if provider not in PROVIDERS:
        raise click.ClickException(
            f"{path}: datasource provider {provider!r} is not one of {', '.join(PROVIDERS)}"
        )
    ours = parse_models(schema_for(provider))
    theirs = parse_models(theirs_text)
    problems = 0
    for name, model in ours.items():
        other = theirs.get(name)
        if other is None:
            problems += 1
            click.echo(f"missing model {name}; add:\n\n{model.block}\n")
            continue
        to_add: list[str] = []
        for field in model.fields.values():
            found = other.fields.get(field.name)
            if found is None:
                to_add.append(field.line)
            elif found.type != field.type:
                problems += 1
                click.echo(
                    f"{name}.{field.name} has type {found.type}, expected {field.type}:\n"
                    f"  {field.line.strip()}"
                )
        raw_attrs = [ln for ln in model.block.splitlines() if ln.strip().startswith("@@")]
        for attr, raw in zip(model.attributes, raw_attrs, strict=True):
            if attr not in other.attributes:
                to_add.append(raw.rstrip())
        if to_add:
            problems += len(to_add)
            click.echo(f"model {name} is missing; add inside `model {name} {{ ... }}`:")
            for line in to_add:
                click.echo(line)
            click.echo()
    if problems:
        click.echo(
            f"{path}: {_plural(problems, 'difference')} from the nodellm-orm models ({provider})"
        )
        sys.exit(1)
    click.echo(f"{path}: has every nodellm-orm model and field ({provider})")


# ---- migrate --------------------------------------------------------------------------------


@main.command()
@url_option
@click.option(
    "--table-names",
    "table_names",
    default=None,
    metavar="MODEL=TABLE,...",
    help="Create (or check) the tables under these names, e.g. chat=AssistantChat,"
    "message=AssistantMessage (models: chat, message, tool_call, request, agent_session).",
)
def migrate(url: str, table_names: str | None) -> None:
    """Bring the database to the nodellm-orm schema (no Prisma engine needed); safe to re-run.

    Tables that already match (made by `prisma db push`, `prisma migrate dev` or the JS
    package) are adopted as they are; a database at an earlier @node-llm/orm schema is upgraded.
    """
    _check_url(url)
    names = _parse_table_names(table_names)
    path = _sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise click.ClickException(f"directory {path.parent} does not exist (database URL {url})")
    result = _run(migrate_url(url, table_names=names))
    for line in result.lines():
        click.echo(line)


def _parse_table_names(value: str | None) -> dict[str, str] | None:
    """`chat=AssistantChat,message=AssistantMessage` -> {"chat": ..., "message": ...}."""
    if value is None:
        return None
    names: dict[str, str] = {}
    for part in value.split(","):
        key, sep, name = part.strip().partition("=")
        if not sep or not key.strip() or not name.strip():
            raise click.BadParameter(f"{part!r} is not MODEL=TABLE", param_hint="--table-names")
        try:
            attr = TableNames.coerce({key.strip(): name.strip()})
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--table-names") from exc
        model = next(
            f
            for f in ("chat", "message", "tool_call", "request", "agent_session")
            if getattr(attr, f) is not None
        )
        if model in names:
            raise click.BadParameter(f"{key!r} given twice", param_hint="--table-names")
        names[model] = name.strip()
    return names


# ---- demo -----------------------------------------------------------------------------------


class Weather(Tool):
    """The demo's tool: made-up but deterministic weather, so offline runs are reproducible."""

    name = "get_weather"
    description = "Current weather for a city (temperature in Celsius and conditions)."

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> dict[str, Any]:
        city = str(params.city)
        temperature = 12 + sum(map(ord, city.lower())) % 15
        conditions = ("sunny", "cloudy", "light rain", "windy")[len(city) % 4]
        return {"city": city, "temperature_c": temperature, "conditions": conditions}


def _demo_llm(provider: str | None, model: str | None) -> tuple[LLM, str | None, str]:
    """The LLM for the demo, its model, and a sentence saying which one and why."""
    from .testing import FakeProvider  # also registers the "fake" provider name

    name = (provider or os.environ.get("NODELLM_PROVIDER") or "fake").lower()
    if name not in provider_names():
        raise click.ClickException(
            f"unknown provider {name!r}; known providers: {', '.join(provider_names())}"
        )
    if name != "fake":
        key_env = provider_class(name).api_key_env
        if key_env is None or os.environ.get(key_env):
            return create_llm(name), model, f"provider {name} (real API calls)"
        note = f"{key_env} is not set, so the demo runs offline with the FakeProvider"
    else:
        note = "offline FakeProvider (set --provider openai and OPENAI_API_KEY for a real model)"
    fake = FakeProvider(chunk_size=6, latency=0.02)
    weather = Weather().execute(Weather.Params(city="Paris"))
    fake.reply_tool_call("get_weather", {"city": "Paris"})
    fake.reply(
        f"It is {weather['temperature_c']} °C and {weather['conditions']} in Paris right now."
    )
    fake.reply(
        "Take a walk along the Seine to the Musée d'Orsay, then have coffee in the "
        "Latin Quarter before sunset."
    )
    return create_llm(fake), model, note


async def _print_rows(store: Store, chat_id: str) -> list[MessageRecord]:
    """Print a chat's stored messages, tool calls and requests; returns the messages."""
    messages = await store.list_messages(chat_id)
    calls = await store.list_tool_calls([m.id for m in messages if m.role == "assistant"])
    requests = await store.list_requests(chat_id)
    by_message: dict[str, list[ToolCallRecord]] = {}
    for call in calls:
        by_message.setdefault(call.messageId, []).append(call)
    click.echo(f"LlmMessage ({_plural(len(messages), 'row')})")
    for i, m in enumerate(messages, 1):
        tokens = ""
        if m.role == "assistant":
            tokens = f"  [tokens in {m.inputTokens} / out {m.outputTokens}, {m.modelId}]"
            if m.contentRaw and '"interrupted"' in m.contentRaw:
                tokens += " (interrupted)"
        click.echo(f"  {i:>2}. {m.role:<9} {_clip(m.content, 60)}{tokens}")
        for call in by_message.get(m.id, []):
            click.echo(
                f"        LlmToolCall {call.name}({call.arguments}) -> {_clip(call.result, 50)}"
            )
    click.echo(
        f"LlmToolCall ({_plural(len(calls), 'row')})  LlmRequest ({_plural(len(requests), 'row')})"
    )
    for r in requests:
        click.echo(
            f"  {r.provider}/{r.model}  status {r.statusCode}  {r.duration} ms  "
            f"tokens in {r.inputTokens} / out {r.outputTokens}  cost {_cost(r.cost)}"
        )
    return messages


@main.command()
@click.option("--url", default=DEMO_URL, show_default=True, help="Database URL.")
@click.option(
    "--provider",
    default=None,
    help="LLM provider (default $NODELLM_PROVIDER, else the offline fake). A provider "
    "whose API key variable is unset falls back to the fake.",
)
@click.option("--model", default=None, help="Model id (default: the provider's).")
def demo(url: str, provider: str | None, model: str | None) -> None:
    """Run a persisted chat (a tool call, then a stream) and print what was stored."""
    _check_url(url)
    llm, model, note = _demo_llm(provider, model)

    async def run() -> None:
        click.echo(f"database: {mask_urls(url)}")
        click.echo(f"llm: {note}")
        store = await _open(url, migrate=True, must_exist=False)
        try:
            chat = await create_chat(
                store,
                llm,
                model=model,
                instructions="You are a concise travel assistant. Use tools for live data.",
                metadata={"source": "nodellm-orm demo"},
            )
            chat.with_tool(Weather)
            click.echo(f"\ncreated chat {chat.id} ({chat.record.provider}/{chat.record.model})")

            question = "What's the weather in Paris right now?"
            click.echo(f"\nuser: {question}")
            chat.on_tool_call_start(
                lambda call: click.echo(f"  [tool call] {call.name}({json.dumps(call.arguments)})")
            )
            answer = await chat.ask(question)
            click.echo(f"assistant: {answer.content}")

            question = "Given that weather, what should I do this afternoon? Two sentences."
            click.echo(f"\nuser: {question}")
            click.echo("assistant (streaming): ", nl=False)
            async with chat.ask_stream(question) as stream:
                async for chunk in stream:
                    click.echo(str(chunk), nl=False)
            click.echo()

            reloaded = await load_chat(store, llm, chat.id)
            if reloaded is None:  # pragma: no cover - it was just written
                raise click.ClickException(f"chat {chat.id} vanished")
            history = await reloaded.messages()
            click.echo(f"\nreloaded with load_chat(): {_plural(len(history), 'message')} stored\n")
            await _print_rows(store, chat.id)
            stats = await reloaded.stats()
            click.echo(
                f"\nstats(): input {stats.input_tokens} + output {stats.output_tokens} = "
                f"{stats.total_tokens} tokens, cost {_cost(stats.cost)}"
            )
            click.echo(f"\nexplore: {_self_command()} chats show {chat.id} --url {mask_urls(url)}")
        finally:
            await store.close()
            await llm.aclose()

    _run(run())


# ---- dashboard ------------------------------------------------------------------------------


@main.command()
@url_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--table-names",
    "table_names",
    multiple=True,
    metavar="KEY=NAME[,KEY=NAME...]",
    help="Physical table names (keys: chat, message, tool_call, request, agent_session).",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Show only chats whose column has this value (repeatable).",
)
def dashboard(
    url: str, host: str, port: int, table_names: tuple[str, ...], where: tuple[str, ...]
) -> None:
    """Serve a read-only web dashboard of the database (needs nodellm-orm[dashboard])."""
    try:
        from .dashboard import DashboardError
        from .dashboard._serve import parse_pairs, parse_table_names, serve
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the dashboard needs {exc.name!r}: pip install 'nodellm-orm[dashboard]'"
        ) from exc
    _check_url(url)
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        raise click.ClickException(f"no database file at {path} (database URL {url})")
    try:
        names = parse_table_names(table_names)
        scope = parse_pairs(where, "--where")
        serve(url, host=host, port=port, table_names=names, where=scope)
    except (ValueError, DashboardError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot connect to the database: {_first_line(exc)}") from exc


# ---- chats ----------------------------------------------------------------------------------


@main.group()
def chats() -> None:
    """List, show, export, import chats and sum their usage."""


_PROGRESS_EVERY = 2.0  # seconds between plain progress lines (stderr not a terminal)


def _parse_where(pairs: Sequence[str]) -> dict[str, str]:
    """`--where COLUMN=VALUE` options as a scope (values are text)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"takes COLUMN=VALUE, not {pair!r}", param_hint="--where")
        key = key.strip()
        if key in out:
            raise click.BadParameter(f"names {key!r} twice", param_hint="--where")
        out[key] = value
    return out


where_option = click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Only chats whose COLUMN equals VALUE (repeatable; custom columns such as userId).",
)


async def _scope(store: SqlStore, where: Sequence[str]) -> Store:
    """`store`, or a handle scoped to the --where columns (checked to exist)."""
    scope = _parse_where(where)
    if not scope:
        return store
    return await store.scoped(**scope).bind(TableNames())


class _Progress:
    """Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, label: str, unit: str) -> None:
        self.label = label
        self.unit = unit
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        import time

        now = time.monotonic()
        if not self.tty and now - self.last < _PROGRESS_EVERY and done != total:
            return
        self.last = now
        self.shown = True
        if self.tty and total:
            width = 30
            filled = min(width, width * done // total)
            bar = "#" * filled + "-" * (width - filled)
            click.echo(f"\r{self.label} [{bar}] {done}/{total} {self.unit}", nl=False, err=True)
        elif total:
            click.echo(f"{self.label}: {done}/{total} {self.unit}", err=True)
        else:
            click.echo(f"{self.label}: {done} {self.unit}", err=True, nl=not self.tty)

    def close(self) -> None:
        if self.tty and self.shown:
            click.echo(err=True)


@chats.command("list")
@url_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@where_option
def chats_list(url: str, limit: int, where: tuple[str, ...]) -> None:
    """The newest chats with their message counts and usage."""

    async def run() -> None:
        base = await _open(url)
        try:
            store = await _scope(base, where)
            records = await store.list_chats(limit=limit)
            if not records:
                click.echo("no chats")
            for chat in records:
                count = await store.count_messages(chat.id)
                usage = await store.usage(chat.id)
                click.echo(
                    f"{chat.id}  {_when(chat.createdAt)}  {chat.provider}/{chat.model}  "
                    f"{_plural(count, 'message')}  "
                    f"{_plural(usage.inputTokens + usage.outputTokens, 'token')}  "
                    f"cost {_cost(usage.cost)}"
                )
        finally:
            await base.close()

    _run(run())


async def _get_chat(store: Store, chat_id: str, url: str) -> ChatRecord:
    record = await store.get_chat(chat_id)
    if record is None:
        raise click.ClickException(f"no chat with id {chat_id!r} in {mask_urls(url)}")
    return record


@chats.command("show")
@click.argument("chat_id")
@url_option
@where_option
def chats_show(chat_id: str, url: str, where: tuple[str, ...]) -> None:
    """One chat: its columns, messages, tool calls and requests."""

    async def run() -> None:
        base = await _open(url)
        try:
            store = await _scope(base, where)
            chat = await _get_chat(store, chat_id, url)
            click.echo(f"chat {chat.id}")
            click.echo(f"  provider/model: {chat.provider}/{chat.model}")
            click.echo(f"  instructions:   {_clip(chat.instructions)}")
            click.echo(f"  metadata:       {json.dumps(chat.metadata)}")
            for key, value in chat.extra.items():
                click.echo(f"  {key + ':':<15} {value}")
            click.echo(f"  created:        {_when(chat.createdAt)}")
            await _print_rows(store, chat.id)
            usage = await store.usage(chat.id)
            click.echo(
                f"usage: {_plural(usage.requests, 'request')}, input {usage.inputTokens}, "
                f"output {usage.outputTokens}, cost {_cost(usage.cost)}"
            )
        finally:
            await base.close()

    _run(run())


@chats.command("export")
@url_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "json"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one record per line; json: the same records as one JSON array.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
@where_option
def chats_export(url: str, fmt: str, output: Path | None, where: tuple[str, ...]) -> None:
    """Every chat (oldest first) with its agent session, messages, tool calls and requests,
    as JSON Lines, read and written page by page (progress on stderr)."""
    from .transfer import export_chats

    if output is not None and not output.parent.is_dir():
        raise click.ClickException(
            f"cannot write {output}: directory {output.parent} does not exist"
        )
    progress = _Progress("exporting", "rows")

    async def export_to(out: Any) -> int:
        base = await _open(url)
        try:
            store = await _scope(base, where)
            return await export_chats(store, out, progress=progress, array=fmt == "json")
        finally:
            await base.close()
            progress.close()

    if output is None:
        _run(export_to(sys.stdout))
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = _run(export_to(out))
        partial.replace(output)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"exported {_plural(count, 'chat')} to {output}", err=True)


@chats.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@url_option
@where_option
def chats_import(file: Path, url: str, where: tuple[str, ...]) -> None:
    """Re-create exported chats, ids preserved, in one transaction (all or nothing).

    FILE is an export (`-` reads standard input). With --where, every chat is stamped with
    those columns, and one naming another value is refused.
    """
    from .transfer import TransferError, import_chats

    stdin = str(file) == "-"
    if not stdin and not file.exists():
        raise click.ClickException(f"no such file: {file}")
    source = "<stdin>" if stdin else str(file)
    total = None if stdin else file.stat().st_size
    progress = _Progress("importing", "bytes")

    async def import_from(lines: Any) -> int:
        base = await _open(url, migrate=True, must_exist=False)
        try:
            store = await _scope(base, where)
            return await import_chats(store, lines, source=source, progress=progress, total=total)
        except TransferError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            await base.close()
            progress.close()

    try:
        if stdin:
            count = _run(import_from(sys.stdin))
        else:
            with file.open(encoding="utf-8") as lines:
                count = _run(import_from(lines))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{source} is not a chats export (not UTF-8 text)") from exc
    click.echo(f"imported {_plural(count, 'chat')} into {mask_urls(url)}")


@chats.command("stats")
@click.argument("chat_id", required=False)
@url_option
@where_option
def chats_stats(chat_id: str | None, url: str, where: tuple[str, ...]) -> None:
    """Token and cost totals of one chat, or of every chat (in the --where scope)."""

    async def run() -> None:
        base = await _open(url)
        try:
            store = await _scope(base, where)
            if chat_id is not None:
                await _get_chat(store, chat_id, url)
            usage = await store.usage(chat_id)
        finally:
            await base.close()
        scope = f"chat {chat_id}" if chat_id else "all chats"
        if where and not chat_id:
            scope += f" where {', '.join(where)}"
        click.echo(f"{scope}: {_plural(usage.requests, 'request')}")
        click.echo(f"  input tokens:  {usage.inputTokens}")
        click.echo(f"  output tokens: {usage.outputTokens}")
        click.echo(f"  total tokens:  {usage.inputTokens + usage.outputTokens}")
        click.echo(f"  cost:          {_cost(usage.cost)}")

    _run(run())


@chats.command("purge")
@url_option
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Delete chats created more than AGE ago: 30d, 12h, 90m, 2w.",
)
@where_option
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def chats_purge(url: str, older_than: str, where: tuple[str, ...], dry_run: bool) -> None:
    """Delete old chats with their messages, tool calls, requests and agent sessions
    (one transaction per batch) and report what was deleted."""
    from .retention import parse_age, purge_chats
    from .stores.base import RowCounts

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    progress = _Progress("purging", "chats")

    def tick(counts: RowCounts) -> None:
        progress(counts.chats, None)

    async def run() -> Any:
        base = await _open(url)
        try:
            store = await _scope(base, where)
            return await purge_chats(store, older_than=age, dry_run=dry_run, progress=tick)
        finally:
            await base.close()
            progress.close()

    report = _run(run())
    c = report.counts
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {_plural(c.chats, 'chat')} created before {_when(report.cutoff)}: "
        f"{_plural(c.messages, 'message')}, {_plural(c.toolCalls, 'tool call')}, "
        f"{_plural(c.requests, 'request')}, {_plural(c.agentSessions, 'agent session')}"
    )
