"""A process killed mid-turn leaves the question and a row that says the turn was interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodellm_orm import TableNames, connect, create_llm, load_chat
from nodellm_orm.testing import FakeProvider
from tests.conftest import SqlBackend, sql_dialects

SCRIPT = """
import asyncio, sys
from nodellm_orm import connect, create_chat, create_llm
from nodellm_orm.testing import FakeProvider

async def main():
    db = await connect(sys.argv[1])
    llm = create_llm(provider=FakeProvider(latency=60))
    chat = await create_chat(db, llm, instructions="Be brief.")
    print(chat.id, flush=True)
    await chat.ask("Will this survive?")

asyncio.run(main())
"""


@pytest.mark.parametrize("dialect", sql_dialects())
async def test_kill_during_the_provider_call(dialect: str, tmp_path: Path) -> None:
    url = await SqlBackend(dialect).url(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert proc.stdout is not None
        chat_id = proc.stdout.readline().strip()
        assert chat_id, "the child process did not start"
        db = await connect(url)
        # Wait until the turn's first write is there, then kill without any cleanup.
        deadline = time.monotonic() + 20
        store = await db.bind(TableNames())
        while not await store.list_messages(chat_id):
            assert time.monotonic() < deadline, "the turn never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    rows = await store.list_messages(chat_id)
    assert [(r.role, r.content) for r in rows] == [
        ("user", "Will this survive?"),
        ("assistant", ""),
    ]
    assert json.loads(rows[1].contentRaw or "")["interrupted"] is True

    fake = FakeProvider()
    chat = await load_chat(db, create_llm(provider=fake), chat_id)
    assert chat is not None
    await chat.ask("And now?")
    sent = [(m.role, m.content) for m in fake.requests[-1].messages]
    assert sent == [
        ("system", "Be brief."),
        ("user", "Will this survive?"),
        ("user", "And now?"),
    ]
    await db.close()
