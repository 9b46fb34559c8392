"""The `nodellm-orm` command line, run in-process on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nodellm_orm.cli import main, parse_models
from nodellm_orm.schema import schema_for

TABLES = ("LlmChat", "LlmMessage", "LlmToolCall", "LlmRequest")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI must not pick up a developer's provider or database from the environment."""
    for var in ("NODELLM_PROVIDER", "NODELLM_MODEL", "OPENAI_API_KEY", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows(db: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    result = run("demo", "--url", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    return db


# ---- init / sync ----------------------------------------------------------------------------


def test_init_writes_the_schema_and_never_overwrites_silently(tmp_path: Path) -> None:
    path = tmp_path / "prisma" / "schema.prisma"
    result = run("init", "--path", str(path))
    assert result.exit_code == 0, result.output
    assert path.read_text() == schema_for("postgresql")

    path.write_text("// my edits\n")
    refused = run("init", "--path", str(path))
    assert refused.exit_code == 1
    assert "already exists" in refused.output and "nodellm-orm sync" in refused.output
    assert path.read_text() == "// my edits\n"

    forced = run(
        "init", "--path", str(path), "--force", "--provider", "sqlite", "--sqlite-json", "String"
    )
    assert forced.exit_code == 0, forced.output
    text = path.read_text()
    assert 'provider = "sqlite"' in text
    models = parse_models(text)
    types = {f.type for m in models.values() for f in m.fields.values()}
    assert "String?" in types and not any(t.startswith("Json") for t in types)
    assert models["LlmChat"].fields["metadata"].type == "String?"
    assert set(models) == {
        "LlmChat",
        "LlmMessage",
        "LlmToolCall",
        "LlmRequest",
        "LlmAgentSession",
    }


def test_sync_accepts_the_reference_schema(tmp_path: Path) -> None:
    path = tmp_path / "schema.prisma"
    path.write_text(schema_for("sqlite"))
    result = run("sync", "--path", str(path))
    assert result.exit_code == 0, result.output
    assert "has every nodellm-orm model" in result.output


def test_sync_reports_missing_fields_models_and_wrong_types(tmp_path: Path) -> None:
    lines = schema_for("postgresql").splitlines()
    edited = [ln for ln in lines if not ln.strip().startswith("thinkingTokens")]
    text = "\n".join(edited).replace("statusCode       Int", "statusCode       String")
    # Drop the agent-session model entirely.
    models = parse_models(text)
    text = text.replace(models["LlmAgentSession"].block, "")
    path = tmp_path / "schema.prisma"
    path.write_text(text)

    result = run("sync", "--path", str(path))
    assert result.exit_code == 1
    thinking_line = next(ln for ln in lines if ln.strip().startswith("thinkingTokens"))
    assert thinking_line in result.output
    assert "LlmRequest.statusCode has type String, expected Int" in result.output
    assert "missing model LlmAgentSession" in result.output
    assert "model LlmAgentSession {" in result.output
    # Only a field of LlmMessage is missing: the model is not called missing.
    assert "model LlmMessage lacks 1 line; add inside `model LlmMessage { ... }`" in result.output
    assert "model LlmMessage is missing" not in result.output
    assert "3 differences from the nodellm-orm models (postgresql)" in result.output


@pytest.mark.parametrize("text", ["hello world\n", "", '{"compilerOptions": {}}\n'])
def test_sync_refuses_a_file_that_is_not_a_prisma_schema(tmp_path: Path, text: str) -> None:
    path = tmp_path / "schema.prisma"
    path.write_text(text)
    result = run("sync", "--path", str(path))
    assert result.exit_code == 1
    assert "not a Prisma schema" in result.output
    assert "missing model" not in result.output


def test_diff_schema_is_the_library_function_sync_prints() -> None:
    from nodellm_orm.schema import NotASchemaError, diff_schema

    ours = diff_schema(schema_for("sqlite"))
    assert (ours.provider, ours.count, ours.models) == ("sqlite", 0, [])
    lacking = schema_for("postgresql").replace("  thinkingText", "  // thinkingText")
    (model,) = diff_schema(lacking).models
    assert model.name == "LlmMessage" and not model.missing
    assert [line.split()[0] for line in model.lines_to_add] == ["thinkingText"]
    with pytest.raises(NotASchemaError):
        diff_schema("plain text")
    with pytest.raises(ValueError, match="'mongodb'"):
        diff_schema('datasource db {\n  provider = "mongodb"\n  url = "x"\n}\n')


def test_sync_without_a_schema_says_how_to_create_one(tmp_path: Path) -> None:
    result = run("sync", "--path", str(tmp_path / "none.prisma"))
    assert result.exit_code == 1
    assert "does not exist" in result.output and "nodellm-orm init" in result.output


# ---- migrate --------------------------------------------------------------------------------


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    first = run("migrate", "--url", f"sqlite:///{db}")
    assert first.exit_code == 0, first.output
    assert "applied 20251127000000_init" in first.output
    second = run("migrate", "--url", f"sqlite:///{db}")
    assert second.exit_code == 0, second.output
    assert "already up to date" in second.output
    assert len(rows(db, "_prisma_migrations")) == 1
    for table in TABLES:
        assert rows(db, table) == []


def test_migrate_reads_database_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("DATABASE_URL", f"file:{db}")  # Prisma's SQLite URL form
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert db.exists() and len(rows(db, "_prisma_migrations")) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@localhost/db", "unsupported database URL"),
        ("sqlite:///{tmp}/no/such/dir/x.db", "does not exist"),
    ],
)
def test_migrate_names_a_bad_url(tmp_path: Path, url: str, message: str) -> None:
    result = run("migrate", "--url", url.format(tmp=tmp_path))
    assert result.exit_code == 1
    assert message in result.output


# ---- demo -----------------------------------------------------------------------------------


def test_demo_offline_stores_a_tool_turn_and_a_streamed_turn(demo_db: Path, tmp_path: Path) -> None:
    result = run("demo", "--url", f"sqlite:///{tmp_path / 'again.db'}")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "FakeProvider" in out
    assert "get_weather" in out
    assert "stats(): input" in out

    (chat,) = rows(demo_db, "LlmChat")
    messages = rows(demo_db, "LlmMessage")
    with sqlite3.connect(demo_db) as conn:
        roles = [
            r[0] for r in conn.execute('SELECT role FROM "LlmMessage" ORDER BY "createdAt", id')
        ]
        calls = conn.execute('SELECT name, arguments, result FROM "LlmToolCall"').fetchall()
        requests = conn.execute(
            'SELECT "statusCode", duration, "inputTokens", "outputTokens" FROM "LlmRequest"'
        ).fetchall()
        empty = conn.execute(
            "SELECT count(*) FROM \"LlmMessage\" WHERE role = 'assistant' AND content IS NULL"
        ).fetchone()
    assert len(messages) == 4 and roles == ["user", "assistant", "user", "assistant"]
    assert all(m[1] == chat[0] for m in messages)
    ((name, arguments, tool_result),) = calls
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
    assert tool_result is not None and "Paris" in tool_result
    # Two rounds for the tool turn, one for the streamed turn; real timings and tokens.
    assert len(requests) == 3
    assert all(status == 200 and duration > 0 and inp > 0 for status, duration, inp, _ in requests)
    assert empty == (0,)
    # What the demo printed is what is stored.
    total = sum(r[2] + r[3] for r in requests)
    assert f"= {total} tokens" in out


def test_demo_without_the_key_of_the_asked_provider_runs_offline(tmp_path: Path) -> None:
    result = run("demo", "--url", f"sqlite:///{tmp_path / 'd.db'}", "--provider", "openai")
    assert result.exit_code == 0, result.output
    assert "OPENAI_API_KEY is not set" in result.output


def test_demo_rejects_an_unknown_provider(tmp_path: Path) -> None:
    result = run("demo", "--url", f"sqlite:///{tmp_path / 'd.db'}", "--provider", "nope")
    assert result.exit_code == 1
    assert "unknown provider 'nope'" in result.output
    assert not (tmp_path / "d.db").exists()


# ---- chats ----------------------------------------------------------------------------------


def test_list_and_show_print_the_stored_chat(demo_db: Path) -> None:
    url = f"sqlite:///{demo_db}"
    ((chat_id, *_),) = rows(demo_db, "LlmChat")
    listed = run("chats", "list", "--url", url)
    assert listed.exit_code == 0, listed.output
    assert chat_id in listed.output and "4 messages" in listed.output

    shown = run("chats", "show", chat_id, "--url", url)
    assert shown.exit_code == 0, shown.output
    assert "What's the weather in Paris" in shown.output
    assert "LlmToolCall get_weather" in shown.output
    assert "usage: 3 requests" in shown.output


def test_show_and_stats_name_an_unknown_chat(demo_db: Path) -> None:
    for command in (("chats", "show"), ("chats", "stats")):
        result = run(*command, "no-such-id", "--url", f"sqlite:///{demo_db}")
        assert result.exit_code == 1
        assert "no chat with id 'no-such-id'" in result.output


def test_chats_on_a_missing_database_file_do_not_create_it(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    result = run("chats", "list", "--url", f"sqlite:///{db}")
    assert result.exit_code == 1
    assert "no database file" in result.output
    assert not db.exists()


def test_chats_on_a_database_without_our_tables_say_so(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    sqlite3.connect(db).close()
    result = run("chats", "list", "--url", f"sqlite:///{db}")
    assert result.exit_code == 1
    assert "LlmChat" in result.output and "nodellm-orm migrate" in result.output


def test_stats_sum_the_request_rows(demo_db: Path) -> None:
    assert run("demo", "--url", f"sqlite:///{demo_db}").exit_code == 0
    with sqlite3.connect(demo_db) as conn:
        inp, out = conn.execute(
            'SELECT sum("inputTokens"), sum("outputTokens") FROM "LlmRequest"'
        ).fetchone()
        chat_id, chat_in = conn.execute(
            'SELECT "chatId", sum("inputTokens") FROM "LlmRequest" GROUP BY "chatId" LIMIT 1'
        ).fetchone()
    everything = run("chats", "stats", "--url", f"sqlite:///{demo_db}")
    assert everything.exit_code == 0, everything.output
    assert "all chats: 6 requests" in everything.output
    assert f"input tokens:  {inp}" in everything.output
    assert f"total tokens:  {inp + out}" in everything.output
    one = run("chats", "stats", chat_id, "--url", f"sqlite:///{demo_db}")
    assert "3 requests" in one.output and f"input tokens:  {chat_in}" in one.output


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_export_then_import_recreates_the_same_rows(
    demo_db: Path, tmp_path: Path, fmt: str
) -> None:
    assert run("demo", "--url", f"sqlite:///{demo_db}").exit_code == 0  # two chats
    dump = tmp_path / f"chats.{fmt}"
    exported = run(
        "chats", "export", "--url", f"sqlite:///{demo_db}", "--format", fmt, "-o", str(dump)
    )
    assert exported.exit_code == 0, exported.output
    records = (
        json.loads(dump.read_text())
        if fmt == "json"
        else [json.loads(line) for line in dump.read_text().splitlines()]
    )
    docs = by_chat(records)
    assert len(docs) == 2 and all(len(d["message"]) == 4 for d in docs)

    fresh = tmp_path / "fresh.db"
    imported = run("chats", "import", str(dump), "--url", f"sqlite:///{fresh}")
    assert imported.exit_code == 0, imported.output
    assert "imported 2 chats" in imported.output
    for table in TABLES:
        assert rows(fresh, table) == rows(demo_db, table), table


def by_chat(records: list[dict[str, object]]) -> list[dict[str, list[object]]]:
    """An export's records (after its format header) grouped under the chat they follow."""
    assert records[0] == {"format": "nodellm-orm/chats", "version": 2}
    docs: list[dict[str, list[object]]] = []
    for record in records[1:]:
        ((kind, data),) = record.items()
        if kind == "chat":
            docs.append({})
        docs[-1].setdefault(kind, []).append(data)
    return docs


def test_export_to_stdout_is_one_record_per_line(demo_db: Path) -> None:
    result = CliRunner().invoke(main, ["chats", "export", "--url", f"sqlite:///{demo_db}"])
    assert result.exit_code == 0, result.output
    (doc,) = by_chat([json.loads(line) for line in result.stdout.splitlines()])
    assert {"chat", "message", "toolCall", "request"} <= doc.keys()
    assert doc["toolCall"][0]["name"] == "get_weather"  # type: ignore[index]


def test_import_refuses_duplicates_and_writes_nothing(demo_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "chats.jsonl"
    assert run("chats", "export", "--url", f"sqlite:///{demo_db}", "-o", str(dump)).exit_code == 0
    before = {t: rows(demo_db, t) for t in TABLES}
    result = run("chats", "import", str(dump), "--url", f"sqlite:///{demo_db}")
    assert result.exit_code == 1
    assert "already exists" in result.output and "nothing was imported" in result.output
    assert {t: rows(demo_db, t) for t in TABLES} == before


def test_import_is_all_or_nothing(demo_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "chats.jsonl"
    assert run("chats", "export", "--url", f"sqlite:///{demo_db}", "-o", str(dump)).exit_code == 0
    # The earlier one-object-per-chat layout, which import still reads.
    (exported,) = by_chat([json.loads(line) for line in dump.read_text().splitlines()])
    good = {
        "chat": exported["chat"][0],
        "messages": exported["message"],
        "toolCalls": exported["toolCall"],
        "requests": exported["request"],
    }
    broken = json.loads(json.dumps(good))
    broken["chat"]["id"] = "another-chat"
    for m in broken["messages"]:
        m["id"] = "x" + m["id"]
        m["chatId"] = "another-chat"
    broken["requests"] = []
    # A tool call of an unknown message: refused after the first chat went in.
    broken["toolCalls"][0]["messageId"] = "missing-message"
    dump.write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")

    fresh = tmp_path / "fresh.db"
    result = CliRunner().invoke(main, ["chats", "import", str(dump), "--url", f"sqlite:///{fresh}"])
    assert result.exit_code == 1
    assert "'missing-message', not a message of the document's chat" in result.output
    for table in TABLES:
        assert rows(fresh, table) == [], table


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json at all\n", "is not a chats export"), ('[{"messages": []}]', "is not a chat")],
)
def test_import_names_a_bad_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run("chats", "import", str(path), "--url", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 1
    assert message in result.output


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    result = run("chats", "import", str(tmp_path / "nope.jsonl"), "--url", "sqlite:///x.db")
    assert result.exit_code == 1
    assert "no such file" in result.output


# ---- front-door defects ---------------------------------------------------------------------


def test_the_advice_for_a_missing_database_fills_that_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = run("chats", "list")  # the default URL, sqlite:///nodellm.db
    assert missing.exit_code == 1
    advice = missing.output.split("fill it with the demo: `", 1)[1].split("`", 1)[0]
    *_, command, option, url = advice.split()
    assert (command, option) == ("demo", "--url")
    assert run("demo", "--url", url).exit_code == 0
    listed = run("chats", "list")
    assert listed.exit_code == 0, listed.output
    assert "4 messages" in listed.output


@pytest.mark.parametrize("command", [("migrate",), ("chats", "list"), ("demo",)])
def test_a_bare_word_is_not_taken_for_a_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*command, "--url", "notaurl")
    assert result.exit_code == 1
    assert "not a database URL: 'notaurl'" in result.output
    assert "sqlite:///notaurl" in result.output
    assert list(tmp_path.iterdir()) == []
    # The spelled-out forms still work.
    assert run("migrate", "--url", "sqlite:///a.db").exit_code == 0
    assert run("migrate", "--url", "file:./b.db").exit_code == 0
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    import asyncio

    from nodellm_orm import connect, create_chat, create_llm
    from nodellm_orm.testing import FakeProvider

    db = tmp_path / "one.db"

    async def one_turn() -> str:
        store = await connect(f"sqlite:///{db}")
        try:
            chat = await create_chat(store, create_llm(FakeProvider(["Hi."])))
            await chat.ask("Hello?")
            return chat.id
        finally:
            await store.close()

    chat_id = asyncio.run(one_turn())
    url = f"sqlite:///{db}"
    shown = run("chats", "show", chat_id, "--url", url).output
    assert "LlmMessage (2 rows)" in shown
    assert "LlmToolCall (0 rows)  LlmRequest (1 row)" in shown
    assert "usage: 1 request," in shown
    assert (
        "chat " + chat_id + ": 1 request\n" in run("chats", "stats", chat_id, "--url", url).output
    )
    assert "all chats: 1 request\n" in run("chats", "stats", "--url", url).output
    dump = tmp_path / "one.jsonl"
    exported = CliRunner().invoke(main, ["chats", "export", "--url", url, "-o", str(dump)])
    assert "exported 1 chat to" in exported.output
    imported = run("chats", "import", str(dump), "--url", f"sqlite:///{tmp_path / 'copy.db'}")
    assert "imported 1 chat into" in imported.output


def test_the_demo_ends_with_a_command_that_runs_from_here(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # The README's install leaves the venv's bin directory off PATH.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("NODELLM_PROVIDER", None)
    env["PATH"] = "/usr/bin:/bin"
    script = Path(sys.executable).parent / "nodellm-orm"
    demo = subprocess.run(
        [str(script), "demo", "--url", "sqlite:///d.db"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    last = demo.stdout.strip().splitlines()[-1]
    assert last.startswith("explore: ")
    command = last.removeprefix("explore: ").split()
    assert command[0] != "nodellm-orm"
    again = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "get_weather" in again.stdout


def test_errors_name_the_url_as_the_user_wrote_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    result = run("demo", "--url", url)
    assert result.exit_code == 1
    assert url in result.output
    assert "aiosqlite" not in result.output
