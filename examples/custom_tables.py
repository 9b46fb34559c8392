"""Custom table names and a custom column, as in @node-llm/orm's README.

    python examples/custom_tables.py

Your Prisma schema may name the models differently and add columns to the chat model:

    model AssistantChat {
      id        String   @id @default(uuid())
      userId    String?  // your own column
      ...the fields of LlmChat...
    }
    (AssistantMessage, AssistantToolCall, AssistantRequest, AssistantAgentSession likewise)

`table_names` says which tables to use; any extra keyword of create_chat is written to the
column of that name (an unknown one fails before anything is written). Here the tables are
created from the shipped migration, renamed; in a real project `prisma migrate dev` creates
them from your schema.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import inspect

from nodellm_orm import LLM, SqlStore, TableNames, connect, create_chat, create_llm
from nodellm_orm.migrations.runner import load_migrations
from nodellm_orm.testing import FakeProvider

NAMES = TableNames(
    chat="AssistantChat",
    message="AssistantMessage",
    tool_call="AssistantToolCall",
    request="AssistantRequest",
    agent_session="AssistantAgentSession",
)
DEFAULTS = {
    "chat": "LlmChat",
    "message": "LlmMessage",
    "tool_call": "LlmToolCall",
    "request": "LlmRequest",
    "agent_session": "LlmAgentSession",
}


async def create_custom_tables(db: SqlStore) -> None:
    """The shipped DDL with every table renamed, plus a userId column on the chat table."""
    async with db.engine.connect() as conn:
        exists = await conn.run_sync(lambda c: inspect(c).has_table(NAMES.chat or ""))
    if exists:
        return
    sql = load_migrations(db.dialect)[0].script.decode()
    # Longest names first, so "LlmChat" does not rewrite part of another name.
    for key, default in sorted(DEFAULTS.items(), key=lambda kv: -len(kv[1])):
        sql = sql.replace(f'"{default}', f'"{getattr(NAMES, key)}')
    statements = [s.strip() for s in sql.split(";")]
    async with db.engine.begin() as conn:
        for statement in statements:
            body = "\n".join(ln for ln in statement.splitlines() if not ln.startswith("--"))
            if body.strip() and "CREATE SCHEMA" not in body:
                await conn.exec_driver_sql(body)
        await conn.exec_driver_sql(f'ALTER TABLE "{NAMES.chat}" ADD COLUMN "userId" TEXT')


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    return create_llm(FakeProvider(["Hello Ada!"]))


async def main() -> None:
    db = await connect(os.environ.get("DATABASE_URL", "sqlite:///nodellm.db"))
    llm = make_llm()
    try:
        # Before the first use of the store: it caches which tables exist.
        await create_custom_tables(db)
        chat = await create_chat(db, llm, table_names=NAMES, userId="user-42")
        await chat.ask("Hi, I am Ada.")
        print(f"AssistantChat {chat.id}: userId={chat.record['userId']}")
        for row in await chat.messages():
            print(f"AssistantMessage {row.role}: {row.content}")

        try:
            await create_chat(db, llm, table_names=NAMES, teamId="t-1")
        except ValueError as exc:
            print(f"unknown column refused: {str(exc)[:60]}...")
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
