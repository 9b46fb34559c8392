"""Tools: the model calls a Python tool; each call is an LlmToolCall row with its result.

    python examples/tools.py

A tool is a `Tool` subclass with a name, a description, a pydantic `Params` model and
`execute` (sync or async). Hooks see each call; one provider round trip = one LlmRequest row.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import BaseModel, Field

from nodellm_orm import LLM, Tool, ToolCall, connect, create_chat, create_llm
from nodellm_orm.testing import FakeProvider


class Calculator(Tool):
    name = "calculate"
    description = "Multiply or add two numbers."

    class Params(BaseModel):
        a: float
        b: float
        op: str = Field(pattern="^(add|multiply)$")

    def execute(self, params: Any) -> float:
        return float(params.a + params.b if params.op == "add" else params.a * params.b)


def show_start(call: ToolCall) -> None:
    print(f"-> {call.name}({call.arguments})")


def show_end(call: ToolCall, result: Any) -> None:
    print(f"<- {call.name} returned {result}")


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    fake = FakeProvider()
    fake.reply_tool_call("calculate", {"a": 23, "b": 19, "op": "multiply"})
    fake.reply("23 times 19 is 437.")
    return create_llm(fake)


async def main() -> None:
    db = await connect(os.environ.get("DATABASE_URL", "sqlite:///nodellm.db"))
    llm = make_llm()
    try:
        chat = await create_chat(db, llm, max_tool_calls=5)
        chat.with_tool(Calculator)
        chat.on_tool_call_start(show_start).on_tool_call_end(show_end)

        answer = await chat.ask("What is 23 times 19? Use the calculator.")
        print(f"assistant: {answer.content}")

        calls = await db.list_tool_calls([answer.id])
        for call in calls:
            print(f"LlmToolCall {call.toolCallId}: {call.name} {call.arguments} = {call.result}")
        for request in await db.list_requests(chat.id):
            print(
                f"LlmRequest {request.model}: status {request.statusCode}, "
                f"{request.duration} ms, {request.inputTokens}/{request.outputTokens} tokens"
            )
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
