"""`db` may be the user's own SQLAlchemy AsyncEngine: the ORM works on it and leaves it open."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from nodellm_orm import create_chat, create_llm, load_chat
from nodellm_orm.migrations.runner import migrate
from nodellm_orm.testing import FakeProvider


async def test_chat_on_a_user_supplied_engine(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    await migrate(engine)
    llm = create_llm(provider=FakeProvider(["Hello from the engine."]))
    chat = await create_chat(engine, llm, instructions="Be kind.")
    answer = await chat.ask("Hi")
    assert answer.content == "Hello from the engine."

    reloaded = await load_chat(engine, llm, chat.id)
    assert reloaded is not None
    assert [r.role for r in await reloaded.messages()] == ["user", "assistant"]
    # The engine is still the user's to use (and to dispose).
    async with engine.connect() as conn:
        count = await conn.exec_driver_sql('SELECT count(*) FROM "LlmMessage"')
        assert count.scalar() == 2
    await engine.dispose()
