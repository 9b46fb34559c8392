"""Two checkouts of nodellm-orm side by side, in one run: issue 13's figures before and after.

    git worktree add /tmp/nodellm-before <commit>      # or any other checkout
    .venv/bin/python benchmarks/compare.py --before /tmp/nodellm-before [--after .] [--rounds 3]

Each round runs every checkout once per database, alternating which goes first, each in a
fresh interpreter that imports that checkout's library (so neither warms the other's caches)
and a fresh database; the table shows the median over rounds. Only the public API is used
(connect, create_chat, load_chat, the FakeProvider), so any two versions compare.
Figures: overhead per plain turn (median ORM turn - median bare core turn, zero-latency
model; also on a chat already holding 10,000 messages), turn 191-200 / turn 1-10,
load_chat + messages() of 10,000 messages (wall and CPU time), many chats at once (turns/s,
worst turn), and `import nodellm_orm` (-X importtime, cumulative).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def worker(root: Path, dialect: str, args: argparse.Namespace) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    from harness import ms, run_concurrent, sequential_cpu

    from nodellm_orm import connect, create_chat, create_llm, load_chat
    from nodellm_orm.testing import FakeProvider

    assert Path(sys.modules["nodellm_orm"].__file__ or "").is_relative_to(root), "wrong checkout"
    tmp = tempfile.mkdtemp(dir=root)
    if dialect == "sqlite":
        url = f"sqlite:///{tmp}/compare.db"
    else:
        from tests.support.postgres import create_database, postgres_url

        server = postgres_url()
        assert server, "no PostgreSQL server"
        url = await create_database(server)
    store = await connect(url)
    out: dict[str, float] = {}
    try:
        llm = create_llm(provider=FakeProvider())

        async def orm_run(turns: int) -> tuple[list[float], list[float]]:
            chat = await create_chat(store, llm)
            return await sequential_cpu(lambda i: chat.ask(f"question {i}"), turns)

        await orm_run(args.warmup)
        bare = create_llm(provider=FakeProvider()).chat()
        core, core_cpu = await sequential_cpu(lambda i: bare.ask(f"question {i}"), 200)
        orm, orm_cpu = await orm_run(200)
        out["overhead per plain turn (ms)"] = ms(orm) - ms(core)
        out["overhead per plain turn, CPU time (ms)"] = ms(orm_cpu) - ms(core_cpu)
        out["turn 191-200 / turn 1-10"] = statistics.median(orm[190:]) / statistics.median(orm[:10])
        chat = await create_chat(store, llm)
        # An hour old, as a long chat's history is: a turn re-counts the rows of the last
        # two minutes (orm.history.LATE_WINDOW), which a history written just now all is.
        at = datetime.now(UTC) - timedelta(hours=1)
        rows = [
            {
                "id": f"m{i:06d}-{chat.id}",
                "chatId": chat.id,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": f"message number {i} with a few words of text",
                "createdAt": at + timedelta(milliseconds=i // 3),
            }
            for i in range(10_000)
        ]
        for i in range(0, len(rows), 500):
            await chat.store.insert_messages(rows[i : i + 500])
        loads, loads_cpu = [], []
        for _ in range(8):
            t0, c0 = time.perf_counter(), time.process_time()
            loaded = await load_chat(store, llm, chat.id)
            assert loaded is not None
            assert len(await loaded.messages()) >= 10_000
            loads.append(time.perf_counter() - t0)
            loads_cpu.append(time.process_time() - c0)
        out["load_chat+messages() 10,000 (ms)"] = ms(loads[1:])
        # This process's CPU only (not PostgreSQL's): steadier than wall time on a busy machine.
        out["load_chat+messages() 10,000, CPU time (ms)"] = ms(loads_cpu[1:])
        # The same chat, asked on: a turn's cost should not grow with the history it follows.
        # Against a bare core chat of the same length (its own turn copies the history).
        assert loaded is not None
        await loaded.ask("warm up")
        long_chat, _ = await sequential_cpu(lambda i: loaded.ask(f"question {i}"), 200)
        for i in range(5_000):
            await bare.ask(f"question {i}")
        long_core, _ = await sequential_cpu(lambda i: bare.ask(f"question {i}"), 200)
        out["overhead per plain turn, 10,000-message chat (ms)"] = ms(long_chat) - ms(long_core)
        for chats, turns in args.shapes:
            conversations = []
            for _ in range(chats):
                c = await create_chat(store, llm)
                conversations.append(lambda i, c=c: c.ask(f"question {i}"))
            stats = await run_concurrent(conversations, turns, args.deadline)
            out[f"{chats} x {turns}: turns/s"] = stats.turns_per_second
            out[f"{chats} x {turns}: worst turn (ms)"] = max(stats.latencies, default=0) * 1000
            out[f"{chats} x {turns}: failed or cut turns"] = chats * turns - stats.done
    finally:
        await store.close()
        if dialect != "sqlite":  # (drop_database: also in the older checkouts compared)
            from tests.support.postgres import drop_database

            await drop_database(url)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def import_ms(root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import nodellm_orm"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
    )
    last = [ln for ln in done.stderr.splitlines() if ln.rstrip().endswith("| nodellm_orm")]
    return int(last[-1].split("|")[1]) / 1000


def import_cpu_ms(root: Path, statement: str) -> float:
    """CPU time of an import: steadier than wall time on a machine shared with others."""
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        check=True,
    )
    return float(done.stdout) * 1000


IMPORTS = {
    "import nodellm_orm (CPU ms)": "import nodellm_orm",
    "from nodellm_orm import create_chat, create_llm (CPU ms)": (
        "from nodellm_orm import create_chat, create_llm"
    ),
    "... and connect, the sql backend (CPU ms)": (
        "from nodellm_orm import create_chat, create_llm, connect"
    ),
}


def run_worker(root: Path, dialect: str, argv: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, __file__, "--worker", str(root), "--dialect", dialect, *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"{root} on {dialect} failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main() -> None:
    from harness import parse_shapes

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--before", type=Path)
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--shapes", default="50x20,200x10")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dialect", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.shapes = parse_shapes(args.shapes)
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker.resolve(), args.dialect, args))))
        return
    if args.before is None:
        parser.error("--before is required")
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    passed = [
        f"--warmup={args.warmup}",
        f"--shapes={','.join(f'{c}x{t}' for c, t in args.shapes)}",
        f"--deadline={args.deadline}",
    ]
    for root in roots.values():
        # Both sides import from bytecode, as an installed package does.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "nodellm_orm")])
    results: dict[tuple[str, str, str], list[float]] = {}
    for round_no in range(args.rounds):
        order = list(roots) if round_no % 2 == 0 else list(roots)[::-1]
        for dialect in args.dialects.split(","):
            for side in order:
                figures = run_worker(roots[side], dialect, passed)
                for key, value in figures.items():
                    results.setdefault((dialect, key, side), []).append(value)
                print(f"round {round_no + 1} {dialect} {side}: {figures}", file=sys.stderr)
        for side in order:
            for _ in range(3):
                results.setdefault(("-", "import nodellm_orm (ms)", side), []).append(
                    import_ms(roots[side])
                )
                for label, statement in IMPORTS.items():
                    results.setdefault(("-", label, side), []).append(
                        import_cpu_ms(roots[side], statement)
                    )
    print(f"before: {roots['before']}\nafter:  {roots['after']}\nmedian of {args.rounds} rounds")
    rows = sorted({(d, k) for d, k, _ in results}, key=lambda dk: (dk[0] == "-", dk[0]))
    width = max(len(f"{d} {k}") for d, k in rows)
    print(f"{'figure'.ljust(width)}  {'before':>10}  {'after':>10}  after/before")
    for dialect, key in rows:
        label = key if dialect == "-" else f"{dialect} {key}"
        b = statistics.median(results[(dialect, key, "before")])
        a = statistics.median(results[(dialect, key, "after")])
        change = f"{a / b:.2f}x" if b else "-"
        print(f"{label.ljust(width)}  {b:>10.3f}  {a:>10.3f}  {change}")


if __name__ == "__main__":
    main()
