"""Row ids and the written timestamps (nodellm_orm/orm/ids.py, core/clock.py)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

from nodellm_orm.core.clock import EPOCH, iso_ms, utc_now_ms
from nodellm_orm.orm.ids import new_id, new_id_pair


def test_ids_are_uuid7_and_sort_in_the_order_they_were_made() -> None:
    made = [new_id() for _ in range(5000)]  # many share a millisecond: the counter orders them
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    for text in made[:50]:
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_a_pair_is_two_consecutive_ids() -> None:
    first, second = new_id_pair()
    assert uuid.UUID(second).int == uuid.UUID(first).int + 1


def _random_bits(text: str) -> int:
    return uuid.UUID(text).int & (2**62 - 1)


def test_a_forked_child_never_repeats_its_parents_random_bits() -> None:
    new_id()  # the parent holds part of a buffer of random bytes when it forks
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out
        try:
            os.write(write, ",".join(new_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(8)]
    assert len(child) == 8
    assert not {_random_bits(t) for t in child} & {_random_bits(t) for t in parent}


def test_now_is_utc_whole_milliseconds() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    now = utc_now_ms()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before <= now <= datetime.now(UTC)


def test_iso_text_is_fixed_width_milliseconds_for_every_value() -> None:
    whole_second = EPOCH + timedelta(days=20_000)
    values = [whole_second, whole_second + timedelta(milliseconds=7), utc_now_ms()]
    naive = datetime(2026, 1, 2, 3, 4, 5, 678000)  # naive means UTC
    assert iso_ms(naive) == "2026-01-02T03:04:05.678+00:00"
    for value in values + values:  # again: the remembered last value gives the same text
        text = iso_ms(value)
        assert len(text) == 29 and text.endswith("+00:00")
        assert datetime.fromisoformat(text) == value
