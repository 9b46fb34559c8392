"""`chats list|show|export|import|stats|purge`: inspect, move and prune stored chats. The export
format is `nodellm_orm.transfer`'s and retention is `nodellm_orm.retention`'s; these commands only
parse options, open the database and print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..core.redaction import mask_urls
from ._common import (
    Progress,
    clip,
    cost,
    get_chat,
    open_store,
    plural,
    print_rows,
    run_async,
    scoped_store,
    url_option,
    when,
    where_option,
)


@click.group()
def chats() -> None:
    """List, show, export, import chats and sum their usage."""


@chats.command("list")
@url_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@where_option
def chats_list(url: str, limit: int, where: tuple[str, ...]) -> None:
    """The newest chats with their message counts and usage."""

    async def run() -> None:
        base = await open_store(url)
        try:
            store = await scoped_store(base, where)
            records = await store.list_chats(limit=limit)
            if not records:
                click.echo("no chats")
            for chat in records:
                count = await store.count_messages(chat.id)
                usage = await store.usage(chat.id)
                click.echo(
                    f"{chat.id}  {when(chat.createdAt)}  {chat.provider}/{chat.model}  "
                    f"{plural(count, 'message')}  "
                    f"{plural(usage.inputTokens + usage.outputTokens, 'token')}  "
                    f"cost {cost(usage.cost)}"
                )
        finally:
            await base.close()

    run_async(run())


@chats.command("show")
@click.argument("chat_id")
@url_option
@where_option
def chats_show(chat_id: str, url: str, where: tuple[str, ...]) -> None:
    """One chat: its columns, messages, tool calls and requests."""

    async def run() -> None:
        base = await open_store(url)
        try:
            store = await scoped_store(base, where)
            chat = await get_chat(store, chat_id, url)
            click.echo(f"chat {chat.id}")
            click.echo(f"  provider/model: {chat.provider}/{chat.model}")
            click.echo(f"  instructions:   {clip(chat.instructions)}")
            click.echo(f"  metadata:       {json.dumps(chat.metadata)}")
            for key, value in chat.extra.items():
                click.echo(f"  {key + ':':<15} {value}")
            click.echo(f"  created:        {when(chat.createdAt)}")
            await print_rows(store, chat.id)
            usage = await store.usage(chat.id)
            click.echo(
                f"usage: {plural(usage.requests, 'request')}, input {usage.inputTokens}, "
                f"output {usage.outputTokens}, cost {cost(usage.cost)}"
            )
        finally:
            await base.close()

    run_async(run())


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
    from ..transfer import export_chats

    if output is not None and not output.parent.is_dir():
        raise click.ClickException(
            f"cannot write {output}: directory {output.parent} does not exist"
        )
    progress = Progress("exporting", "rows")

    async def export_to(out: Any) -> int:
        base = await open_store(url)
        try:
            store = await scoped_store(base, where)
            return await export_chats(store, out, progress=progress, array=fmt == "json")
        finally:
            await base.close()
            progress.close()

    if output is None:
        run_async(export_to(sys.stdout))
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = run_async(export_to(out))
        partial.replace(output)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"exported {plural(count, 'chat')} to {output}", err=True)


@chats.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@url_option
@where_option
def chats_import(file: Path, url: str, where: tuple[str, ...]) -> None:
    """Re-create exported chats, ids preserved, in one transaction (all or nothing).

    FILE is an export (`-` reads standard input). With --where, every chat is stamped with
    those columns, and one naming another value is refused.
    """
    from ..transfer import TransferError, import_chats

    stdin = str(file) == "-"
    if not stdin and not file.exists():
        raise click.ClickException(f"no such file: {file}")
    source = "<stdin>" if stdin else str(file)
    total = None if stdin else file.stat().st_size
    progress = Progress("importing", "bytes")

    async def import_from(lines: Any) -> int:
        base = await open_store(url, migrate=True, must_exist=False)
        try:
            store = await scoped_store(base, where)
            return await import_chats(store, lines, source=source, progress=progress, total=total)
        except TransferError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            await base.close()
            progress.close()

    try:
        if stdin:
            count = run_async(import_from(sys.stdin))
        else:
            with file.open(encoding="utf-8") as lines:
                count = run_async(import_from(lines))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{source} is not a chats export (not UTF-8 text)") from exc
    click.echo(f"imported {plural(count, 'chat')} into {mask_urls(url)}")


@chats.command("stats")
@click.argument("chat_id", required=False)
@url_option
@where_option
def chats_stats(chat_id: str | None, url: str, where: tuple[str, ...]) -> None:
    """Token and cost totals of one chat, or of every chat (in the --where scope)."""

    async def run() -> None:
        base = await open_store(url)
        try:
            store = await scoped_store(base, where)
            if chat_id is not None:
                await get_chat(store, chat_id, url)
            usage = await store.usage(chat_id)
        finally:
            await base.close()
        scope = f"chat {chat_id}" if chat_id else "all chats"
        if where and not chat_id:
            scope += f" where {', '.join(where)}"
        click.echo(f"{scope}: {plural(usage.requests, 'request')}")
        click.echo(f"  input tokens:  {usage.inputTokens}")
        click.echo(f"  output tokens: {usage.outputTokens}")
        click.echo(f"  total tokens:  {usage.inputTokens + usage.outputTokens}")
        click.echo(f"  cost:          {cost(usage.cost)}")

    run_async(run())


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
    from ..retention import parse_age, purge_chats
    from ..stores.base import RowCounts

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    progress = Progress("purging", "chats")

    def tick(counts: RowCounts) -> None:
        progress(counts.chats, None)

    async def run() -> Any:
        base = await open_store(url)
        try:
            store = await scoped_store(base, where)
            return await purge_chats(store, older_than=age, dry_run=dry_run, progress=tick)
        finally:
            await base.close()
            progress.close()

    report = run_async(run())
    c = report.counts
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {plural(c.chats, 'chat')} created before {when(report.cutoff)}: "
        f"{plural(c.messages, 'message')}, {plural(c.toolCalls, 'tool call')}, "
        f"{plural(c.requests, 'request')}, {plural(c.agentSessions, 'agent session')}"
    )
