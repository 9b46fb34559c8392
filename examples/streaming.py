"""Streaming: print tokens as they arrive; the answer is stored once the stream ends.

    python examples/streaming.py

Nothing is written between the first and the last chunk. A stream abandoned part-way keeps
the text received so far, marked interrupted in the row's contentRaw.
"""

from __future__ import annotations

import asyncio
import json
import os

from nodellm_orm import LLM, connect, create_chat, create_llm
from nodellm_orm.testing import FakeProvider


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    fake = FakeProvider(chunk_size=5)
    fake.reply("Roses are red, databases are too; every token you stream is persisted for you.")
    fake.reply("Once upon a time there was a very long story that nobody finished reading.")
    return create_llm(fake)


async def main() -> None:
    db = await connect(os.environ.get("DATABASE_URL", "sqlite:///nodellm.db"))
    llm = make_llm()
    try:
        chat = await create_chat(db, llm)

        # `async with` closes the stream (and so writes the row) as soon as the block ends.
        async with chat.ask_stream("Write a two-line poem about databases.") as stream:
            async for chunk in stream:
                print(chunk, end="", flush=True)
        print()
        assert stream.message is not None
        print(f"stored as {stream.message.id} ({stream.message.outputTokens} output tokens)")

        # Stop reading after three chunks: the partial answer is kept and marked.
        async with chat.ask_stream("Tell me a long story.") as stream:
            received = 0
            async for _chunk in stream:
                received += 1
                if received == 3:
                    break
        last = (await chat.messages())[-1]
        raw = json.loads(last.contentRaw or "{}")
        print(f"abandoned stream kept: {last.content!r} (interrupted={raw.get('interrupted')})")
    finally:
        await db.close()
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
