"""Every example runs offline to completion against a fresh SQLite file."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Written by another owner, checked by its own tests.
NOT_HERE = {"typed_prisma.py"}
NEEDS = {"fastapi_streaming.py": "fastapi"}


@pytest.mark.parametrize(
    "script", sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in NOT_HERE)
)
def test_example_runs_offline(script: str, tmp_path: Path) -> None:
    needed = NEEDS.get(script)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{script} needs {needed}, which is not installed")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("NODELLM_PROVIDER", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'example.db'}"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert (tmp_path / "example.db").exists()


def test_the_readme_quickstart_is_examples_quickstart() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    assert snippet == (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")


@pytest.mark.toolchain
def test_the_quickstart_passes_mypy_strict(mypy_cache: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(mypy_cache),
            str(EXAMPLES / "quickstart.py"),
        ],
        cwd=EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
