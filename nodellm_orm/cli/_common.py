"""What every command shares: running a coroutine with one-line errors, opening and checking a
database URL, the --url/--where options, progress on stderr and the small text formatters."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click

from ..core.clock import iso_z
from ..core.errors import LLMError
from ..core.redaction import mask_urls
from ..migrations.runner import MigrationError
from ..model import ChatRecord, MessageRecord, TableNames, ToolCallRecord
from ..stores.base import SchemaDriftError, Store, StoreError
from ..stores.sql import SqlStore, connect
from ..stores.urls import async_url

T = TypeVar("T")

DEFAULT_URL = "sqlite:///nodellm.db"

url_option = click.option(
    "--url",
    envvar="DATABASE_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Database URL (env DATABASE_URL).",
)


# ---- plumbing -------------------------------------------------------------------------------


def run_async(coro: Awaitable[T]) -> T:
    """Run a command's coroutine, turning database failures into one-line errors."""

    async def guarded() -> T:
        try:
            return await coro
        except (click.ClickException, click.exceptions.Exit):
            raise
        except MigrationError as exc:
            raise click.ClickException(f"migration failed: {exc}") from exc
        except SchemaDriftError as exc:
            raise click.ClickException(str(exc)) from exc  # migrating would not help
        except StoreError as exc:
            raise click.ClickException(
                f"{exc} (run `{self_command()} migrate --url ...` to create the tables)"
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
                    f"cannot connect to the database: {first_line(exc)}"
                ) from exc
            if isinstance(exc, SQLAlchemyError | ValueError):
                raise click.ClickException(f"{type(exc).__name__}: {first_line(exc)}") from exc
            raise

    return asyncio.run(guarded())


def plural(count: int, word: str) -> str:
    """`1 row`, `2 rows`: the count with its noun in the right number."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def self_command() -> str:
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL (None for other databases and for `:memory:`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_url(url: str) -> str:
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
        raise click.ClickException(f"bad database URL {url!r}: {first_line(exc)}") from exc
    if backend not in ("sqlite", "postgresql"):
        raise click.ClickException(
            f"unsupported database URL {url!r}: the sql backend speaks sqlite:///file.db and "
            "postgresql://user:password@host/db (for MySQL use the prisma backend)"
        )
    return target


async def open_store(url: str, *, migrate: bool = False, must_exist: bool = True) -> SqlStore:
    """A store over `url`, checked to hold our tables."""
    target = check_url(url)
    path = sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise click.ClickException(
            f"no database file at {path} (create it with `{self_command()} migrate --url "
            f"{url}`, or fill it with the demo: `{self_command()} demo --url {url}`)"
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


def clip(text: str | None, width: int = 72) -> str:
    if text is None:
        return "(none)"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def when(value: datetime | None) -> str:
    return "-" if value is None else iso_z(value)


# ---- options and helpers of several commands -----------------------------------------------


def parse_table_names(value: str | None) -> dict[str, str] | None:
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


PROGRESS_EVERY = 2.0  # seconds between plain progress lines (stderr not a terminal)


def parse_where(pairs: Sequence[str]) -> dict[str, str]:
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


async def scoped_store(store: SqlStore, where: Sequence[str]) -> Store:
    """`store`, or a handle scoped to the --where columns (checked to exist)."""
    scope = parse_where(where)
    if not scope:
        return store
    return await store.scoped(**scope).bind(TableNames())


class Progress:
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
        if not self.tty and now - self.last < PROGRESS_EVERY and done != total:
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


async def get_chat(store: Store, chat_id: str, url: str) -> ChatRecord:
    record = await store.get_chat(chat_id)
    if record is None:
        raise click.ClickException(f"no chat with id {chat_id!r} in {mask_urls(url)}")
    return record


async def print_rows(store: Store, chat_id: str) -> list[MessageRecord]:
    """Print a chat's stored messages, tool calls and requests; returns the messages."""
    messages = await store.list_messages(chat_id)
    calls = await store.list_tool_calls([m.id for m in messages if m.role == "assistant"])
    requests = await store.list_requests(chat_id)
    by_message: dict[str, list[ToolCallRecord]] = {}
    for call in calls:
        by_message.setdefault(call.messageId, []).append(call)
    click.echo(f"LlmMessage ({plural(len(messages), 'row')})")
    for i, m in enumerate(messages, 1):
        tokens = ""
        if m.role == "assistant":
            tokens = f"  [tokens in {m.inputTokens} / out {m.outputTokens}, {m.modelId}]"
            if m.contentRaw and '"interrupted"' in m.contentRaw:
                tokens += " (interrupted)"
        click.echo(f"  {i:>2}. {m.role:<9} {clip(m.content, 60)}{tokens}")
        for call in by_message.get(m.id, []):
            click.echo(
                f"        LlmToolCall {call.name}({call.arguments}) -> {clip(call.result, 50)}"
            )
    click.echo(
        f"LlmToolCall ({plural(len(calls), 'row')})  LlmRequest ({plural(len(requests), 'row')})"
    )
    for r in requests:
        click.echo(
            f"  {r.provider}/{r.model}  status {r.statusCode}  {r.duration} ms  "
            f"tokens in {r.inputTokens} / out {r.outputTokens}  cost {cost(r.cost)}"
        )
    return messages
