"""nodellm-orm on a generated prisma-client-py client, fully typed.

Setup (normal network access): `pip install prisma nodellm-orm`, `nodellm-orm init` to write
the schema, `prisma generate` and `prisma migrate deploy` (or `nodellm-orm migrate`). Then:

    DATABASE_URL=postgresql://... OPENAI_API_KEY=... python examples/typed_prisma.py

The same `create_chat`/`load_chat` as `@node-llm/orm/prisma`: the client is the `db`, and
the delegates default to `llmchat`, `llmmessage`... (or name yours with `table_names`).
"""

from __future__ import annotations

import asyncio

from prisma import Prisma

from nodellm_orm import create_llm
from nodellm_orm.orm.records import MessageRecord
from nodellm_orm.prisma import Chat, TableNames, create_chat, load_chat


async def main() -> None:
    db = Prisma()
    await db.connect()
    try:
        llm = create_llm("openai", model="gpt-4o-mini")
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
            where={"chatId": chat.id}, order={"createdAt": "desc"}
        )
        role: str | None = latest.role if latest is not None else None
        print(f"{stored} messages stored, the last one by {role}")
    finally:
        await db.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
