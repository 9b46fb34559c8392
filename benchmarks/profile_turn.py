"""Where a plain turn and the 10,000-message load spend their time (pyinstrument profiles).

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/profile_turn.py [--turns 2000] [--skip-pg | --skip-sqlite]
        [--out DIR] [--html]

Writes, per database, `turn-<db>.txt` (pyinstrument's call tree, wall time per frame; with
--html also its interactive view, large) and the same for `load-<db>` (load_chat + messages()
of 10,000 messages, repeated). The workload is bench.py's: FakeProvider with zero latency,
SQLite file in WAL mode, PostgreSQL from NODELLM_TEST_PG_URL or a throwaway server.
`--phase turn` (or `load`) runs one part only, e.g. under py-spy for a flame graph that also
shows the SQLite driver's thread:

    .venv/bin/py-spy record --threads --idle -o benchmarks/profiles/turn-sqlite.svg -- \
        .venv/bin/python benchmarks/profile_turn.py --phase turn --skip-pg --no-profiler
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import seed_messages  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from nodellm_orm import connect, create_chat, create_llm, load_chat  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402


class Session:
    """A pyinstrument profile of a block, written as text (and HTML when asked)."""

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        self.args, self.name = args, name
        self.profiler = None if args.no_profiler else Profiler(interval=0.0002)

    def __enter__(self) -> None:
        if self.profiler is not None:
            self.profiler.start()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is None:
            return
        self.profiler.stop()
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        text = self.profiler.output_text(unicode=False, color=False)
        (out / f"{self.name}.txt").write_text(text)
        if self.args.html:
            (out / f"{self.name}.html").write_text(self.profiler.output_html())
        print(f"written: {out / self.name}.txt", file=sys.stderr)


async def profile(label: str, url: str, args: argparse.Namespace) -> None:
    store = await connect(url)
    try:
        llm = create_llm(provider=FakeProvider())
        if args.phase in ("all", "turn"):
            chat = await create_chat(store, llm)
            for i in range(200):  # warm: compiled statements, WAL steady state
                await chat.ask(f"warm {i}")
            chat = await create_chat(store, llm)
            with Session(args, f"turn-{label}"):
                for i in range(args.turns):
                    await chat.ask(f"question {i}")
        if args.phase in ("all", "load"):
            chat_id = await seed_messages(store, llm, 10_000)
            with Session(args, f"load-{label}"):
                for _ in range(args.loads):
                    loaded = await load_chat(store, llm, chat_id)
                    assert loaded is not None
                    assert len(await loaded.messages()) == 10_000
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "profiles")
    parser.add_argument("--phase", choices=["all", "turn", "load"], default="all")
    parser.add_argument("--html", action="store_true", help="also pyinstrument's HTML view")
    parser.add_argument("--no-profiler", action="store_true", help="run only (for py-spy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        if not args.skip_sqlite:
            await profile("sqlite", f"sqlite:///{Path(tmp) / 'profile.db'}", args)
    if not args.skip_pg:
        from tests.support.postgres import create_database, postgres_url

        server = postgres_url()
        if server:
            await profile("postgresql", await create_database(server), args)


if __name__ == "__main__":
    asyncio.run(main())
