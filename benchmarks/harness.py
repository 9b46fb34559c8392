"""What bench.py and peers.py share: one way to time turns, alone or many chats at once.

A conversation is an async callable taking the turn number; the harness times each call and
the whole run, so every library is measured by the same clock and the same arithmetic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

Turn = Callable[[int], Awaitable[object]]


@dataclass
class RunStats:
    chats: int
    turns: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str | None
    timed_out: bool = False

    @property
    def done(self) -> int:
        return len(self.latencies) - self.errors

    @property
    def turns_per_second(self) -> float:
        return self.done / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        text = (
            f"{self.turns_per_second:,.0f} turns/s (p99 {self.quantile(0.99) * 1000:.1f} ms, "
            f"max {max(self.latencies, default=float('nan')) * 1000:.1f} ms)"
        )
        if self.timed_out:
            text += (
                f", stopped after {self.seconds:.0f} s with {self.done} of "
                f"{self.chats * self.turns} turns done"
            )
        if self.errors:
            text += f", {self.errors} failed: {self.first_error}"
        return text


async def run_concurrent(
    conversations: Sequence[Turn], turns: int, deadline: float | None = None
) -> RunStats:
    """Every conversation does `turns` turns one after the other, all conversations at once;
    stopped after `deadline` seconds (a stuck run is a figure too, not a hang)."""
    latencies: list[float] = []
    failures: list[BaseException] = []

    async def converse(turn: Turn) -> None:
        for i in range(turns):
            start = time.perf_counter()
            try:
                await turn(i)
            except Exception as exc:  # reported with the figures, not hidden
                failures.append(exc)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(converse(turn)) for turn in conversations]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    seconds = time.perf_counter() - start
    first = f"{type(failures[0]).__name__}: {failures[0]}"[:120] if failures else None
    return RunStats(
        len(conversations), turns, seconds, latencies, len(failures), first, bool(pending)
    )


async def sequential(turn: Turn, turns: int) -> list[float]:
    """Seconds per turn of one conversation, in turn order."""
    out = []
    for i in range(turns):
        start = time.perf_counter()
        await turn(i)
        out.append(time.perf_counter() - start)
    return out


async def sequential_cpu(turn: Turn, turns: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per turn (CPU of the whole process, driver threads included):
    on a machine shared with other jobs, CPU time shows what is ours without the waits."""
    wall, cpu = [], []
    for i in range(turns):
        start, start_cpu = time.perf_counter(), time.process_time()
        await turn(i)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """Chats x turns per chat: "50x20,200x10" -> [(50, 20), (200, 10)]; "" -> []."""
    shapes: list[tuple[int, int]] = []
    for part in filter(None, text.split(",")):
        chats, _, turns = part.strip().partition("x")
        if not (chats.isdigit() and turns.isdigit()) or int(chats) < 1 or int(turns) < 1:
            raise argparse.ArgumentTypeError(f"{part!r} is not CHATSxTURNS, e.g. 50x20")
        shapes.append((int(chats), int(turns)))
    return shapes


def one_shape(text: str) -> tuple[int, int]:
    """One CHATSxTURNS, for a script that runs a single shape: "50x20" -> (50, 20)."""
    shapes = parse_shapes(text)
    if len(shapes) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one CHATSxTURNS, e.g. 50x20")
    return shapes[0]


def postgres_or_exit() -> str:
    """The test PostgreSQL server's URL (NODELLM_TEST_PG_URL, else a throwaway cluster), or
    exit saying there is none."""
    from tests.support.postgres import postgres_url

    server = postgres_url()
    if not server:
        raise SystemExit("no PostgreSQL server (set NODELLM_TEST_PG_URL)")
    return server
