"""`HistorySync`: what a chat's in-memory history knows of the stored one, in one object.

The ORM Chat reads a chat's history once, then only what other writers add: each turn's
`begin_turn` counts the rows written within LATE_WINDOW before the cursor, and the chat reads
them when that count says it holds fewer than there are. This object holds that state and its
transitions (no I/O): the cursor, how many rows are accounted for, the recent keys, whether
the next turn must read everything again, and rows read before the first turn.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..model import Cursor, MessageRecord
from ..stores.base import TurnBegun
from .history import LATE_WINDOW, is_pending


def key_of(row: MessageRecord | Mapping[str, Any]) -> Cursor:
    """(createdAt, id): the order of a chat's messages, for a record or a row dict."""
    if isinstance(row, MessageRecord):  # a class test, cheaper than Mapping's ABC test
        assert row.createdAt is not None
        return (row.createdAt, row.id)
    return (row["createdAt"], row["id"])


class HistorySync:
    __slots__ = ("cached_rows", "cursor", "known", "loaded", "recent", "reread")

    def __init__(self, *, loaded: bool) -> None:
        # The history was read (or the chat is new): later turns read only what is new.
        self.loaded = loaded
        # Read everything again before the next turn: another writer's turn was in flight when
        # last read, rows were deleted elsewhere, or a failed turn's end was not recorded.
        self.reread = False
        # (createdAt, id) of the newest row held.
        self.cursor: Cursor | None = None
        # How many of the chat's rows (up to the cursor) the in-memory history accounts for.
        self.known = 0
        # (createdAt, id) of the rows held that lie within LATE_WINDOW of the cursor, sorted.
        self.recent: list[Cursor] = []
        # Rows `Chat.messages()` read before the first turn, so that turn need not read them.
        self.cached_rows: list[MessageRecord] | None = None

    @property
    def must_read(self) -> bool:
        return not self.loaded or self.reread

    def offer(self, rows: list[MessageRecord]) -> None:
        """Rows read for the caller before the history is loaded: the first turn uses them."""
        if not self.loaded:
            self.cached_rows = rows

    def take_cached(self) -> list[MessageRecord] | None:
        rows, self.cached_rows = self.cached_rows, None
        return rows

    def read_all(self, rows: Sequence[MessageRecord], now: datetime) -> None:
        """The whole history was read (`rows`, in order) and is now what is held."""
        self.reread = any(is_pending(r, now) for r in rows)
        self.known = len(rows)
        self.recent = []
        if rows:
            newest = key_of(rows[-1])[0]
            self.recent = sorted(k for k in map(key_of, rows) if k[0] >= newest - LATE_WINDOW)
            self.cursor = self.recent[-1]
        self.loaded = True

    def window(self) -> Cursor | None:
        """Where the rows a turn counts start: LATE_WINDOW before the cursor (None: all)."""
        if self.cursor is None:
            return None
        start = self.cursor[0] - LATE_WINDOW
        # Sorted: drop the keys older than `start` by bisection, not by scanning every key
        # (a chat asked many times within the window holds them all).
        del self.recent[: bisect.bisect_left(self.recent, (start,))]
        return (start, "")

    @property
    def known_before_window(self) -> int:
        """What `begin_turn` is told the caller holds up to the window (call after window())."""
        return self.known - len(self.recent)

    def remember(self, keys: Iterable[Cursor]) -> None:
        """Rows now held (ours, or others' read since): counted, and the cursor moves on."""
        for key in keys:
            bisect.insort(self.recent, key)
            self.known += 1
        if self.recent and (self.cursor is None or self.recent[-1] > self.cursor):
            self.cursor = self.recent[-1]

    def unseen(self, begun: TurnBegun) -> int:
        """How many rows others wrote in the window that are not held, after our turn's two
        rows were remembered; 0 with `reread` set when what is held is out of date."""
        unseen = begun.others - (len(self.recent) - 2)
        if begun.read_again or unseen < 0:
            self.reread = True  # rows were deleted elsewhere
            return 0
        return unseen

    def fresh(
        self, rows: Sequence[MessageRecord], ours: Cursor, placeholder: str
    ) -> list[MessageRecord] | None:
        """Of the window's rows, those not held; None when the held order is wrong (a row sorts
        before one held: its INSERT landed late) or nothing new was found, so everything must
        be read again now."""
        held = {k[1] for k in self.recent}
        fresh = [r for r in rows if r.id not in held]
        held_before = [k for k in self.recent if k[1] not in (ours[1], placeholder)]
        newest = held_before[-1] if held_before else None
        if not fresh or any(newest is not None and key_of(r) < newest for r in fresh):
            return None
        return fresh

    def caught_up(self, fresh: Sequence[MessageRecord], ours: Cursor, now: datetime) -> None:
        """Others' `fresh` rows were appended to the history during our turn (`ours`)."""
        after_ours = any(key_of(r) > ours for r in fresh)
        self.reread = self.reread or after_ours or any(is_pending(r, now) for r in fresh)
        self.remember(key_of(r) for r in fresh)

    def read_again(
        self,
        rows: Sequence[MessageRecord],
        others: Sequence[MessageRecord],
        ours: Cursor,
        now: datetime,
    ) -> None:
        """The whole history (`rows`) was read again during our turn (`ours`: its question's
        key); `others` are its rows but our turn's."""
        keys = sorted(map(key_of, rows))
        self.known = len(rows)
        self.cursor = keys[-1]
        self.recent = [k for k in keys if k[0] >= self.cursor[0] - LATE_WINDOW]
        self.reread = any(is_pending(r, now) or key_of(r) > ours for r in others)

    def forget(self, key: Cursor) -> None:
        """A row we wrote was removed (a failed turn's placeholder)."""
        self.known -= 1
        if key in self.recent:
            self.recent.remove(key)
