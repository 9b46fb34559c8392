"""The one JSON codec for what the library stores, and its rules.

Everything written goes through `encode`, in one of two modes:

- strict (`field=` given): a value the user hands us for a Json field (chat metadata, agent
  session metadata, a custom Json column). It must be JSON as it is: a value JSON cannot hold
  (a datetime, a set, an object) and the non-finite floats NaN/Infinity/-Infinity raise a
  TypeError naming the field, before anything is written.
- lenient (no `field`): text the library composes from what a provider or a tool returned
  (`contentRaw`, tool-call arguments). A turn that was already paid for is never lost to a
  value JSON cannot hold: such a value is written as its `str()`, and a non-finite float as
  null, as JavaScript's JSON.stringify does, so that every row is JSON that JSON.parse, the
  JS package and PostgreSQL's jsonb all read.

Both modes write the same compact form (no spaces, non-ASCII kept as is). Reading: `decode`
is `json.loads`; `decode_object` and `decode_arguments` are the forgiving readers of a stored
object and of tool-call arguments.
"""

from __future__ import annotations

import json
import math
from typing import Any, overload

__all__ = ["decode", "decode_arguments", "decode_object", "encode"]

_SEPARATORS = (",", ":")
# The lenient mode's encoder, made once: json.dumps with any option builds a new one per call.
_lenient = json.JSONEncoder(
    ensure_ascii=False, separators=_SEPARATORS, allow_nan=False, default=str
).encode

decode = json.loads


@overload
def encode(value: Any) -> str: ...
@overload
def encode(value: Any, *, field: str) -> str | None: ...


def encode(value: Any, *, field: str | None = None) -> str | None:
    """`value` as compact JSON text; strict when `field` names the Json field it is for (then
    None stays None, the column's NULL), lenient otherwise (see the module's rules)."""
    if field is not None:
        if value is None:
            return None
        try:
            return json.dumps(value, ensure_ascii=False, separators=_SEPARATORS, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{field} must be JSON-serialisable: {exc}") from exc
    try:
        return _lenient(value)
    except ValueError:
        # Only a non-finite float (or a cycle, which stays an error) gets here: the common
        # case pays no walk over the value.
        return json.dumps(
            _finite(value), ensure_ascii=False, separators=_SEPARATORS, allow_nan=False, default=str
        )


def _finite(value: Any) -> Any:
    """`value` with every NaN/Infinity inside it (lists, tuples, dict values) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def decode_object(text: str | None) -> dict[str, Any]:
    """A stored JSON object; {} for no text, text that is not JSON, or JSON that is not an
    object (a damaged row reads as empty, it does not fail the chat)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def decode_arguments(text: str | None) -> dict[str, Any]:
    """Tool-call arguments as a dict, whatever a model sent or a row holds.

    Blank text is no arguments ({}); text that is not JSON is kept as {"_raw": text} so the
    tool's error (and the stored row) shows what was sent; a JSON string holding JSON (how
    @node-llm/orm 0.8 stores arguments) is decoded once more; any other non-object JSON is
    {"value": value}.
    """
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"_raw": value}
    return value if isinstance(value, dict) else {"value": value}
