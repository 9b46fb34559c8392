"""Custom table names and a custom column, as in @node-llm/orm's README.

    python examples/custom_tables.py

Your Prisma schema may name the models differently and add columns to the chat model
(`nodellm-orm init --table-names chat=AssistantChat,message=AssistantMessage,...` writes
such a schema):

    model AssistantChat {
      id        String   @id @default(uuid())
      userId    String?  // your own column
      ...the fields of LlmChat...
    }
    (AssistantMessage, AssistantToolCall, AssistantRequest, AssistantAgentSession likewise)

`connect(url, table_names=...)` creates (or checks) those tables; pass the same names to
create_chat / load_chat. A custom column is yours to add, in a migration of your own (here an
ALTER TABLE; in a Prisma project `prisma migrate dev` writes it from your schema). Options
that are not chat options are written to the column of that name; an unknown one fails
before anything is written.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import inspect

from nodellm_orm import LLM, TableNames, connect, create_chat, create_llm
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider

NAMES = TableNames(
    chat="AssistantChat",
    message="AssistantMessage",
    tool_call="AssistantToolCall",
    request="AssistantRequest",
    agent_session="AssistantAgentSession",
)


async def add_user_column(db: SqlStore) -> None:
    """Your own migration: a userId column on the chat table, once."""
    async with db.engine.begin() as conn:
        columns = await conn.run_sync(lambda c: inspect(c).get_columns(NAMES.chat or ""))
        if all(column["name"] != "userId" for column in columns):
            await conn.exec_driver_sql(f'ALTER TABLE "{NAMES.chat}" ADD COLUMN "userId" TEXT')


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    return create_llm(FakeProvider(["Hello Ada!"]))


async def main() -> None:
    url = os.environ.get("DATABASE_URL", "sqlite:///nodellm.db")
    # Creates the five tables under these names (or checks them when they exist).
    db = await connect(url, table_names=NAMES)
    llm = make_llm()
    try:
        # Before the first use of the store: it caches the columns it finds.
        await add_user_column(db)
        chat = await create_chat(db, llm, {"userId": "user-42"}, NAMES)
        await chat.ask("Hi, I am Ada.")
        print(f"AssistantChat {chat.id}: userId={chat.record['userId']}")
        for row in await chat.messages():
            print(f"AssistantMessage {row.role}: {row.content}")

        try:
            await create_chat(db, llm, {"teamId": "t-1"}, NAMES)
        except ValueError as exc:
            print(f"unknown column refused: {str(exc)[:60]}...")
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
