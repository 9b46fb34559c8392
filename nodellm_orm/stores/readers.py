"""Records from the sql store's driver rows, positionally, by functions generated once.

The store selects a model's columns in its record's field order (`columns(record)`), so a
row's cells are the record's constructor arguments and only DateTime cells (and Json cells
where the database hands out text) need converting. Which cells those are follows the model
definition (schema.prisma), never a hand-written slice such as `r[:13]`: a column added
anywhere, before createdAt included, moves the conversions with it.

Each reader is generated (as `dataclasses` generates `__init__`) into the code one would write
by hand for 10,000 rows: `rec(*r)` when every DateTime cell is already an aware UTC datetime
(PostgreSQL's connections decode them so), else slices of the row with the converted cells
between them. It is built once per record and JSON form, at the first use, never per row.
"""

from __future__ import annotations

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


def reader_source(record: type[Any], *, json_text: bool) -> str:
    """The generated reader's source (tests read it; `record_reader` compiles it)."""
    model = _MODEL_OF[record]
    fields = columns(record)
    dates = {fields.index(n) for n in model.of_type("DateTime")}
    texts = {fields.index(n) for n in model.of_type("Json")} if json_text else set()
    parts: list[str] = []
    start = 0
    for i in range(len(fields) + 1):
        if i < len(fields) and i not in dates and i not in texts:
            continue
        if i > start:  # the plain cells since the last converted one, as one slice
            parts.append(f"r[{start}]" if i - start == 1 else f"*r[{start or ''}:{i}]")
        if i < len(fields):
            parts.append(f"_dt(r[{i}])" if i in dates else f"_js(r[{i}])")
        start = i + 1
    converted = f"rec({', '.join(parts)})"
    if not dates and not texts:
        expr = "rec(*r)"
    elif texts:
        expr = converted
    else:
        ready = " and ".join(
            f"type(r[{i}]) is _datetime and r[{i}].tzinfo is _utc" for i in sorted(dates)
        )
        expr = f"rec(*r) if {ready} else {converted}"
    name = f"read_{model.key}"
    return f"def {name}(rows):\n    return [{expr} for r in rows]\n"


def record_reader(record: type[R], *, json_text: bool) -> RowsReader[R]:
    """A function turning rows (the record's columns, in `columns(record)` order) into
    records. `json_text`: Json cells may come as text to decode (SQLite)."""
    reader: RowsReader[R] | None = _READERS.get((record, json_text))
    if reader is None:
        reader = _READERS[record, json_text] = _compile(record, json_text)
    return reader


_READERS: dict[tuple[type[Any], bool], RowsReader[Any]] = {}


def _compile(record: type[Any], json_text: bool) -> RowsReader[Any]:
    source = reader_source(record, json_text=json_text)
    namespace: dict[str, Any] = {
        "rec": record,
        "_dt": to_datetime,
        "_js": _json_cell,
        "_datetime": datetime,
        "_utc": UTC,
    }
    exec(compile(source, f"<nodellm_orm reader {record.__name__}>", "exec"), namespace)
    reader: RowsReader[Any] = namespace[f"read_{_MODEL_OF[record].key}"]
    return reader
