"""Retention: deleting old chats with everything under them, and saying what went.

`purge_chats(db, older_than=timedelta(days=30))` deletes the chats created before the cutoff
(optionally only those whose columns equal `where`) in batches, ONE transaction per batch:
each batch counts the rows under its chats (messages, tool calls, requests, agent sessions)
and deletes the chats, whose rows go with them by cascade. A failure leaves earlier batches
deleted and the failing one untouched. `dry_run=True` counts without deleting.

Age is the chat's `createdAt`: a chat is purged when it was started before the cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .core.clock import as_utc, utc_now
from .model import RowCounts, TableNames
from .stores import Database, open_store

__all__ = ["PurgeReport", "parse_age", "purge_chats"]

BATCH = 200


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge deleted (or, with dry_run, would delete), table by table."""

    cutoff: datetime
    dry_run: bool
    batches: int
    counts: RowCounts

    @property
    def chats(self) -> int:
        return self.counts.chats


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w` (or a bare number of days) as a timedelta."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in units else "d"
    number = value[:-1] if value[-1:] in units else value
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"not an age: {text!r} (use e.g. 30d, 12h, 90m, 2w)") from None
    if amount < 0 or amount != amount:
        raise ValueError(f"not an age: {text!r} (must be a positive number of {unit})")
    return timedelta(seconds=amount * units[unit])


async def purge_chats(
    db: Database,
    *,
    older_than: timedelta | datetime,
    where: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    table_names: TableNames | None = None,
    batch_size: int = BATCH,
    progress: Callable[[RowCounts], None] | None = None,
) -> PurgeReport:
    """Delete chats created before `older_than` (an age, or a cutoff datetime)."""
    if isinstance(older_than, timedelta):
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = utc_now() - older_than
    elif isinstance(older_than, datetime):
        cutoff = as_utc(older_than)
    else:
        raise TypeError(
            f"older_than must be a timedelta or a datetime, not {type(older_than).__name__}"
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError("batch_size must be a positive integer")
    store = await open_store(db, table_names or TableNames())
    total = RowCounts()
    batches = offset = 0
    while True:
        async with store.transaction():
            page = await store.list_chats(
                limit=batch_size, offset=offset, where=where, before=cutoff, oldest_first=True
            )
            if not page:
                break
            ids = [c.id for c in page]
            counts = await store.subtree_counts(ids)
            if dry_run:
                offset += len(ids)
            else:
                await store.delete_chats(ids)
        batches += 1
        total += counts
        if progress is not None:
            progress(total)
        if len(page) < batch_size:
            break
    return PurgeReport(cutoff=cutoff, dry_run=dry_run, batches=batches, counts=total)
