"""The `chats` commands on real databases: masking, scoping, export/import, purge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from nodellm_orm.cli import main
from tests.conftest import unavailable
from tests.support.postgres import fresh_database, postgres_url

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
    server = postgres_url()
    if server is None:
        unavailable("no PostgreSQL server available")
        raise AssertionError
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
