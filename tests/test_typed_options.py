"""The chat options and hooks are typed: mypy (strict) catches a misspelt option or a hook of
the wrong shape in user code, and accepts the documented forms.

One file of correct calls must pass; a file of mistakes must fail with one error per mistake
(checked by line), so the check cannot pass by treating the options as untyped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
from sqlalchemy.ext.asyncio import AsyncEngine

from nodellm_orm import (
    Agent,
    Chat,
    Store,
    connect,
    create_agent_session,
    create_chat,
    create_llm,
    load_agent_session,
    load_chat,
    scoped_store,
)
from nodellm_orm.core.messages import ToolCall


async def f(db: Store, engine: AsyncEngine) -> None:
    llm = create_llm("fake")
    await create_chat(await connect("sqlite:///chats.db"), llm)
    await create_chat(engine, llm)
    await load_chat(scoped_store(engine, userId="u-1"), llm, "id")
    await create_agent_session(db, llm, Agent)
    await load_agent_session(engine, llm, Agent, "id")
    chat: Chat = await create_chat(db, llm, temperature=0.2, maxTokens=5, toolCalls="one")
    await create_chat(db, llm, {"userId": "u-1", "toolConcurrency": True})
    await chat.ask("hi", max_tokens=5, requestTimeout=1500, thinking={"effort": "low"})
    chat.on_tool_call(lambda call: print(call.name))
    chat.on_confirm_tool_call(lambda call: call.name != "rm")
    chat.on_tool_call_error(lambda call, error: "STOP")
    chat.with_tools([], replace=True).with_thinking({"budget": 2048}).with_params({"seed": 1})
    chat.with_tool_choice({"type": "function", "function": {"name": "weather"}})
    loaded = await load_chat(db, llm, "id", {"chat": "AssistantChat"})
    assert loaded is None or loaded.id

    def confirm(call: ToolCall) -> bool:
        return True

    chat.on_confirm_tool_call(confirm)
    Agent(llm=llm, max_tool_calls=3)
"""

# (line, mistake): each line below must be reported.
BAD = [
    "await create_chat(db, llm, temprature=0.2)",
    'await chat.ask("hi", temprature=0.2)',
    "chat.on_tool_call(lambda: None)",
    "await create_chat(db, llm, toolConcurrency=3)",
    'chat.with_tool_calls("several")',
    "chat.on_end_message(lambda a, b: None)",
    'await load_chat(db, llm, "id", debug="yes")',
    'chat.with_thinking({"budget": "big"})',
    "await create_chat(42, llm)",
    'await load_chat("sqlite:///chats.db", llm, "id")',
    "await create_agent_session(object(), llm, Agent)",
    'await load_agent_session(None, llm, Agent, "id")',
    "chat.on_request(lambda metrics, extra: None)",
    "chat.on_before_request(lambda messages: 42)",
]


def _mypy(target: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(cache),
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(target),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.toolchain
def test_correct_option_and_hook_forms_pass_mypy(tmp_path: Path, mypy_cache: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(GOOD, encoding="utf-8")
    result = _mypy(good, mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.toolchain
def test_a_misspelt_option_or_a_wrong_hook_fails_mypy(tmp_path: Path, mypy_cache: Path) -> None:
    header = (
        "from nodellm_orm import (\n"
        "    Agent, Store, create_agent_session, create_chat, create_llm, load_agent_session,\n"
        "    load_chat,\n"
        ")\n"
        "\n"
        "async def f(db: Store) -> None:\n"
        '    llm = create_llm("fake")\n'
        "    chat = await create_chat(db, llm)\n"
    )
    first = header.count("\n") + 1
    bad = tmp_path / "bad.py"
    bad.write_text(header + "".join(f"    {line}\n" for line in BAD), encoding="utf-8")
    result = _mypy(bad, mypy_cache)
    assert result.returncode == 1, result.stdout + result.stderr
    reported = {
        int(line.split(":")[1]) for line in result.stdout.splitlines() if ": error:" in line
    }
    missed = [m for i, m in enumerate(BAD) if first + i not in reported]
    assert not missed, f"mypy accepted {missed}:\n{result.stdout}"
