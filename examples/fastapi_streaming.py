"""A FastAPI endpoint that streams a persisted chat as server-sent events.

The Python counterpart of the Next.js route in @node-llm/orm's README: POST a message to a
chat, receive the answer token by token as SSE; the user message is stored before the model
is called and the answer once the stream ends. If the client disconnects mid-answer, the
partial text is kept, marked interrupted.

FastAPI is not a dependency of nodellm-orm:

    pip install fastapi uvicorn
    python examples/fastapi_streaming.py            # one request in-process, printed
    python examples/fastapi_streaming.py --serve    # http://127.0.0.1:8000
    curl -N -X POST localhost:8000/api/chat -H 'content-type: application/json' \\
         -d '{"message": "Hello"}'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

try:
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import StreamingResponse
except ImportError:
    sys.exit("This example needs FastAPI, which nodellm-orm does not install: pip install fastapi")

import httpx
from pydantic import BaseModel

from nodellm_orm import LLM, connect, create_chat, create_llm, load_chat
from nodellm_orm.stores.sql import SqlStore
from nodellm_orm.testing import FakeProvider


def make_llm() -> LLM:
    if os.environ.get("OPENAI_API_KEY"):
        return create_llm("openai")
    return create_llm(FakeProvider(chunk_size=4))  # echoes the question, in small chunks


class State:
    db: SqlStore
    llm: LLM


state = State()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # One store (one connection pool) and one LLM client for the whole app.
    state.db = await connect(os.environ.get("DATABASE_URL", "sqlite:///nodellm.db"))
    state.llm = make_llm()
    yield
    await state.db.close()
    await state.llm.aclose()


app = FastAPI(lifespan=lifespan)


class ChatIn(BaseModel):
    message: str
    chat_id: str | None = None


def sse(data: dict[str, object]) -> str:
    return f"data: {json.dumps(data)}\n\n"


@app.post("/api/chat")
async def chat_endpoint(body: ChatIn) -> StreamingResponse:
    if body.chat_id is None:
        chat = await create_chat(state.db, state.llm)
    else:
        found = await load_chat(state.db, state.llm, body.chat_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no chat {body.chat_id}")
        chat = found

    async def events() -> AsyncIterator[str]:
        yield sse({"chatId": chat.id})
        # When the client goes away the server cancels this generator; `async with` then
        # closes the stream, which stores the partial answer marked interrupted.
        async with chat.ask_stream(body.message) as stream:
            async for chunk in stream:
                if chunk.content:
                    yield sse({"content": chunk.content})
        assert stream.message is not None
        yield sse({"done": True, "messageId": stream.message.id})

    return StreamingResponse(events(), media_type="text/event-stream")


async def demo() -> None:
    """Drive the app in-process (no server, no network) and print the events."""
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            chat_id = None
            for message in ("Hello there", "Tell me more"):
                payload = {"message": message, "chat_id": chat_id}
                async with client.stream("POST", "/api/chat", json=payload) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[len("data: ") :])
                            chat_id = event.get("chatId", chat_id)
                            print(event)
            rows = await state.db.list_messages(str(chat_id))
            print(f"chat {chat_id}: {len(rows)} messages stored")


if __name__ == "__main__":
    if "--serve" in sys.argv:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=8000)
    else:
        asyncio.run(demo())
