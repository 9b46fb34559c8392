"""`dashboard`: serve the read-only web dashboard (the optional extra)."""

from __future__ import annotations

import click

from ._common import check_url, first_line, sqlite_path, url_option


@click.command()
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
        from ..dashboard import DashboardError
        from ..dashboard._serve import parse_pairs, parse_table_names, serve
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"the dashboard needs {exc.name!r}: pip install 'nodellm-orm[dashboard]'"
        ) from exc
    check_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise click.ClickException(f"no database file at {path} (database URL {url})")
    try:
        names = parse_table_names(table_names)
        scope = parse_pairs(where, "--where")
        serve(url, host=host, port=port, table_names=names, where=scope)
    except (ValueError, DashboardError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot connect to the database: {first_line(exc)}") from exc
