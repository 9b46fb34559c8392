"""The typed Prisma example passes mypy (strict) against a real generated client.

`prisma generate` runs offline (tests/support/prisma_offline.py) on the shipped schema into a
temp dir, as package `prisma`, and mypy finds it there first (MYPYPATH), as a user's generated
client would be found in site-packages. A second file with a deliberate mistake must fail, so
the check cannot pass by treating the client as untyped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodellm_orm.schema import schema_for
from tests.conftest import unavailable
from tests.support.prisma_offline import generate_client, node_available

pytestmark = pytest.mark.toolchain

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "typed_prisma.py"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not node_available():
        unavailable("node and npm are needed to run `prisma generate`")
    work = tmp_path_factory.mktemp("typecheck")
    schema = work / "schema.prisma"
    schema.write_text(schema_for("postgresql"), encoding="utf-8")
    return generate_client(schema, work / "clients", package="prisma").root


def _mypy(root: Path, target: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(root)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(cache),
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(target),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_typed_prisma_example_passes_mypy(generated: Path, tmp_path: Path) -> None:
    result = _mypy(generated, EXAMPLE, generated.parent / "mypy-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misuse_of_the_generated_client_fails_mypy(generated: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from prisma import Prisma\n"
        "\n"
        "async def f(db: Prisma) -> None:\n"
        "    n: str = await db.llmmessage.count()\n",
        encoding="utf-8",
    )
    result = _mypy(generated, wrong, generated.parent / "mypy-cache")
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Incompatible types in assignment (expression has type "int"' in result.stdout


def test_typed_prisma_example_runs_offline(tmp_path: Path) -> None:
    """The example itself, run as a user would: its generated client is the `prisma` package,
    its queries go to the query-engine stand-in, and without an API key it uses the fake."""
    from tests.support.prisma_engine import QUERY_ENGINE, engine_unavailable_reason

    reason = engine_unavailable_reason()
    if reason is not None or not node_available():
        unavailable(reason or "node and npm are needed to run `prisma generate`")
    schema = tmp_path / "schema.prisma"
    schema.write_text(schema_for("sqlite"), encoding="utf-8")
    client = generate_client(schema, tmp_path / "clients", package="prisma")
    db = tmp_path / "typed.db"
    migrated = subprocess.run(
        [sys.executable, "-m", "nodellm_orm", "migrate", "--url", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        PYTHONPATH=str(client.root),
        DATABASE_URL=f"file:{db}",
        PRISMA_QUERY_ENGINE_BINARY=str(QUERY_ENGINE),
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Prisma is a typed database toolkit." in done.stdout
    assert "4 messages stored, the last one by assistant" in done.stdout
    import sqlite3

    with sqlite3.connect(db) as conn:
        roles = [
            r for (r,) in conn.execute('SELECT role FROM "LlmMessage" ORDER BY "createdAt", id')
        ]
        (source,) = conn.execute('SELECT metadata FROM "LlmChat"').fetchone()
    assert roles == ["user", "assistant", "user", "assistant"]
    assert "typed_prisma example" in source
