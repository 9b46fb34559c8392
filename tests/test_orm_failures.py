"""A failed turn leaves the database and the in-memory chat telling one story.

The sweep fails a turn at each of its await points in turn (store calls, provider attempts and
stream deltas, hooks, the tool, the stream's consumer), by raising or by cancelling the task,
for a plain, a tool, a stream and a stream+tool turn, and checks: no row left "incomplete",
one request row per round trip, no question or returned answer lost, and the next request of
the same Chat object equal to what a reload sends.
"""

from __future__ import annotations

import pytest

from tests.conftest import SQL_BACKENDS, Database, on_backends
from tests.support.faults import KINDS, MODES, sweep, together_case


# Swept on the sql backends: the sweep injects its faults through the sql store.
@on_backends(*SQL_BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_turn_failing_at_any_point_leaves_one_story(
    database: Database, kind: str, mode: str
) -> None:
    outcomes = await sweep(database.db, kind, mode)
    assert len(outcomes) >= 5
    bad = [o for o in outcomes if o.lost or o.inconsistent]
    assert bad == [], "\n".join(map(str, bad))


# Two chats' turns at once on one SQLite store, whose writes then share group commits
# (connection.Pool); the second chat's turn is cancelled at every await point either of them
# reaches, so also while its own writes wait in a group or run in one. (Raising at a point
# fails the turn that reaches it before its store call, as in the sweep above.)
@on_backends("sql-sqlite")
@pytest.mark.parametrize("kind", KINDS)
async def test_turns_cancelled_together_each_leave_one_story(database: Database, kind: str) -> None:
    swept = in_store = 0
    for k in range(1, 400):
        outcomes, landed_in_store = await together_case(database.db, kind, k)
        if outcomes[-1].hit is None:
            assert [o.error for o in outcomes] == [None, None], outcomes
            break
        swept += 1
        in_store += landed_in_store
        bad = [o for o in outcomes if o.lost or o.inconsistent]
        assert bad == [], "\n".join(map(str, bad))
    else:
        raise AssertionError(f"the {kind} turns did not finish within 400 fault points")
    # Some cancels came while a store call of the second turn was under way (3 to 19 of the
    # 18 to 90 points of a kind): the case group commit adds.
    assert swept >= 15 and in_store > 0, (swept, in_store)
