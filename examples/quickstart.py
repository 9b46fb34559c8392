# The README's Quickstart, verbatim (tests/test_examples.py checks that they stay equal).
import asyncio
import os

from nodellm_orm import LLM, connect, create_chat, create_llm, load_chat
from nodellm_orm.testing import FakeProvider


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")  # a real model
    return create_llm(FakeProvider(["Paris.", "About 2.1 million."]))  # offline, scripted


async def main() -> None:
    url = os.environ.get("DATABASE_URL", "sqlite:///nodellm.db")
    db = await connect(url)  # creates and migrates the database
    llm = make_llm()
    try:
        chat = await create_chat(db, llm, model="gpt-4o-mini", instructions="Be brief.")
        answer = await chat.ask("What is the capital of France?")
        print(answer.content, answer.inputTokens, answer.outputTokens)  # the stored row

        # Later, elsewhere: the history comes back from the database.
        same = await load_chat(db, llm, chat.id)
        if same is None:  # no chat with that id
            raise SystemExit(f"chat {chat.id} not found")
        await same.ask("And its population?")
        for row in await same.messages():
            print(row.role, row.content)
        print(await same.stats())  # tokens and cost summed over the request rows
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
