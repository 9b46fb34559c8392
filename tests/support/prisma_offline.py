"""Run Prisma's CLI (as pinned by prisma-client-py 0.15.0) without Prisma's binary host.

`prisma validate`, `format` and `generate` only ask the engines for `--version`; all the real
work happens in the CLI's bundled wasm schema engine and in prisma-client-py's Python
generator. So two stub executables that print the pinned engine version are enough. The CLI
itself (npm package `prisma@5.17.0`) is installed by prisma-client-py on first use into
`~/.cache/prisma-python/binaries/5.17.0/<engine hash>/` with the system `node`/`npm`
(PRISMA_USE_GLOBAL_NODE defaults to true; nodeenv is only a fallback when no node >= 16 is on
PATH). That first install takes about 6 s; later runs reuse the cache.

Typical use in a test:

    env = offline_env(tmp_path / "engines")
    run_prisma(["validate", "--schema", str(schema)], env)
    client = generate_client(schema, tmp_path / "gen")
    module = import_client(client)
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = [
    "ENGINE_VERSION",
    "GeneratedClient",
    "PrismaCommandError",
    "dummy_database_url",
    "generate_client",
    "import_client",
    "node_available",
    "offline_env",
    "run_prisma",
    "schema_provider",
]

ENGINE_VERSION = "393aa359c9ad4a4bb28630fb5613f9c281cde053"

# Name printed by each engine for `--version`, keyed by the stub file name.
_STUBS = {"query-engine": "query-engine", "schema-engine": "schema-engine-cli"}

# `env("DATABASE_URL")` must resolve for validate/generate, but nothing connects to it.
_DUMMY_URLS = {
    "postgresql": "postgresql://nodellm@127.0.0.1:5432/nodellm",
    "sqlite": "file:./nodellm.db",
    "mysql": "mysql://nodellm@127.0.0.1:3306/nodellm",
}

_GENERATOR_BLOCK = re.compile(r"(generator\s+\w+\s*\{)([^}]*)\}", re.S)
_PROVIDER = re.compile(r'datasource\s+\w+\s*\{[^}]*?provider\s*=\s*"([^"]+)"', re.S)


class PrismaCommandError(RuntimeError):
    """A Prisma CLI command exited non-zero; the message carries its output."""


def node_available() -> bool:
    """Whether prisma-client-py can run the CLI without downloading Node."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def _write_stub(path: Path, name: str) -> None:
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then\n'
        f'  echo "{name} {ENGINE_VERSION}"\n'
        "  exit 0\n"
        "fi\n"
        f'echo "{name} is an offline stub: this Prisma command needs the real engine" >&2\n'
        "exit 1\n",
        encoding="utf-8",
    )
    path.chmod(0o755)


def offline_env(stub_dir: Path, *, database_url: str | None = None) -> dict[str, str]:
    """Create the engine stubs in `stub_dir` and return the environment to run Prisma with."""
    stub_dir.mkdir(parents=True, exist_ok=True)
    for file_name, printed in _STUBS.items():
        _write_stub(stub_dir / file_name, printed)
    env = dict(os.environ)
    # The generator is the `prisma-client-py` console script of the running interpreter's venv.
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    env.update(
        {
            "PRISMA_QUERY_ENGINE_BINARY": str(stub_dir / "query-engine"),
            "PRISMA_SCHEMA_ENGINE_BINARY": str(stub_dir / "schema-engine"),
            "PRISMA_CLI_QUERY_ENGINE_TYPE": "binary",
            "PRISMA_HIDE_UPDATE_MESSAGE": "true",
            "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
            # No telemetry/update check: it would wait on an unreachable host.
            "CHECKPOINT_DISABLE": "1",
            "PRISMA_DISABLE_WARNINGS": "1",
        }
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


def run_prisma(
    args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python -m prisma <args>`; raise PrismaCommandError with its output on failure.

    The generous timeout covers the one-time npm install of the CLI.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "prisma", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise PrismaCommandError(
            f"prisma {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def schema_provider(schema_text: str) -> str:
    match = _PROVIDER.search(schema_text)
    if match is None:
        raise ValueError("schema has no datasource provider")
    return match.group(1)


def dummy_database_url(schema_text: str) -> str:
    return _DUMMY_URLS[schema_provider(schema_text)]


@dataclass(frozen=True)
class GeneratedClient:
    """Where `generate_client` put the client: import `package` with `root` on sys.path."""

    root: Path
    package: str
    schema_path: Path
    env: dict[str, str]

    @property
    def package_dir(self) -> Path:
        return self.root / self.package


def _with_output(schema_text: str, output_dir: Path) -> str:
    """Point the generator at `output_dir`.

    Without an explicit output, prisma-client-py overwrites the installed `prisma` package in
    site-packages, which would break every later test in the venv.
    """
    match = _GENERATOR_BLOCK.search(schema_text)
    if match is None:
        raise ValueError("schema has no generator block")
    body = re.sub(r"^\s*output\s*=.*$\n?", "", match.group(2), flags=re.M)
    body = body.rstrip() + f'\n  output = "{output_dir.as_posix()}"\n'
    return schema_text[: match.start()] + match.group(1) + body + "}" + schema_text[match.end() :]


def generate_client(
    schema_path: Path, out_dir: Path, *, package: str | None = None
) -> GeneratedClient:
    """Run `prisma generate` offline on a copy of `schema_path`, writing the client to
    `out_dir/<package>`. The package name defaults to one derived from the schema's content,
    so clients for different schemas can be imported side by side."""
    schema_text = schema_path.read_text(encoding="utf-8")
    if package is None:
        digest = hashlib.sha256(schema_text.encode("utf-8")).hexdigest()[:10]
        package = f"prisma_client_{digest}"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = offline_env(out_dir / ".engines", database_url=dummy_database_url(schema_text))
    copy = out_dir / f"{package}.prisma"
    copy.write_text(_with_output(schema_text, out_dir / package), encoding="utf-8")
    run_prisma(["generate", "--schema", str(copy)], env, cwd=out_dir)
    if not (out_dir / package / "__init__.py").is_file():
        raise PrismaCommandError(f"prisma generate wrote no package at {out_dir / package}")
    return GeneratedClient(root=out_dir, package=package, schema_path=copy, env=env)


def import_client(client: GeneratedClient) -> ModuleType:
    """Import the generated package (its modules use relative imports, so any name works)."""
    root = str(client.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.invalidate_caches()
    return importlib.import_module(client.package)


def install_cli() -> str:
    """Install Prisma's CLI into prisma-client-py's cache now (the one step that downloads,
    from the npm registry), so that no test has to; returns the CLI's version output."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nodellm-prisma-cli-") as tmp:
        return run_prisma(["--version"], offline_env(Path(tmp))).stdout


if __name__ == "__main__":
    print(install_cli())
