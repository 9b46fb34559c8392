"""The one place that reads the clock and converts date-times.

Every stored date-time is a UTC instant with millisecond precision (what Prisma's DateTime
keeps). The conventions, for every module:
- a naive datetime means UTC;
- epoch milliseconds are integer milliseconds since 1970-01-01T00:00:00Z;
- ISO-8601 text is read with or without an offset (`Z` included); without one it is UTC.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "EPOCH",
    "as_utc",
    "from_epoch_ms",
    "iso_ms",
    "iso_z",
    "naive_utc",
    "parse_iso",
    "to_datetime",
    "to_epoch_ms",
    "truncate_ms",
    "utc_now",
    "utc_now_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def utc_now() -> datetime:
    """Now, as an aware UTC datetime (full precision)."""
    return datetime.now(UTC)


_from_timestamp = datetime.fromtimestamp


def utc_now_ms() -> datetime:
    """Now, as an aware UTC datetime truncated to the millisecond the databases keep.

    Built from the integer milliseconds (the float `ms / 1000` is within a tenth of a
    microsecond of them, and fromtimestamp rounds to the microsecond, so it lands on the
    millisecond exactly) instead of `now().replace(...)`: a third of the cost, paid for
    every row a turn writes.
    """
    return _from_timestamp(time.time_ns() // 1_000_000 / 1000, UTC)


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive means UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """What PostgreSQL's TIMESTAMP(3) without time zone is given: UTC, no tzinfo."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def truncate_ms(value: datetime) -> datetime:
    """`value` in UTC with what the databases keep of it: whole milliseconds."""
    value = as_utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def to_epoch_ms(value: datetime) -> int:
    """A datetime (naive means UTC) as integer milliseconds since the Unix epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // _MS


def from_epoch_ms(value: float) -> datetime:
    """Milliseconds since the Unix epoch as an aware UTC datetime."""
    return EPOCH + timedelta(milliseconds=value)


# The last value iso_ms wrote and its text: a turn's question and answer share one createdAt.
_last_iso: tuple[datetime | None, str] = (None, "")


def iso_ms(value: datetime) -> str:
    """ISO-8601 UTC text with milliseconds, exactly as Prisma's JS driver adapters write it
    (`Date.toISOString()` with `Z` as `+00:00`): fixed width, so text order is time order."""
    global _last_iso
    last, text = _last_iso
    if value is last:  # datetimes are immutable: the same object has the same text
        return text
    text = (value if value.tzinfo is UTC else as_utc(value)).isoformat("T", "milliseconds")
    _last_iso = (value, text)
    return text


def iso_z(value: datetime) -> str:
    """ISO-8601 UTC text ending in `Z`, at the precision the value has (what exports write)."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """ISO-8601 text (`Z` or an offset, or none for UTC) as an aware UTC datetime.

    Raises ValueError when `text` is not ISO-8601.
    """
    return as_utc(datetime.fromisoformat(text))


_fromisoformat = datetime.fromisoformat


def to_datetime(value: Any) -> datetime | None:
    """What a DateTime column hands back, in any of its stored forms, as aware UTC: epoch
    milliseconds (int or float), ISO-8601 text, or a datetime (naive means UTC).

    Tested by exact type first, most frequent first: this runs once per row read (10,000
    times for a 10,000-message chat), where an isinstance chain and `replace` cost more than
    the parsing itself. ISO text with a `+00:00` or `Z` offset (what the store and Prisma's
    JS adapters write) parses straight to UTC, and an aware UTC datetime (what the store's
    PostgreSQL connections decode) is returned as it is.
    """
    kind = type(value)
    if kind is str:
        parsed = _fromisoformat(value)
        tz = parsed.tzinfo
        if tz is UTC:
            return parsed
        return parsed.replace(tzinfo=UTC) if tz is None else parsed.astimezone(UTC)
    if kind is datetime:
        when: datetime = value
        tz = when.tzinfo
        if tz is UTC:
            return when
        return when.replace(tzinfo=UTC) if tz is None else when.astimezone(UTC)
    if kind is int:
        return EPOCH + timedelta(0, value // 1000, value % 1000 * 1000)
    if value is None:
        return None
    if isinstance(value, int):  # bool, an int subclass
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, float):
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, str):
        return to_datetime(str(value))
    raise TypeError(f"cannot read a DateTime from {type(value).__name__}")
