"""Issue 13's table in one run: each figure beside its target, and what bounds those missed.

    .venv/bin/python benchmarks/targets.py [--rounds 7] [--peer-rounds 3] [--scale 1000000]
        [--skip-pg]

Every figure is measured in this run (FakeProvider with zero latency; SQLite on a file in WAL
mode with synchronous=NORMAL; PostgreSQL at NODELLM_TEST_PG_URL, else a throwaway server),
by the other scripts' own functions:

- overhead per plain turn: median over `--rounds` rounds of (median of 200 turns through
  nodellm-orm - median of 200 bare core turns), the two alternating; turn 191-200 / 1-10 is
  the median of the same rounds' ratios (bench.py);
- under it on SQLite, the turn's statements and commits replayed on plain `sqlite3` in the
  same rounds (turn_floor.py): what is left is nodellm-orm's Python;
- 50 x 20 and 200 x 10 on SQLite against the best of the peers, rounds alternated
  (peers.py);
- 50 x 20 on PostgreSQL with `connect()`'s default pool, `--rounds` bursts on one store
  after one that opens the connections: turns/s, worst turn, and the client's and the
  server's CPU per turn (pg_pool.py), which bound the rate on this machine's cores;
- load_chat + messages() of 10,000 messages beside the driver's fetch of the same SELECT
  alone (load_floor.py);
- `import nodellm_orm` (-X importtime, median of 5 fresh interpreters);
- per-turn cost on a database of `--scale` messages against an empty one (bench.py
  --scale); `--scale 0` leaves it out.
nodellm-orm's own rows run first, then the peers (their libraries, once imported, make the
process's full garbage collections slower for everyone), then the rest. Printed: the table
(figure, SQLite, PostgreSQL, target, met or not), then for each row the figures in the same
run that bound it (the floors under it, the rounds). Wall times on a shared machine move
between runs by up to a half, the floors with them: compare a run's rows with its floors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402
import load_floor  # noqa: E402
import peers  # noqa: E402
import turn_floor  # noqa: E402
from compare import import_ms  # noqa: E402
from harness import ms, run_concurrent  # noqa: E402

from nodellm_orm import connect, create_llm  # noqa: E402
from nodellm_orm.testing import FakeProvider  # noqa: E402

TURNS = 200
LOAD = 10_000
SHAPES = ((50, 20), (200, 10))
# Issue 13's targets (a pair: SQLite, PostgreSQL).
TARGET_OVERHEAD_MS = (0.3, 0.8)
TARGET_PEER_RATIO = 2.0
TARGET_PG_RATE, TARGET_PG_WORST_S = 2000.0, 0.2
TARGET_LOAD_MS = 20.0
TARGET_LATE_EARLY = 1.1
TARGET_IMPORT_MS = 100.0
TARGET_SCALE = 1.1


async def turn_rounds(url: str, db: Path | None, rounds: int) -> dict[str, list[float]]:
    """Per round: overhead ms, turn 191-200 / 1-10, and (SQLite) the replayed statements' ms."""
    store = await connect(url)
    llm = create_llm(provider=FakeProvider())
    out: dict[str, list[float]] = {"overhead": [], "late/early": [], "statements": []}
    try:
        steps, chat_id = await turn_floor.record_turn(store, llm) if db else ([], "")
        await bench.orm_turns(store, llm, 150)  # compiled statements, caches, WAL steady state
        for _ in range(rounds):
            orm = await bench.orm_turns(store, llm, TURNS)
            core = await bench.bare_turns(TURNS)
            out["overhead"].append(ms(orm) - ms(core))
            out["late/early"].append(bench.ratio(orm, slice(190, 200), slice(0, 10)))
            if db is not None:
                out["statements"].append(ms(turn_floor.replay(db, steps, chat_id, TURNS)))
    finally:
        await store.close()
    return out


async def peer_rates(tmp: Path, rounds: int) -> dict[tuple[str, int, int], list[float]]:
    """turns/s of every system per shape and round, the order alternating round by round."""
    rates: dict[tuple[str, int, int], list[float]] = {}
    names = list(peers.SYSTEMS)
    for chats, turns in SHAPES:
        for round_no in range(rounds):
            for name in names if round_no % 2 == 0 else names[::-1]:
                rate, _ = await peers.concurrent(name, tmp, chats, turns, round_no)
                rates.setdefault((name, chats, turns), []).append(rate)
    return rates


async def pg_bursts(url: str, rounds: int) -> list[tuple[float, float, float, float]]:
    """50 x 20 with the default pool, after one round that opens the connections: per round
    (turns/s, worst turn s, client CPU ms a turn, server CPU ms a turn)."""
    from pg_pool import server_cpu

    chats, turns = SHAPES[0]
    store = await connect(url)
    llm = create_llm(provider=FakeProvider())
    out = []
    try:
        for round_no in range(rounds + 1):
            conversations = await bench.new_conversations(store, llm, chats)
            server, cpu = server_cpu(), time.process_time()
            stats = await run_concurrent(conversations, turns, deadline=60)
            n = max(stats.done, 1)
            client_ms = (time.process_time() - cpu) / n * 1000
            server_ms = (server_cpu() - server) / n * 1000
            if round_no and not stats.errors:
                out.append((stats.turns_per_second, max(stats.latencies), client_ms, server_ms))
            elif stats.errors:
                sys.exit(f"PostgreSQL 50 x 20: {stats.summary()}")
    finally:
        await store.close()
    return out


async def loads(label: str, url: str, rounds: int) -> tuple[float, float, float]:
    """Wall ms of load_chat + messages(), of the driver's fetch of the same SELECT alone, and
    of allocating as many empty records."""
    figures, _ = await load_floor.floor(label, url, rounds, LOAD)
    driver = next(v for k, v in figures.items() if "SELECT" in k and "ORDER" not in k)
    ours = figures["load_chat + messages() (nodellm-orm)"]
    return ours[0], driver[0], figures[load_floor.ALLOCATION][0]


async def scale_turns(dialect: str, total: int, tmp: Path) -> tuple[float, float] | None:
    """Median ms of a turn on an empty database and on one of `total` messages."""
    # 8 alternating rounds of 50 turns on each database.
    args = argparse.Namespace(scale=total, warmup=150, turns=400, skip_pg=False, pg=None)
    measured = await bench.scale_times(dialect, args, tmp)
    if measured is None:
        return None
    _, empty, full = measured
    return ms(empty), ms(full)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: list[bool]) -> str:
    return "met" if all(ok) else "NOT MET"


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every figure of the table: nodellm-orm alone on SQLite, then on PostgreSQL, then
    against the peers, the import, and the per-turn cost against the database's size."""
    found: dict[str, Any] = {}
    db = tmp / "turns.db"
    found["sqlite turns"] = await turn_rounds(f"sqlite:///{db}", db, args.rounds)
    found["sqlite load"] = await loads("sqlite", f"sqlite:///{tmp / 'load.db'}", args.rounds)
    if not args.skip_pg:
        from tests.support.postgres import create_database, drop_database, postgres_url

        server = postgres_url()
        if server is None:
            sys.exit("no PostgreSQL server (set NODELLM_TEST_PG_URL, or --skip-pg)")
        # Each on a database of its own, dropped after, so that no step's leftovers (and
        # autovacuum's work on them) weigh on the next.
        for key, step in (
            ("pg turns", lambda url: turn_rounds(url, None, args.rounds)),
            ("pg bursts", lambda url: pg_bursts(url, args.rounds)),
            ("pg load", lambda url: loads("postgresql", url, args.rounds)),
        ):
            url = await create_database(server)
            try:
                found[key] = await step(url)
            finally:
                await drop_database(url)
    # After the rows of nodellm-orm alone: the peers' libraries, once imported, hold some
    # 200,000 objects that every full collection of the cyclic GC walks (seen: 150 ms pauses).
    found["peers"] = await peer_rates(tmp, args.peer_rounds)
    found["import"] = median([import_ms(ROOT) for _ in range(5)])
    if args.scale:
        for dialect in ("sqlite",) if args.skip_pg else ("sqlite", "postgresql"):
            found[f"{dialect} scale"] = await scale_turns(dialect, args.scale, tmp)
    return found


def table(found: dict[str, Any], scale: int) -> tuple[list[tuple[str, ...]], list[str]]:
    """The rows (figure, SQLite, PostgreSQL, target, verdict) and what bounds each one missed."""
    rows: list[tuple[str, ...]] = []
    bounds: list[str] = []
    sq, pg = found["sqlite turns"], found.get("pg turns")
    over = [median(sq["overhead"]), median(pg["overhead"]) if pg else float("nan")]
    ok = [over[0] <= TARGET_OVERHEAD_MS[0]] + ([over[1] <= TARGET_OVERHEAD_MS[1]] if pg else [])
    rows.append(
        (
            "overhead per plain turn",
            f"{over[0]:.3f} ms",
            f"{over[1]:.3f} ms" if pg else "-",
            f"<= {TARGET_OVERHEAD_MS[0]} / {TARGET_OVERHEAD_MS[1]} ms",
            verdict(ok),
        )
    )
    statements = median(sq["statements"])
    bounds.append(
        f"SQLite turn: its 3 statements and 2 commits alone take {statements:.3f} ms on plain "
        f"sqlite3 (same file, same pragmas); nodellm-orm's Python the other "
        f"{over[0] - statements:.3f} ms, of which the 0.3 ms target leaves "
        f"{max(0.0, TARGET_OVERHEAD_MS[0] - statements):.3f} ms (rounds: "
        + ", ".join(f"{v:.3f}" for v in sq["overhead"])
        + ")"
    )
    rates = found["peers"]
    cells, ok = [], []
    for chats, turns in SHAPES:
        ours = median(rates[("nodellm-orm", chats, turns)])
        best, best_name = max(
            (median(v), n)
            for (n, c, t), v in rates.items()
            if (c, t) == (chats, turns) and n != "nodellm-orm"
        )
        cells.append(f"{ours:,.0f} ({ours / best:.2f}x)")
        ok.append(ours / best >= TARGET_PEER_RATIO)
        bounds.append(
            f"{chats} x {turns} on SQLite: nodellm-orm rounds "
            + ", ".join(f"{v:,.0f}" for v in rates[("nodellm-orm", chats, turns)])
            + f" turns/s; best peer {best_name} {best:,.0f}"
        )
    rows.append(
        (
            "50 x 20 / 200 x 10, turns/s (x best peer)",
            " / ".join(cells),
            "-",
            f">= {TARGET_PEER_RATIO}x best peer",
            verdict(ok),
        )
    )
    if "pg bursts" in found:
        bursts = found["pg bursts"]
        rate, client, server = (median([b[i] for b in bursts]) for i in (0, 2, 3))
        worst = max(b[1] for b in bursts)  # of every turn of every round
        cores = os.cpu_count() or 1
        ceiling = min(1000 / client, cores * 1000 / (client + server))
        rows.append(
            (
                "50 x 20, PostgreSQL, default pool",
                "-",
                f"{rate:,.0f} turns/s, worst {worst * 1000:.0f} ms",
                f">= {TARGET_PG_RATE:,.0f} turns/s, worst <= {TARGET_PG_WORST_S} s",
                verdict([rate >= TARGET_PG_RATE, worst <= TARGET_PG_WORST_S]),
            )
        )
        bounds.append(
            f"PostgreSQL 50 x 20: a turn costs {client:.3f} ms of this process's CPU (one "
            f"thread) and {server:.3f} ms of the server's, on {cores} cores: at most "
            f"{ceiling:,.0f} turns/s if nothing else ran (rounds: "
            + ", ".join(f"{b[0]:,.0f}" for b in bursts)
            + ")"
        )
    sq_load, sq_driver, sq_alloc = found["sqlite load"]
    pg_load, pg_driver, pg_alloc = found.get("pg load", (float("nan"),) * 3)
    rows.append(
        (
            f"load_chat + messages(), {LOAD:,} messages",
            f"{sq_load:.1f} ms",
            f"{pg_load:.1f} ms" if "pg load" in found else "-",
            f"<= {TARGET_LOAD_MS:.0f} ms",
            verdict([sq_load <= TARGET_LOAD_MS] + ([pg_load <= TARGET_LOAD_MS] if pg else [])),
        )
    )
    bounds.append(
        f"load: the driver's fetch of the same SELECT alone, before any record is built, "
        f"{sq_driver:.1f} ms on SQLite (sqlite3 fetchall)"
        + (f", {pg_driver:.1f} ms on PostgreSQL (asyncpg fetch)" if "pg load" in found else "")
        + f"; allocating {LOAD:,} empty records, nothing set, {sq_alloc:.1f} ms"
        + (f" / {pg_alloc:.1f} ms" if "pg load" in found else "")
        + f": together {sq_driver + sq_alloc:.1f}"
        + (f" / {pg_driver + pg_alloc:.1f}" if "pg load" in found else "")
        + " ms before a record holds a value"
    )
    late = [median(sq["late/early"]), median(pg["late/early"]) if pg else float("nan")]
    ok = [late[0] <= TARGET_LATE_EARLY] + ([late[1] <= TARGET_LATE_EARLY] if pg else [])
    rows.append(
        (
            "turn 191-200 / turn 1-10",
            f"{late[0]:.2f}",
            f"{late[1]:.2f}" if pg else "-",
            f"<= {TARGET_LATE_EARLY}",
            verdict(ok),
        )
    )
    rows.append(
        (
            "import nodellm_orm",
            f"{found['import']:.1f} ms",
            "",
            f"<= {TARGET_IMPORT_MS:.0f} ms",
            verdict([found["import"] <= TARGET_IMPORT_MS]),
        )
    )
    if scale:
        turns = [found.get(f"{d} scale") for d in ("sqlite", "postgresql")]
        ratios = [t[1] / t[0] if t else None for t in turns]
        given = [r for r in ratios if r is not None]
        rows.append(
            (
                f"per-turn cost, {scale:,} messages / empty",
                *(f"{r:.2f}x" if r is not None else "-" for r in ratios),
                f"<= {TARGET_SCALE}x",
                verdict([r <= TARGET_SCALE for r in given]),
            )
        )
        bounds.append(
            f"per-turn cost, median of 400 turns on an empty database / on {scale:,} messages: "
            + ", ".join(
                f"{name} {t[0]:.3f} / {t[1]:.3f} ms"
                for name, t in zip(("SQLite", "PostgreSQL"), turns, strict=True)
                if t
            )
        )
    return rows, bounds


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the sequential rows")
    parser.add_argument("--peer-rounds", type=int, default=3, help="rounds of the concurrent rows")
    parser.add_argument("--scale", type=int, default=1_000_000, help="0: no scale row")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print("load average before:", f.read().strip())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        try:
            found = await measure(args, Path(tmp))
        finally:
            if not args.skip_pg:
                from tests.support.postgres import drop_created

                await drop_created()
    rows, bounds = table(found, args.scale)
    header = ("figure", "SQLite", "PostgreSQL", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("\nWhat bounds them, measured in the same run:")
    for line in bounds:
        print(f"- {line}")
    with open("/proc/loadavg") as f:
        print(f"\n{time.perf_counter() - started:.0f} s; load average after:", f.read().strip())


if __name__ == "__main__":
    asyncio.run(main())
