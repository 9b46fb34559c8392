"""Row ids and timestamps that sort in the order rows were written.

Ids are UUIDv7 strings (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter that
increases within one millisecond, then random bits. Lowercase fixed-width hex sorts like the
number, so ordering messages by (createdAt, id) is deterministic even when several rows share
a millisecond, which is what `messages()` promises.
"""

from __future__ import annotations

import os
import threading
import time

from ..core.clock import utc_now_ms

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bytes are read from the OS 8 at a time from a buffer of _POOL: one system call per
# 64 ids instead of one per id. A forked child starts with an empty buffer, so it never
# repeats its parent's bytes.
_POOL = 512
_random = b""
_random_at = _POOL


def _forget_random() -> None:
    global _random, _random_at
    _random, _random_at = b"", _POOL


os.register_at_fork(after_in_child=_forget_random)


def _value() -> int:
    """The next id as a 128-bit number (its time slot and random bits taken under the lock)."""
    global _last_ms, _counter, _random, _random_at
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _counter = now, 0
        else:
            # Same millisecond (or the clock stepped back): keep counting forward.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
        if _random_at >= _POOL:
            _random, _random_at = os.urandom(_POOL), 0
        at = _random_at
        _random_at = at + 8
        rand = int.from_bytes(_random[at : at + 8], "big") & 0x3FFF_FFFF_FFFF_FFFF
        return (_last_ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand


def _text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_id() -> str:
    return _text(_value())


def new_id_pair() -> tuple[str, str]:
    """Two ids with no possible id between them: consecutive numbers (last bit 0, then 1).

    A turn's question and answer get them, so however many processes write in the same
    millisecond, ordering by (createdAt, id) keeps each question next to its answer.
    """
    value = _value() & ~1
    return _text(value), _text(value | 1)


# Now, in UTC, truncated to the millisecond the databases keep (the clock's own helper).
utc_now = utc_now_ms
