"""nodellm-orm on a generated prisma-client-py client, fully typed.

Setup (normal network access): `pip install prisma nodellm-orm`, `nodellm-orm init` to write
the schema, `prisma generate` and `prisma migrate deploy` (or `nodellm-orm migrate`). Then:

    DATABASE_URL=postgresql://... python examples/typed_prisma.py

Uses OpenAI when OPENAI_API_KEY is set, else the offline FakeProvider (as the other examples).
The same `create_chat`/`load_chat` as `@node-llm/orm/prisma`: the client is the `db`, and
the delegates default to `llmchat`, `llmmessage`... (or name yours with `table_names`).
"""

from __future__ import annotations

import asyncio
import os

from prisma import Prisma

from nodellm_orm import LLM, MessageRecord, create_llm
from nodellm_orm.prisma import Chat, TableNames, create_chat, load_chat
from nodellm_orm.testing import FakeProvider


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai", model="gpt-4o-mini")
    return create_llm(FakeProvider(["Prisma is a typed database toolkit.", "Toolkit."]))


async def main() -> None:
    db = Prisma()
    await db.connect()
    llm = make_llm()
    try:
        chat: Chat = await create_chat(
            db,
            llm,
            instructions="Answer in one sentence.",
            metadata={"source": "typed_prisma example"},
            table_names=TableNames(chat="llmChat"),  # JS spelling works too
        )
        answer: MessageRecord = await chat.ask("What is Prisma?")
        print(answer.content, answer.inputTokens, answer.outputTokens)

        again = await load_chat(db, llm, chat.id)
        if again is not None:
            await again.ask("And in one word?")

        # The typed client stays available for your own queries on the same tables.
        stored: int = await db.llmmessage.count(where={"chatId": chat.id})
        latest = await db.llmmessage.find_first(
            # A turn's two rows share one createdAt; the id orders them, as the library does.
            where={"chatId": chat.id},
            order=[{"createdAt": "desc"}, {"id": "desc"}],
        )
        role: str | None = latest.role if latest is not None else None
        print(f"{stored} messages stored, the last one by {role}")
    finally:
        await db.disconnect()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
