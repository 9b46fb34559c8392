"""Agent sessions: start a conversation with an agent, resume it later by session id.

    python examples/agent_session_resume.py

"Code wins": the Agent class supplies model, instructions and tools each time; the database
supplies the history and the session metadata, which the agent receives as its inputs.
Loading a session with another agent class raises AgentClassMismatchError.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pydantic import BaseModel

from nodellm_orm import (
    LLM,
    Agent,
    Tool,
    connect,
    create_agent_session,
    create_llm,
    load_agent_session,
)
from nodellm_orm.testing import FakeProvider

ORDERS = {"A-1001": "shipped on Monday", "A-1002": "waiting for stock"}


class LookupOrder(Tool):
    name = "lookup_order"
    description = "Status of an order by its number."

    class Params(BaseModel):
        order_id: str

    def execute(self, params: Any) -> str:
        return ORDERS.get(params.order_id, "unknown order")


class SupportAgent(Agent):
    instructions = lambda inputs: (  # noqa: E731 - evaluated at each turn with the inputs
        f"You are a support agent for {inputs.get('customer', 'a customer')} "
        f"on the {inputs.get('plan', 'free')} plan. Be brief."
    )
    tools = [LookupOrder]


def make_llm(*replies: str, tool_call: dict[str, Any] | None = None) -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    fake = FakeProvider()
    if tool_call is not None:
        fake.reply_tool_call("lookup_order", tool_call)
    for reply in replies:
        fake.reply(reply)
    return create_llm(fake)


async def main() -> None:
    url = os.environ.get("DATABASE_URL", "sqlite:///nodellm.db")

    # Monday: a customer opens a conversation.
    db = await connect(url)
    llm = make_llm("Order A-1001 shipped on Monday.", tool_call={"order_id": "A-1001"})
    session = await create_agent_session(
        db, llm, SupportAgent, metadata={"customer": "Ada", "plan": "pro"}
    )
    answer = await session.ask("Where is my order A-1001?")
    print(f"[{session.id}] {answer.content}")
    session_id = session.id
    await db.close()
    await llm.aclose()

    # Tuesday, another process: only the session id survived.
    db = await connect(url)
    llm = make_llm("You asked about order A-1001, which shipped on Monday.")
    resumed = await load_agent_session(db, llm, SupportAgent, session_id)
    assert resumed is not None
    print(f"resumed {resumed.agent_class} for {resumed.metadata['customer']}")
    await resumed.update_metadata({"plan": "enterprise"})  # the agent's inputs from now on
    answer = await resumed.ask("What did I ask you yesterday?")
    print(f"[{resumed.id}] {answer.content}")
    print(f"{len(await resumed.messages())} messages stored; metadata {resumed.metadata}")
    await db.close()
    await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
