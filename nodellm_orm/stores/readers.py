"""Records from the sql store's driver rows, positionally, by functions generated once.

The store selects a model's columns in its record's field order (`columns(record)`), so a
row's cells are the record's constructor arguments and only DateTime cells (and Json cells
where the database hands out text) need converting. Which cells those are follows the model
definition (schema.prisma), never a hand-written slice such as `r[:13]`: a column added
anywhere, before createdAt included, moves the conversions with it.

Each reader is generated (as `dataclasses` generates `__init__`) into the code one would write
by hand for 10,000 rows: the row unpacked into locals and stored into a new record's slots (or
passed positionally to the class when it is not a plain slotted dataclass), converting only
the DateTime cells that are not already aware UTC datetimes (PostgreSQL's connections decode
them so) and the Json text. Fields the query already pins (a page's chatId) are not selected:
the caller passes their value once (`given`). A reader is built once per record, JSON form and
given fields, at the first use, never per row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..core.clock import to_datetime
from ..model.definition import MODELS
from ..model.records import columns

__all__ = ["RowsReader", "record_reader"]

R = TypeVar("R")
# Rows as the driver hands them (tuples, asyncpg Records) -> records.
RowsReader = Callable[[Sequence[Sequence[Any]]], list[R]]

_MODEL_OF = {model.record: model for model in MODELS.values()}


def _json_cell(value: Any) -> Any:
    return json.loads(value) if type(value) is str else value


def reader_source(record: type[Any], *, json_text: bool, given: tuple[str, ...] = ()) -> str:
    """The generated reader's source (tests read it; `record_reader` compiles it)."""
    model = _MODEL_OF[record]
    fields = columns(record)
    dates = set(model.of_type("DateTime"))
    texts = set(model.of_type("Json")) if json_text else set()
    cells = [f for f in fields if f not in given]
    names = {f: f"c{i}" for i, f in enumerate(cells)}
    args: list[str] = []
    for f in fields:
        if f in given:
            args.append(f)
        elif f in texts:
            args.append(f"_js({names[f]})")
        elif f in dates:
            n = names[f]
            # to_datetime's two most frequent cases inline (an aware UTC datetime: PostgreSQL;
            # ISO text with a UTC offset: SQLite), saving a call per cell; it does the rest.
            args.append(
                f"({n} if type({n}) is _datetime and {n}.tzinfo is _utc"
                f" else _d if type({n}) is _str and (_d := _iso({n})).tzinfo is _utc"
                f" else _dt({n}))"
            )
        else:
            args.append(names[f])
    # Unpacked into locals: no slice of the row, no argument tuple built from `*`.
    target = ", ".join(names[f] for f in cells) + ("," if len(cells) == 1 else "")
    head = f"def read_{model.key}({', '.join(['rows', *given])}):\n"
    if not _sets_slots_only(record):
        return f"{head}    return [rec({', '.join(args)}) for {target} in rows]\n"
    # What the dataclass's __init__ does (one `self.field = field` per field), inline:
    # calling the class costs a C-level call, an argument tuple and a Python frame per record,
    # about a fifth of building 10,000 of them when measured.
    stores = "".join(f"        o.{f} = {a}\n" for f, a in zip(fields, args, strict=True))
    return (
        f"{head}    out = []\n    add = out.append\n    for {target} in rows:\n"
        f"        o = _new(rec)\n{stores}        add(o)\n    return out\n"
    )


def _sets_slots_only(record: type[Any]) -> bool:
    """Whether creating the record is `object.__new__` and its __init__ only assigns each
    selected field: a plain slotted dataclass, every field a column, nothing run after."""
    return (
        dataclasses.is_dataclass(record)
        and "__slots__" in record.__dict__
        and type(record) is type
        and record.__new__ is object.__new__
        and record.__setattr__ is object.__setattr__
        and not hasattr(record, "__post_init__")
        and tuple(f.name for f in dataclasses.fields(record)) == columns(record)
    )


def record_reader(
    record: type[R], *, json_text: bool, given: tuple[str, ...] = ()
) -> Callable[..., list[R]]:
    """A function turning rows (the record's columns, in `columns(record)` order, less the
    `given` ones) into records: `reader(rows, *values of given)`. `json_text`: Json cells may
    come as text to decode (SQLite)."""
    key = (record, json_text, given)
    reader: Callable[..., list[R]] | None = _READERS.get(key)
    if reader is None:
        reader = _READERS[key] = _compile(record, json_text, given)
    return reader


_READERS: dict[tuple[type[Any], bool, tuple[str, ...]], Callable[..., list[Any]]] = {}


def _compile(record: type[Any], json_text: bool, given: tuple[str, ...]) -> Callable[..., Any]:
    source = reader_source(record, json_text=json_text, given=given)
    namespace: dict[str, Any] = {
        "rec": record,
        "_dt": to_datetime,
        "_js": _json_cell,
        "_datetime": datetime,
        "_utc": UTC,
        "_new": object.__new__,
        "_str": str,
        "_iso": datetime.fromisoformat,
    }
    exec(compile(source, f"<nodellm_orm reader {record.__name__}>", "exec"), namespace)
    reader: Callable[..., Any] = namespace[f"read_{_MODEL_OF[record].key}"]
    return reader
