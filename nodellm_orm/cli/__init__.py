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

from typing import Any

import click

from ..core.redaction import mask_urls
from ..schema import parse_models
from .chats import chats
from .dashboard import dashboard
from .demo import demo
from .schema import init, migrate, sync

__all__ = ["main", "parse_models"]


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


for _command in (init, sync, migrate, demo, dashboard, chats):
    main.add_command(_command)
