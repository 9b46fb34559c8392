"""`init`, `sync` and `migrate`: write the reference schema.prisma, report what an existing one
lacks, and bring a database to the schema without Prisma."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..migrations.runner import migrate_url
from ..schema import PROVIDERS, diff_schema, shaped_schema
from ._common import check_url, parse_table_names, plural, run_async, sqlite_path, url_option

DEFAULT_SCHEMA_PATH = "prisma/schema.prisma"


@click.command()
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
    names = parse_table_names(table_names)
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


@click.command()
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
    try:
        diff = diff_schema(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # NotASchemaError included
        raise click.ClickException(f"{path}: {exc}") from exc
    for model in diff.models:
        if model.missing:
            click.echo(f"missing model {model.name}; add:\n\n{model.block}\n")
            continue
        for name, theirs, line in model.wrong_types:
            click.echo(f"{model.name}.{name} has type {theirs}, expected {line.split()[1]}:")
            click.echo(f"  {line}")
        if model.lines_to_add:
            what = plural(len(model.lines_to_add), "line")
            click.echo(
                f"model {model.name} lacks {what}; add inside `model {model.name} {{ ... }}`:"
            )
            for line in model.lines_to_add:
                click.echo(line)
            click.echo()
    if diff.count:
        click.echo(
            f"{path}: {plural(diff.count, 'difference')} from the nodellm-orm models "
            f"({diff.provider})"
        )
        sys.exit(1)
    click.echo(f"{path}: has every nodellm-orm model and field ({diff.provider})")


@click.command()
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
    check_url(url)
    names = parse_table_names(table_names)
    path = sqlite_path(url)
    if path is not None and not path.parent.exists():
        raise click.ClickException(f"directory {path.parent} does not exist (database URL {url})")
    result = run_async(migrate_url(url, table_names=names))
    for line in result.lines():
        click.echo(line)
