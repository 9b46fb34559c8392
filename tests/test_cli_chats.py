"""The `chats` commands on real databases: masking, scoping, export/import, purge."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from nodellm_orm.cli import main
from tests.conftest import postgres_server, sql_dialects
from tests.support.documents import HEADER, chat_records
from tests.support.postgres import fresh_database

SECRET = "hunter2-s3cret"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NODELLM_PROVIDER", "NODELLM_MODEL", "OPENAI_API_KEY", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


@pytest.fixture
def pg_url_with_password() -> Iterator[str]:
    """A migrated PostgreSQL database, as a plain postgresql:// URL carrying a password
    (the test server trusts every connection, so the password is only there to be leaked)."""
    server = postgres_server()
    url = make_url(fresh_database(server))
    plain = url.set(drivername="postgresql", password=SECRET)
    text = plain.render_as_string(hide_password=False)
    assert run("migrate", "--url", text).exit_code == 0
    yield text


def test_errors_never_show_the_database_password(pg_url_with_password: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": pg_url_with_password}
    doc = tmp_path / "one.jsonl"
    when = "2026-01-01T00:00:00Z"
    doc.write_text(f'{{"chat": {{"id": "c1", "createdAt": "{when}", "updatedAt": "{when}"}}}}\n')
    outputs = [
        run("chats", "show", "no-such-chat", env=env),
        run("chats", "stats", "no-such-chat", env=env),
        run("chats", "import", str(doc), env=env),
        run("chats", "import", str(doc), env=env),  # the second one: "already exists in ..."
    ]
    for result in outputs:
        assert SECRET not in result.output, result.output
    assert "no chat with id 'no-such-chat'" in outputs[0].output
    assert ":***@" in outputs[0].output and ":***@" in outputs[1].output
    assert "postgresql://" in outputs[0].output  # the user's form, not postgresql+asyncpg
    assert "imported 1 chat into postgresql://postgres:***@" in outputs[2].output
    assert "already exists" in outputs[3].output


def test_mask_urls() -> None:
    from nodellm_orm.core.redaction import mask_urls

    assert mask_urls("postgresql://app:pw@db/x") == "postgresql://app:***@db/x"
    assert mask_urls("postgresql://app:p@ss:w@rd@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert mask_urls("sqlite:///x.db and postgresql://app@db/x") == (
        "sqlite:///x.db and postgresql://app@db/x"
    )
    assert mask_urls("dsn host=db password=pw user=u") == "dsn host=db password=*** user=u"


# ---- import from stdin, export errors, purge (issue 11 points 3 and 5, through the CLI) ------


@pytest.fixture(params=sql_dialects())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database, on an SQLite file or on the PostgreSQL server, whose chat table
    has a custom `userId` column (for --where)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'chats.db'}"
    else:
        server = postgres_server()
        url = fresh_database(server)
    assert run("migrate", "--url", url).exit_code == 0
    _sql(url, 'ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
    return url


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """One statement on the database (rows when it returns any), outside the CLI."""
    from nodellm_orm import connect

    async def go() -> list[tuple[Any, ...]]:
        store = await connect(url, migrate=False)
        try:
            async with store.engine.begin() as conn:
                result = await conn.exec_driver_sql(statement)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await store.close()

    return asyncio.run(go())


def _counts(url: str) -> dict[str, int]:
    tables = ("LlmChat", "LlmMessage", "LlmToolCall", "LlmRequest", "LlmAgentSession")
    return {t: _sql(url, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}


def _document(*chats: tuple[str, str, str | None]) -> str:
    """An export of chats (id, createdAt, userId), each with a session, a message, a tool call
    and a request."""
    records: list[dict[str, Any]] = [dict(HEADER)]
    for chat_id, when, user in chats:
        records += chat_records(chat_id, when, user)
    return "".join(json.dumps(r) + "\n" for r in records)


OLD = "2020-01-01T00:00:00Z"
NOW = datetime.now(UTC).isoformat()


def test_import_dash_reads_the_document_from_stdin(db_url: str, tmp_path: Path) -> None:
    doc = _document(("c1", OLD, "alice"), ("c2", NOW, None))
    result = run("chats", "import", "-", "--url", db_url, stdin=doc)
    assert result.exit_code == 0, result.output
    assert "imported 2 chats" in result.output
    assert _counts(db_url) == dict.fromkeys(_counts(db_url), 2)
    # What export writes on stdout, import - reads back into another database.
    exported = CliRunner().invoke(main, ["chats", "export", "--url", db_url])
    assert exported.exit_code == 0, exported.output
    other = f"sqlite:///{tmp_path / 'copy.db'}"
    assert run("migrate", "--url", other).exit_code == 0
    _sql(other, 'ALTER TABLE "LlmChat" ADD COLUMN "userId" TEXT')
    again = run("chats", "import", "-", "--url", other, stdin=exported.stdout)
    assert again.exit_code == 0, again.output
    assert "imported 2 chats" in again.output
    assert _sql(other, 'SELECT id, "userId" FROM "LlmChat" ORDER BY id') == [
        ("c1", "alice"),
        ("c2", None),
    ]
    assert _counts(other) == _counts(db_url)


def test_import_dash_with_a_broken_document_names_stdin_and_writes_nothing(db_url: str) -> None:
    doc = _document(("c1", OLD, None)).replace('"role": "user"', '"role": 5')
    result = run("chats", "import", "-", "--url", db_url, stdin=doc)
    assert result.exit_code == 1
    assert "<stdin>" in result.output and "'role'" in result.output
    assert "Traceback" not in result.output
    assert set(_counts(db_url).values()) == {0}


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_export_into_a_missing_directory_is_a_one_line_error(
    db_url: str, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / "no" / "such" / "dir" / "x.jsonl"
    result = run("chats", "export", "--url", db_url, "--format", fmt, "--output", str(target))
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot write"), result.output
    assert "does not exist" in lines[0] and "Traceback" not in result.output
    assert not target.parent.exists()


def test_export_into_a_missing_directory_from_a_shell_has_no_traceback(tmp_path: Path) -> None:
    # The installed entry point, as a user runs it: stderr carries one line, exit status 1.
    url = f"sqlite:///{tmp_path / 'chats.db'}"
    assert run("migrate", "--url", url).exit_code == 0
    done = subprocess.run(
        [sys.executable, "-m", "nodellm_orm", "chats", "export", "--url", url, "-o", "/no/such/x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: cannot write /no/such/x: directory /no/such does not exist"
    ]


def test_purge_counts_then_deletes_old_chats_in_the_where_scope(db_url: str) -> None:
    doc = _document(("old-a", OLD, "alice"), ("old-b", OLD, "bob"), ("new-a", NOW, "alice"))
    assert run("chats", "import", "-", "--url", db_url, stdin=doc).exit_code == 0
    before = _counts(db_url)
    assert before["LlmChat"] == 3

    dry = run("chats", "purge", "--older-than", "30d", "--dry-run", "--url", db_url)
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 chats created before" in dry.output
    assert "2 messages, 2 tool calls, 2 requests, 2 agent sessions" in dry.output
    assert _counts(db_url) == before  # a dry run deletes nothing

    scoped = run(
        "chats", "purge", "--older-than", "30d", "--where", "userId=alice", "--url", db_url
    )
    assert scoped.exit_code == 0, scoped.output
    assert "deleted 1 chat created before" in scoped.output
    assert "1 message, 1 tool call, 1 request, 1 agent session" in scoped.output
    assert sorted(_sql(db_url, 'SELECT id FROM "LlmChat"')) == [("new-a",), ("old-b",)]
    assert sorted(_sql(db_url, 'SELECT "chatId" FROM "LlmMessage"')) == [("new-a",), ("old-b",)]

    rest = run("chats", "purge", "--older-than", "30d", "--url", db_url)
    assert rest.exit_code == 0, rest.output
    assert "deleted 1 chat created before" in rest.output
    assert _sql(db_url, 'SELECT id FROM "LlmChat"') == [("new-a",)]
    assert set(_counts(db_url).values()) == {1}


def test_purge_refuses_a_bad_age_and_an_unknown_where_column(db_url: str) -> None:
    doc = _document(("old-a", OLD, "alice"))
    assert run("chats", "import", "-", "--url", db_url, stdin=doc).exit_code == 0
    bad_age = CliRunner().invoke(main, ["chats", "purge", "--older-than", "soon", "--url", db_url])
    assert bad_age.exit_code == 2 and "--older-than" in bad_age.output
    bad_where = run("chats", "purge", "--older-than", "1d", "--where", "tenant=x", "--url", db_url)
    assert bad_where.exit_code == 1 and "tenant" in bad_where.output
    assert _sql(db_url, 'SELECT id FROM "LlmChat"') == [("old-a",)]


def test_chats_on_a_database_at_a_newer_migration_name_the_drift(db_url: str) -> None:
    # A newer release's migration renamed a column the library writes, and is recorded.
    started = "1772323200000" if db_url.startswith("sqlite") else "now()"
    _sql(db_url, 'ALTER TABLE "LlmMessage" RENAME COLUMN "content" TO "body"')
    _sql(
        db_url,
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, "
        f"applied_steps_count) VALUES ('m2', 'abc', '20260301000000_newer', {started}, "
        f"{started}, 1)",
    )
    listed = run("chats", "list", "--url", db_url)
    assert listed.exit_code == 1
    assert "table 'LlmMessage': column 'content' does not exist" in listed.output
    assert "20260301000000_newer (applied, not shipped by this nodellm-orm)" in listed.output
    assert "to create the tables" not in listed.output  # migrating would not help
    imported = run("chats", "import", "-", "--url", db_url, stdin=_document(("c1", OLD, None)))
    assert imported.exit_code == 1
    assert "missing column 'content'" in imported.output
    assert "20260301000000_newer (applied, not shipped" in imported.output
    assert _sql(db_url, 'SELECT count(*) FROM "LlmChat"') == [(0,)]
