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
from tests.support.faults import KINDS, MODES, sweep


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
