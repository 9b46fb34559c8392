"""Quickstart: persist a chat, ask twice, reload it, read what was stored.

    python examples/quickstart.py

Uses OpenAI when OPENAI_API_KEY is set, else the offline FakeProvider. The database is
$DATABASE_URL (default sqlite:///nodellm.db), migrated on connect.
"""

from __future__ import annotations

import asyncio
import os

from nodellm_orm import LLM, connect, create_chat, create_llm, load_chat
from nodellm_orm.testing import FakeProvider


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    return create_llm(FakeProvider(["Paris.", "About 2.1 million people."]))


async def main() -> None:
    db = await connect(os.environ.get("DATABASE_URL", "sqlite:///nodellm.db"))
    llm = make_llm()
    try:
        chat = await create_chat(
            db, llm, instructions="Answer in one short sentence.", metadata={"user": "ada"}
        )
        answer = await chat.ask("What is the capital of France?")
        print(f"assistant: {answer.content}  ({answer.inputTokens} in / {answer.outputTokens} out)")

        # Another object on the same chat id (another request, another process...): the
        # history comes from the database, so the model knows what "there" means.
        same = await load_chat(db, llm, chat.id)
        assert same is not None
        await same.ask("How many people live there?")

        for row in await same.messages():
            print(f"{row.role:>9}: {row.content}")
        usage = await same.stats()
        print(f"stats: {usage.input_tokens} input + {usage.output_tokens} output tokens")
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
