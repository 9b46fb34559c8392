"""A PostgreSQL server for tests, without asking the developer to run one.

`postgres_url()` answers, in this order:
1. `NODELLM_TEST_PG_URL` when set (CI exports it; point it at any server you like);
2. a throwaway cluster started on first call from the PostgreSQL binaries found under
   /usr/lib/postgresql/*/bin (or on PATH): initdb in a temp dir, a free 127.0.0.1 port,
   trust authentication, stopped and deleted when the interpreter exits;
3. None: no server available, the caller skips its PostgreSQL tests.

initdb refuses to run as root, so as root the cluster runs as the `postgres` OS user (created
by Debian's package), or as a system user created for the purpose when there is none.

`fresh_database(url)` creates a uniquely named, empty database on that server and returns its
URL, so that tests sharing one server never see each other's rows or tables.

Typical use in a test module:

    PG_URL = postgres_url()
    pytestmark = pytest.mark.skipif(PG_URL is None, reason="no PostgreSQL available")

    async def test_x() -> None:
        url = await create_database(PG_URL)  # or fresh_database(PG_URL) outside a loop
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

ENV_VAR = "NODELLM_TEST_PG_URL"
_SUPERUSER = "postgres"
_FALLBACK_OS_USER = "nodellm_pg"

_lock = threading.Lock()
_started_url: str | None = None
_tried = False

T = TypeVar("T")


def postgres_url() -> str | None:
    """An SQLAlchemy URL (`postgresql+asyncpg://...`) of a usable server, or None."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    global _started_url, _tried
    with _lock:
        if not _tried:
            _tried = True
            bindir = find_bindir()
            if bindir is not None:
                _started_url = _start_cluster(bindir)
    return _started_url


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin directory installed, or None."""

    def major(path: str) -> int:
        version = Path(path).parent.name
        return int(version) if version.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _os_user() -> str | None:
    """The account to run the server as: None = the current one (when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            _FALLBACK_OS_USER,
        ],
        check=True,
        capture_output=True,
    )
    return _FALLBACK_OS_USER


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", "-s", "/bin/sh", user, "-c", " ".join(_quote(a) for a in argv)]


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def _start_cluster(bindir: Path) -> str | None:
    user = _os_user()
    root = Path(tempfile.mkdtemp(prefix="nodellm-pg-"))
    data = root / "data"
    if user is not None:
        info = pwd.getpwnam(user)
        os.chown(root, info.pw_uid, info.pw_gid)
    run = subprocess.run
    init = _as_user(
        user,
        [
            *(str(bindir / "initdb"), "-D", str(data), "-U", _SUPERUSER, "-A", "trust"),
            *("-E", "UTF8", "--no-sync", "--locale=C"),
        ],
    )
    result = run(init, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def stop() -> None:
        run(
            _as_user(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)

    # Another process may grab the port between probing and listening; try a few.
    for _ in range(3):
        port = _free_port()
        # fsync off: the cluster is thrown away, durability would only slow the tests down.
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=200"
        start = _as_user(
            user,
            [
                *(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")),
                *("-o", options, "-w", "-t", "30", "start"),
            ],
        )
        if run(start, capture_output=True, text=True).returncode == 0:
            atexit.register(stop)
            _createdb(bindir, user, root, port, "nodellm_test")
            return f"postgresql+asyncpg://{_SUPERUSER}@127.0.0.1:{port}/nodellm_test"
        time.sleep(0.2)
    log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
    stop()
    raise RuntimeError(f"could not start PostgreSQL from {bindir}:\n{log}")


def _createdb(bindir: Path, user: str | None, root: Path, port: int, name: str) -> None:
    argv = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", _SUPERUSER, name]
    subprocess.run(_as_user(user, argv), check=True, capture_output=True)


def _asyncpg_dsn(url: str, database: str | None = None) -> tuple[str, str]:
    """asyncpg's DSN for `url` (optionally on another database), and the database name."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    name = parsed.database or ""
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False), name


# Databases create_database made in this process and nobody dropped yet, by URL.
_created: set[str] = set()


async def create_database(url: str, prefix: str = "t") -> str:
    """Create an empty, uniquely named database next to `url`'s and return its URL."""
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    dsn, _ = _asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        # A name we generated from hex digits: safe to splice, and CREATE DATABASE takes no
        # bind parameters.
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    created = make_url(url).set(database=name).render_as_string(hide_password=False)
    _created.add(created)
    return created


async def drop_database(url: str) -> None:
    """Drop the database `url` names, closing any session still connected to it."""

    admin_dsn, name = _asyncpg_dsn(url, "postgres")
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    _created.discard(url)


async def drop_created() -> int:
    """Drop every database this process created and has not dropped; how many were."""
    dropped = 0
    for url in sorted(_created):
        try:
            await drop_database(url)
        except (OSError, asyncpg.PostgresError):
            continue  # the server went away, or the database is in use elsewhere
        dropped += 1
    return dropped


def drop_created_databases() -> int:
    """`drop_created` on a server that outlives this process ($NODELLM_TEST_PG_URL; a
    throwaway cluster goes whole at exit)."""
    if not os.environ.get(ENV_VAR) or not _created:
        return 0
    return _run_sync(drop_created())


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion even when the caller is inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: T = box["value"]
    return result


def fresh_database(url: str, prefix: str = "t") -> str:
    """Synchronous `create_database`, usable from fixtures, in or outside an event loop."""
    return _run_sync(create_database(url, prefix))
