"""One definition of the five models: the packaged schema.prisma (`nodellm_orm.model.definition`).

The records are held equal to it here (and when the module loads); the SQLAlchemy tables, the
columns the stores select and the positions their readers convert, the prisma store's field
lists, the JSON fields and the import format are derived from it. The last test adds a column
to every model in a scratch copy of the package, touching only schema.prisma, the records and
one migration per provider, and shows every store path picking it up with createdAt intact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nodellm_orm.core.clock import to_datetime
from nodellm_orm.model import DEFAULT_TABLE_NAMES, columns
from nodellm_orm.model.definition import (
    JSON_FIELDS,
    MODELS,
    SCALAR_TYPES,
    SchemaDefinitionError,
    load_models,
)
from nodellm_orm.schema import reference_schema
from nodellm_orm.stores.readers import reader_source, record_reader
from tests.conftest import postgres_server, sql_dialects
from tests.support.postgres import create_database

PACKAGE = Path(__file__).resolve().parents[1] / "nodellm_orm"


def test_the_records_name_the_schema_columns_with_their_types() -> None:
    for model in MODELS.values():
        hints = typing.get_type_hints(model.record)
        assert set(columns(model.record)) == set(model.names), model.name
        for column in model.columns:
            hint = hints[column.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
            python = "Any" if args[0] is Any else args[0].__name__
            assert python == SCALAR_TYPES[column.type], (model.name, column.name)
            if column.optional and args[0] is not Any:  # Any includes None
                assert type(None) in typing.get_args(hint), (model.name, column.name)


def test_default_table_names_are_the_schema_models() -> None:
    assert {k: m.name for k, m in MODELS.items()} == dict(DEFAULT_TABLE_NAMES)


def test_a_json_field_name_is_json_in_every_model_that_has_it() -> None:
    # The stores encode Json by field name, whichever table a row goes to.
    for model in MODELS.values():
        for column in model.columns:
            assert (column.name in JSON_FIELDS) == (column.type == "Json"), column.name
    assert {"metadata"} == JSON_FIELDS


def test_readers_convert_createdAt_where_the_record_has_it() -> None:
    # The hand-written slices these replace: rec(*r[:13], dt(r[13])), ToolCallRecord(*r[:8], ...)
    message = reader_source(MODELS["message"].record, json_text=True)
    assert "o.createdAt = (c13 if type(c13) is _datetime and c13.tzinfo is _utc" in message
    assert "(_d := _iso(c13)).tzinfo is _utc else _dt(c13))" in message
    assert "o.createdAt = (c8 if " in reader_source(MODELS["tool_call"].record, json_text=True)
    assert "o.createdAt = (c11 if " in reader_source(MODELS["request"].record, json_text=True)
    # A field the query pins is passed in, once, and the row's cells shift past it.
    given = reader_source(MODELS["message"].record, json_text=True, given=("chatId",))
    assert given.startswith("def read_message(rows, chatId):")
    assert "o.chatId = chatId\n        o.role = c1\n" in given
    assert "o.createdAt = (c12 if " in given


@pytest.mark.parametrize("key", ["message", "tool_call", "request", "agent_session"])
@pytest.mark.parametrize("json_text", [True, False])
def test_a_reader_builds_the_records_the_class_builds(key: str, json_text: bool) -> None:
    # The readers fill a record's slots themselves: what comes out must be the very record
    # the constructor makes (type, values, equality, repr), for every column a row holds.
    record = MODELS[key].record
    names = columns(record)
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    values = {n: (at if n in ("createdAt", "updatedAt") else f"{n}-1") for n in names}
    if "metadata" in values:
        values["metadata"] = {"k": [1]}
    expected = record(**values)
    row = [
        "2026-01-02T03:04:05.678+00:00"
        if n in ("createdAt", "updatedAt") and json_text
        else ('{"k": [1]}' if n == "metadata" and json_text else values[n])
        for n in names
    ]
    read = record_reader(record, json_text=json_text)
    (built,) = read([tuple(row)])
    assert type(built) is record
    assert built == expected
    assert repr(built) == repr(expected)
    assert [getattr(built, n) for n in names] == [getattr(expected, n) for n in names]
    if "chatId" in names:  # a chat's page: chatId comes from the query's parameter
        read_page = record_reader(record, json_text=json_text, given=("chatId",))
        short = tuple(c for n, c in zip(names, row, strict=True) if n != "chatId")
        assert read_page([short], values["chatId"]) == [expected]


@pytest.mark.parametrize(
    "cell",
    [
        "2026-01-02T03:04:05.678+00:00",
        "2026-01-02T03:04:05.678Z",
        "2026-01-02T05:04:05.678+02:00",
        "2026-01-02T03:04:05.678",
        "2026-01-02 03:04:05",
        1767323045678,
        datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 678000),
        None,
    ],
)
def test_a_reader_reads_createdAt_in_every_stored_form_as_to_datetime_does(cell: Any) -> None:
    # The readers inline to_datetime's most frequent cases; every form must read the same.
    row = ("m1", "c1", "user", *[None] * 10, cell)
    for json_text in (True, False):
        (built,) = record_reader(MODELS["message"].record, json_text=json_text)([row])
        assert built.createdAt == to_datetime(cell)
        assert built.createdAt is None or built.createdAt.tzinfo is UTC


ROLE = "  role              String\n"
REFUSED = [
    ((ROLE, ROLE + "  urgent Boolean\n"), "Boolean"),
    ((ROLE, ROLE.rstrip("\n") + ' @map("r")\n'), "@map"),
    (("  @@index([chatId])\n", '  @@index([chatId])\n  @@map("msgs")\n'), "@@map"),
    (
        ("model LlmRequest {", "model LlmUsage {\n  id String @id\n}\n\nmodel LlmRequest {"),
        "models",
    ),
]


@pytest.mark.parametrize(("edit", "message"), REFUSED)
def test_what_the_stores_cannot_map_is_refused(edit: tuple[str, str], message: str) -> None:
    schema = reference_schema()
    assert edit[0] in schema
    with pytest.raises(SchemaDefinitionError, match=message):
        load_models(schema.replace(edit[0], edit[1], 1))


# --- adding a column ------------------------------------------------------------------------

# One new column per model, before createdAt (where adding cachedTokens once made every
# message come back with createdAt None).
NEW_COLUMNS = {
    "LlmChat": ("title", "String?", "str | None", "TEXT"),
    "LlmMessage": ("cachedTokens", "Int?", "int | None", "INTEGER"),
    "LlmToolCall": ("durationMs", "Int?", "int | None", "INTEGER"),
    "LlmRequest": ("cachedTokens", "Int?", "int | None", "INTEGER"),
    "LlmAgentSession": ("label", "String?", "str | None", "TEXT"),
}
RECORD_OF = {
    "LlmChat": "ChatRecord",
    "LlmMessage": "MessageRecord",
    "LlmToolCall": "ToolCallRecord",
    "LlmRequest": "RequestRecord",
    "LlmAgentSession": "AgentSessionRecord",
}
MIGRATION = "20261202000000_add_columns"


def _insert_before_created(text: str, block_start: str, line: str) -> str:
    """`line` inserted before the first createdAt line after `block_start` (once)."""
    start = text.index(block_start)
    at = text.index("createdAt", start)
    at = text.rindex("\n", 0, at) + 1
    return text[:at] + line + text[at:]


def add_columns_to_schema(package: Path) -> None:
    path = package / "schema.prisma"
    text = path.read_text()
    for model, (name, prisma_type, _, _) in NEW_COLUMNS.items():
        text = _insert_before_created(text, f"model {model} {{", f"  {name} {prisma_type}\n")
    path.write_text(text)


def add_columns_to_records(package: Path) -> None:
    path = package / "model" / "records.py"
    text = path.read_text()
    for model, (name, _, annotation, _) in NEW_COLUMNS.items():
        text = _insert_before_created(
            text, f"class {RECORD_OF[model]}:", f"    {name}: {annotation} = None\n"
        )
    path.write_text(text)


def add_migrations(package: Path) -> None:
    for provider in ("sqlite", "postgresql"):
        directory = package / "migrations" / provider / MIGRATION
        directory.mkdir()
        (directory / "migration.sql").write_text(
            "".join(
                f'-- AlterTable\nALTER TABLE "{model}" ADD COLUMN "{name}" {sql_type};\n\n'
                for model, (name, _, _, sql_type) in NEW_COLUMNS.items()
            )
        )


# Runs against the scratch copy: every way a row comes back, on one database.
SCRIPT = r"""
import asyncio, json, sys
from datetime import UTC, datetime
import nodellm_orm
assert nodellm_orm.__file__.startswith(sys.argv[2]), nodellm_orm.__file__
from nodellm_orm import TableNames, connect, create_chat, create_llm, load_chat
from nodellm_orm.stores import prisma as prisma_store
from nodellm_orm.stores.tables import build_tables
from nodellm_orm.testing import FakeProvider
from nodellm_orm.transfer import record_dict, _SPECS

NEW = json.loads(sys.argv[3])
out = {}

async def main(url):
    tables = build_tables()
    out["tables"] = {t.name: list(t.c.keys()) for t in tables.metadata.tables.values()}
    out["prisma"] = {
        "message": list(prisma_store._MESSAGE.fields),
        "tool_call": list(prisma_store._TOOL_CALL.fields),
        "request": list(prisma_store._REQUEST.fields),
        "agent_session": list(prisma_store._SESSION.fields),
        "chat": sorted(prisma_store._BASE_CHAT),
    }
    out["import"] = {kind: sorted(spec) for kind, spec in _SPECS.items()}

    store = await connect(url)
    fake = FakeProvider()
    llm = create_llm(provider=fake)
    fake.reply("one")
    chat = await create_chat(store, llm, {"title": "kept"})
    await chat.ask("first")
    again = await load_chat(store, llm, chat.id)
    fake.reply("two")
    await again.ask("second")  # the turn that once failed on createdAt None

    db = await store.bind(TableNames())
    t0 = datetime(2030, 1, 2, 6, 0, 0, 123000, tzinfo=UTC)
    await db.insert_messages([{"id": "m-x", "chatId": chat.id, "role": "user",
                               "content": "x", "cachedTokens": 7, "createdAt": t0}])
    await db.create_tool_calls([{"id": "t-x", "messageId": "m-x", "toolCallId": "c1",
                                 "name": "f", "arguments": "{}", "durationMs": 12,
                                 "createdAt": t0}])
    await db.create_requests([{"id": "r-x", "chatId": chat.id, "messageId": "m-x",
                               "provider": "fake", "model": "m", "statusCode": 200,
                               "duration": 5, "inputTokens": 1, "outputTokens": 2,
                               "cachedTokens": 3, "createdAt": t0}])
    session = await db.create_agent_session(
        {"id": "c-s", "createdAt": t0, "updatedAt": t0},
        {"id": "s-x", "agentClass": "A", "chatId": "c-s", "label": "L",
         "createdAt": t0, "updatedAt": t0},
    )
    messages = await db.list_messages(chat.id)
    calls = await db.list_tool_calls(["m-x"])
    requests = await db.list_requests(chat.id)
    record = await db.get_chat(chat.id)
    def show(r):
        d = record_dict(r)
        d["createdAt_type"] = type(r.createdAt).__name__
        return d
    out["messages"] = [show(m) for m in messages]
    out["tool_calls"] = [show(c) for c in calls]
    out["requests"] = [show(r) for r in requests]
    out["session"] = show(await db.get_agent_session("s-x"))
    out["session_created"] = show(session)
    out["chat"] = show(record)
    out["t0"] = t0.isoformat().replace("+00:00", "Z")
    await store.close()

asyncio.run(main(sys.argv[1]))
print(json.dumps(out))
"""


def _run(scratch: Path, url: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(scratch)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, str(scratch), json.dumps(NEW_COLUMNS)],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("added-column")
    shutil.copytree(
        PACKAGE, root / "nodellm_orm", ignore=shutil.ignore_patterns("__pycache__", "static")
    )
    return root


def test_a_column_only_in_schema_prisma_is_refused_by_name(tmp_path: Path) -> None:
    """Forgetting the record is an error at import naming the column, not a silent None."""
    shutil.copytree(
        PACKAGE, tmp_path / "nodellm_orm", ignore=shutil.ignore_patterns("__pycache__", "static")
    )
    add_columns_to_schema(tmp_path / "nodellm_orm")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "import nodellm_orm.stores.sql"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "SchemaDefinitionError" in done.stderr
    assert "ChatRecord and schema.prisma's LlmChat disagree" in done.stderr
    assert "['title']" in done.stderr


def _check_added(result: dict[str, Any]) -> None:
    for model, (name, *_rest) in NEW_COLUMNS.items():
        assert name in result["tables"][model], model
    for key, model in (
        ("message", "LlmMessage"),
        ("tool_call", "LlmToolCall"),
        ("request", "LlmRequest"),
        ("agent_session", "LlmAgentSession"),
        ("chat", "LlmChat"),
    ):
        assert NEW_COLUMNS[model][0] in result["prisma"][key], key
    assert "cachedTokens" in result["import"]["message"]
    assert "title" in result["import"]["chat"]

    messages = result["messages"]
    # Two turns through the ORM, and the row written with the new column (dated 2030).
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    for m in messages:
        assert m["createdAt_type"] == "datetime"
        datetime.fromisoformat(m["createdAt"])
    written = messages[-1]
    assert (written["id"], written["cachedTokens"], written["createdAt"]) == (
        "m-x",
        7,
        result["t0"],
    )
    assert all(m["cachedTokens"] is None for m in messages[:-1])
    (call,) = result["tool_calls"]
    assert (call["durationMs"], call["createdAt"], call["createdAt_type"]) == (
        12,
        result["t0"],
        "datetime",
    )
    written_request = next(r for r in result["requests"] if r["id"] == "r-x")
    assert (written_request["cachedTokens"], written_request["createdAt"]) == (3, result["t0"])
    assert all(r["createdAt_type"] == "datetime" for r in result["requests"])
    for session in (result["session"], result["session_created"]):
        assert (session["label"], session["createdAt"], session["updatedAt"]) == (
            "L",
            result["t0"],
            result["t0"],
        )
    assert result["chat"]["title"] == "kept"
    assert result["chat"]["createdAt_type"] == "datetime"


@pytest.fixture(scope="module")
def with_column(scratch: Path) -> Path:
    package = scratch / "nodellm_orm"
    add_columns_to_schema(package)
    add_columns_to_records(package)
    add_migrations(package)
    # What was edited: schema.prisma, the records, one migration per provider; nothing else.
    changed = set()
    for path in package.rglob("*"):
        original = PACKAGE / path.relative_to(package)
        if path.is_file() and (not original.exists() or original.read_bytes() != path.read_bytes()):
            changed.add(str(path.relative_to(package)))
    assert changed == {
        "schema.prisma",
        "model/records.py",
        f"migrations/sqlite/{MIGRATION}/migration.sql",
        f"migrations/postgresql/{MIGRATION}/migration.sql",
    }
    return scratch


@pytest.mark.parametrize("dialect", sql_dialects())
async def test_an_added_column_is_read_and_written(
    dialect: str, with_column: Path, tmp_path: Path
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'added.db'}"
    else:
        url = await create_database(postgres_server(), prefix="col")
    _check_added(_run(with_column, url))
