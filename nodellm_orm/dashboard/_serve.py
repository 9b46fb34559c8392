"""`nodellm-orm dashboard`: check the database, then serve the app with uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from ._app import create_app
from ._queries import Reader

TABLE_KEYS = ("chat", "message", "tool_call", "request", "agent_session")


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`KEY=VALUE` items (several per item with commas for --table-names) as a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} takes KEY=VALUE, not {pair!r}")
        key = key.strip()
        if key in out:
            raise ValueError(f"{option} names {key!r} twice")
        out[key] = value
    return out


def parse_table_names(items: Sequence[str]) -> dict[str, str]:
    pairs = [p for item in items for p in item.split(",") if p.strip()]
    names = parse_pairs(pairs, "--table-names")
    unknown = sorted(set(names) - set(TABLE_KEYS))
    if unknown:
        raise ValueError(
            f"--table-names: unknown table {unknown[0]!r}; the tables are {', '.join(TABLE_KEYS)}"
        )
    return {k: v.strip() for k, v in names.items()}


def serve(
    url: str,
    *,
    host: str,
    port: int,
    table_names: Mapping[str, str],
    where: Mapping[str, str],
    announce: bool = True,
) -> None:
    """Fail fast on missing tables or an unknown --where column, then serve until Ctrl+C."""
    import uvicorn

    app = create_app(url, table_names=table_names, where=where)
    reader: Reader = app.state.reader

    async def check() -> None:
        try:
            await reader.check()
        finally:
            # The server runs its own event loop: no connection may outlive this one.
            await reader.engine.dispose()

    asyncio.run(check())
    if announce:
        print(f"dashboard of {url} (read-only) on http://{host}:{port}/  (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
