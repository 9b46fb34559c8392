"""What the package's public names do for a user (the surface itself: tests/test_import.py)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

import nodellm_orm
from nodellm_orm import Price, Usage, create_chat, create_llm, register_price
from nodellm_orm.testing import FakeProvider
from tests.conftest import Database


async def test_a_registered_price_is_the_cost_of_the_request_rows(
    database: Database, fake: FakeProvider
) -> None:
    # A model id no other test prices: the registry lives for the process.
    model = f"my-finetune-{uuid.uuid4().hex[:8]}"
    llm = create_llm(provider=fake)
    usage = Usage(input_tokens=500_000, output_tokens=250_000)
    store = await database.store()

    fake.reply("Unpriced.", usage=usage)
    before = await create_chat(database.db, llm, model=model)
    await before.ask("Hi")
    assert [r.cost for r in await store.list_requests(before.id)] == [None]

    register_price(fake.name, model, Price(input=2.0, output=4.0))  # USD per 1M tokens
    fake.reply("Priced.", usage=usage)
    chat = await create_chat(database.db, llm, model=model)
    await chat.ask("Hi")
    (request,) = await store.list_requests(chat.id)
    assert (request.model, request.cost) == (model, pytest.approx(0.5 * 2.0 + 0.25 * 4.0))
    assert (await chat.stats()).cost == pytest.approx(2.0)


def test_the_readme_public_api_table_lists_exactly_the_surface() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Public API\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    listed = set(re.findall(r"`([A-Za-z_]+)`", "\n".join(rows)))
    assert listed == set(nodellm_orm.__all__)
    assert f"`__all__`, {len(nodellm_orm.__all__)} names" in section
