"""`demo`: a persisted chat with a tool call and a stream, offline unless a provider is named."""

from __future__ import annotations

import json
import os
from typing import Any

import click
from pydantic import BaseModel

from ..core.llm import LLM, create_llm, provider_class, provider_names
from ..core.redaction import mask_urls
from ..core.tools import Tool
from ..orm.chat import create_chat, load_chat
from ._common import check_url, cost, open_store, plural, print_rows, run_async, self_command

DEMO_URL = "sqlite:///nodellm-demo.db"


class Weather(Tool):
    """The demo's tool: made-up but deterministic weather, so offline runs are reproducible."""

    name = "get_weather"
    description = "Current weather for a city (temperature in Celsius and conditions)."

    class Params(BaseModel):
        city: str

    def execute(self, params: Any) -> dict[str, Any]:
        city = str(params.city)
        temperature = 12 + sum(map(ord, city.lower())) % 15
        conditions = ("sunny", "cloudy", "light rain", "windy")[len(city) % 4]
        return {"city": city, "temperature_c": temperature, "conditions": conditions}


def _demo_llm(provider: str | None, model: str | None) -> tuple[LLM, str | None, str]:
    """The LLM for the demo, its model, and a sentence saying which one and why."""
    from ..testing import FakeProvider  # also registers the "fake" provider name

    name = (provider or os.environ.get("NODELLM_PROVIDER") or "fake").lower()
    if name not in provider_names():
        raise click.ClickException(
            f"unknown provider {name!r}; known providers: {', '.join(provider_names())}"
        )
    if name != "fake":
        key_env = provider_class(name).api_key_env
        if key_env is None or os.environ.get(key_env):
            return create_llm(name), model, f"provider {name} (real API calls)"
        note = f"{key_env} is not set, so the demo runs offline with the FakeProvider"
    else:
        note = "offline FakeProvider (set --provider openai and OPENAI_API_KEY for a real model)"
    fake = FakeProvider(chunk_size=6, latency=0.02)
    weather = Weather().execute(Weather.Params(city="Paris"))
    fake.reply_tool_call("get_weather", {"city": "Paris"})
    fake.reply(
        f"It is {weather['temperature_c']} °C and {weather['conditions']} in Paris right now."
    )
    fake.reply(
        "Take a walk along the Seine to the Musée d'Orsay, then have coffee in the "
        "Latin Quarter before sunset."
    )
    return create_llm(fake), model, note


@click.command()
@click.option("--url", default=DEMO_URL, show_default=True, help="Database URL.")
@click.option(
    "--provider",
    default=None,
    help="LLM provider (default $NODELLM_PROVIDER, else the offline fake). A provider "
    "whose API key variable is unset falls back to the fake.",
)
@click.option("--model", default=None, help="Model id (default: the provider's).")
def demo(url: str, provider: str | None, model: str | None) -> None:
    """Run a persisted chat (a tool call, then a stream) and print what was stored."""
    check_url(url)
    llm, model, note = _demo_llm(provider, model)

    async def run() -> None:
        click.echo(f"database: {mask_urls(url)}")
        click.echo(f"llm: {note}")
        store = await open_store(url, migrate=True, must_exist=False)
        try:
            chat = await create_chat(
                store,
                llm,
                model=model,
                instructions="You are a concise travel assistant. Use tools for live data.",
                metadata={"source": "nodellm-orm demo"},
            )
            chat.with_tool(Weather)
            click.echo(f"\ncreated chat {chat.id} ({chat.record.provider}/{chat.record.model})")

            question = "What's the weather in Paris right now?"
            click.echo(f"\nuser: {question}")
            chat.on_tool_call_start(
                lambda call: click.echo(f"  [tool call] {call.name}({json.dumps(call.arguments)})")
            )
            answer = await chat.ask(question)
            click.echo(f"assistant: {answer.content}")

            question = "Given that weather, what should I do this afternoon? Two sentences."
            click.echo(f"\nuser: {question}")
            click.echo("assistant (streaming): ", nl=False)
            async with chat.ask_stream(question) as stream:
                async for chunk in stream:
                    click.echo(str(chunk), nl=False)
            click.echo()

            reloaded = await load_chat(store, llm, chat.id)
            if reloaded is None:  # pragma: no cover - it was just written
                raise click.ClickException(f"chat {chat.id} vanished")
            history = await reloaded.messages()
            click.echo(f"\nreloaded with load_chat(): {plural(len(history), 'message')} stored\n")
            await print_rows(store, chat.id)
            stats = await reloaded.stats()
            click.echo(
                f"\nstats(): input {stats.input_tokens} + output {stats.output_tokens} = "
                f"{stats.total_tokens} tokens, cost {cost(stats.cost)}"
            )
            click.echo(f"\nexplore: {self_command()} chats show {chat.id} --url {mask_urls(url)}")
        finally:
            await store.close()
            await llm.aclose()

    run_async(run())
