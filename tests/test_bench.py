"""benchmarks/bench.py runs and prints its table (tiny sizes; no figure is asserted: speed is
shown by the script's output, never by a timed test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--skip-pg", "--skip-prisma", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_prints_every_row_of_its_table() -> None:
    out = run_bench("--turns", "12", "--warmup", "2", "--load", "40", "--shapes", "3x2,2x3")
    lines = [line.strip() for line in out.splitlines()]
    for row in (
        "backend",
        "overhead per plain turn",
        "round trips / plain turn",
        "load_chat+messages() 40",
        "peak / retained memory",
        "3 chats x 2 turns",
        "2 chats x 3 turns",
    ):
        assert any(line.startswith(f"{row}  ") for line in lines), (row, out)
    assert "3 statements (+" in out  # the plain turn's statement budget on SQLite
    assert "failed" not in out


def test_bench_scale_mode_compares_an_empty_and_a_seeded_database() -> None:
    out = run_bench("--scale", "250", "--turns", "50", "--warmup", "2")
    assert "250 in 3 chats" in out, out
    assert "seeded / empty" in out


def test_bench_refuses_a_malformed_shape() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--shapes", "50by20"], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "50by20" in done.stderr


def test_load_floor_times_the_orm_load_beside_the_bare_driver() -> None:
    script = BENCH.with_name("load_floor.py")
    done = subprocess.run(
        [sys.executable, str(script), "--skip-pg", "--messages", "30", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    for row in ("load_chat + messages() (nodellm-orm)", "sqlite3 fetchall() alone"):
        assert row in done.stdout, done.stdout
