"""HistorySync: the state a chat keeps of its stored history, and its transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nodellm_orm.model import MessageRecord
from nodellm_orm.orm.history import LATE_WINDOW
from nodellm_orm.orm.sync import HistorySync, key_of
from nodellm_orm.stores.base import TurnBegun

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def row(i: int, at: datetime, role: str = "user", content: str = "x") -> MessageRecord:
    return MessageRecord(id=f"m{i:03}", chatId="c", role=role, content=content, createdAt=at)


def test_a_full_read_holds_the_window_before_the_newest_row() -> None:
    rows = [row(0, T0), row(1, T0 + LATE_WINDOW), row(2, T0 + LATE_WINDOW * 2)]
    sync = HistorySync(loaded=False)
    assert sync.must_read
    sync.read_all(rows, T0 + timedelta(hours=1))
    assert not sync.must_read
    assert sync.known == 3 and sync.cursor == key_of(rows[2])
    assert sync.recent == [key_of(rows[1]), key_of(rows[2])]
    assert sync.window() == (rows[2].createdAt - LATE_WINDOW, "")
    assert sync.known_before_window == 1


def test_our_rows_move_the_cursor_and_others_are_counted() -> None:
    sync = HistorySync(loaded=True)
    assert sync.window() is None
    ours = [key_of(row(0, T0)), key_of(row(1, T0, "assistant"))]
    sync.remember(ours)
    assert sync.known == 2 and sync.cursor == ours[1]
    assert sync.unseen(TurnBegun(0)) == 0 and not sync.reread
    assert sync.unseen(TurnBegun(3)) == 3
    assert sync.unseen(TurnBegun(0, read_again=True)) == 0 and sync.reread


def test_a_late_row_before_one_held_means_read_everything_again() -> None:
    held = [row(0, T0), row(1, T0 + timedelta(seconds=2))]
    sync = HistorySync(loaded=False)
    sync.read_all(held, T0 + timedelta(hours=1))
    ours = key_of(row(9, T0 + timedelta(seconds=5)))
    late = row(5, T0 + timedelta(seconds=1))
    assert sync.fresh([*held, late], ours, "m010") is None
    new = row(6, T0 + timedelta(seconds=3))
    assert sync.fresh([*held, new], ours, "m010") == [new]
    sync.caught_up([new], ours, T0 + timedelta(hours=1))
    assert sync.known == 3 and sync.cursor == key_of(new) and not sync.reread


def test_rows_read_before_the_first_turn_are_used_once() -> None:
    sync = HistorySync(loaded=False)
    rows = [row(0, T0)]
    sync.offer(rows)
    assert sync.take_cached() is rows and sync.take_cached() is None
    sync.read_all(rows, T0)
    sync.offer([row(1, T0)])
    assert sync.take_cached() is None  # loaded: later reads are not kept
