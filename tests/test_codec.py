"""The JSON codec (core.jsoncodec) and the time helpers (core.clock): one rule each.

The codec's rules, tested one by one:
- strict mode (a Json field the user fills, e.g. metadata): NaN/Infinity and values JSON cannot
  hold are refused with a TypeError naming the field, and nothing is written;
- lenient mode (text the library records from a provider or a tool: tool-call arguments,
  contentRaw): NaN/Infinity become null (as JavaScript's JSON.stringify writes them), other
  non-JSON values their str(), so every stored row is JSON any strict parser reads;
- both write compact JSON with non-ASCII text kept.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nodellm_orm import LLM, Tool, connect, create_chat
from nodellm_orm.core import clock, jsoncodec
from nodellm_orm.orm.history import encode_json
from nodellm_orm.orm.text import storable
from nodellm_orm.testing import FakeProvider


def strict_loads(text: str) -> Any:
    """json.loads without Python's NaN/Infinity extension: what JSON.parse and jsonb accept."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# ---- strict mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_strict_refuses_non_finite_numbers_naming_the_field(value: float) -> None:
    with pytest.raises(TypeError, match=r"^metadata must be JSON-serialisable"):
        jsoncodec.encode({"score": value}, field="metadata")


@pytest.mark.parametrize("value", [datetime(2024, 1, 1), {1, 2}, object(), b"bytes"])
def test_strict_refuses_values_json_cannot_hold_naming_the_field(value: Any) -> None:
    with pytest.raises(TypeError, match=r"^tags must be JSON-serialisable"):
        jsoncodec.encode({"v": value}, field="tags")


def test_strict_keeps_none_as_null_column_and_writes_compact_unicode() -> None:
    assert jsoncodec.encode(None, field="metadata") is None
    assert (
        jsoncodec.encode({"a": [1, "é"], "b": None}, field="metadata") == '{"a":[1,"é"],"b":null}'
    )


async def test_nan_metadata_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}", migrate=True)
    try:
        llm = LLM(FakeProvider())
        with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
            await create_chat(store, llm, metadata={"score": math.nan})
        assert await store.list_chats(limit=10) == []
    finally:
        await store.close()


# ---- lenient mode -----------------------------------------------------------------------------


def test_lenient_writes_non_finite_numbers_as_null() -> None:
    text = jsoncodec.encode({"a": math.nan, "b": [math.inf, 1.5], "c": (-math.inf,)})
    assert strict_loads(text) == {"a": None, "b": [None, 1.5], "c": [None]}


def test_lenient_writes_other_values_as_their_text() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert strict_loads(jsoncodec.encode({"at": at, "n": 1})) == {"at": str(at), "n": 1}


def test_lenient_writes_the_same_compact_form() -> None:
    assert jsoncodec.encode({"a": [1, "é"]}) == '{"a":[1,"é"]}'


class UnstorableText:
    """A value JSON cannot hold whose str() holds a NUL."""

    def __str__(self) -> str:
        return "bad \x00 text"


@pytest.mark.parametrize(
    "value",
    [
        {"a": "clean é", "n": [1, 2.5, None, True], "d": {"x": []}},
        {"k\x00ey": "v"},
        {"a": ["x", ("y\ud800",)], "b": "z\udc00"},
        {"a": "a backslash then u0000: \\u0000"},
        {"nan": math.nan, "s": "\udfff\x00"},
        {"obj": UnstorableText()},
        "\x00",
    ],
)
def test_the_orms_json_text_is_the_lenient_codec_over_the_storable_rule(value: Any) -> None:
    # orm.history.encode_json looks at the encoded text first and walks the value only when
    # the text shows something to replace: the result must be the rule's, every time.
    text = encode_json(value)
    assert text == jsoncodec.encode(storable(value))
    assert "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


class Probe(Tool):
    name = "probe"
    description = "Echoes its number."

    class Params(BaseModel):
        x: float | None = None

    def execute(self, params: Any) -> str:
        return "ok"


async def test_a_tool_call_with_nan_arguments_is_stored_as_json_every_parser_reads(
    tmp_path: Path,
) -> None:
    # Python's json module reads the NaN literal, so a provider's arguments can hold one.
    fake = FakeProvider()
    fake.reply_tool_call("probe", {"x": math.nan}).reply("done")
    store = await connect(f"sqlite:///{tmp_path / 'x.db'}", migrate=True)
    try:
        chat = await create_chat(store, LLM(fake))
        chat.with_tool(Probe)
        answer = await chat.ask("go")
        (call,) = await store.list_tool_calls([answer.id])
        assert strict_loads(call.arguments) == {"x": None}
        for row in await store.list_messages(chat.id):
            if row.contentRaw:
                strict_loads(row.contentRaw)
    finally:
        await store.close()


# ---- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("  ", {}),
        ('{"city":"Paris"}', {"city": "Paris"}),
        ("{not json", {"_raw": "{not json"}),
        # @node-llm/orm 0.8 stores arguments double-encoded: undone once.
        (json.dumps(json.dumps({"a": 1})), {"a": 1}),
        (json.dumps("plain words"), {"_raw": "plain words"}),
        ("[1, 2]", {"value": [1, 2]}),
        ("3", {"value": 3}),
    ],
)
def test_decode_arguments(text: str, expected: dict[str, Any]) -> None:
    assert jsoncodec.decode_arguments(text) == expected


@pytest.mark.parametrize("text", [None, "", "not json", "[1]", '"s"'])
def test_decode_object_reads_a_damaged_row_as_empty(text: str | None) -> None:
    assert jsoncodec.decode_object(text) == {}


# ---- clock ------------------------------------------------------------------------------------


def test_naive_datetimes_are_utc_everywhere() -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9, 123000)
    aware = naive.replace(tzinfo=UTC)
    assert clock.as_utc(naive) == aware
    assert clock.to_epoch_ms(naive) == clock.to_epoch_ms(aware) == 1714979289123
    assert clock.iso_ms(naive) == "2024-05-06T07:08:09.123+00:00"
    assert clock.iso_z(naive) == "2024-05-06T07:08:09.123000Z"
    assert clock.naive_utc(aware.astimezone(timezone(timedelta(hours=2)))) == naive


@pytest.mark.parametrize(
    "text",
    ["2024-05-06T07:08:09.123Z", "2024-05-06T09:08:09.123+02:00", "2024-05-06 07:08:09.123"],
)
def test_parse_iso_reads_z_offsets_and_naive_text_as_utc(text: str) -> None:
    parsed = clock.parse_iso(text)
    assert parsed == datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


def test_parse_iso_refuses_what_is_not_iso() -> None:
    with pytest.raises(ValueError):
        clock.parse_iso("yesterday")


@pytest.mark.parametrize(
    "stored",
    [
        1714979289123,
        1714979289123.0,
        "2024-05-06T07:08:09.123+00:00",
        "2024-05-06 07:08:09.123",
        datetime(2024, 5, 6, 7, 8, 9, 123000),
    ],
)
def test_every_stored_datetime_form_reads_as_the_same_instant(stored: Any) -> None:
    assert clock.to_datetime(stored) == datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def test_truncate_ms_keeps_what_the_databases_keep() -> None:
    value = datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert clock.truncate_ms(value) == datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
