"""Model prices (USD per 1M tokens) and the rule that turns token counts into a cost.

The table is `prices.json`, packaged next to this module and regenerated from the
`@node-llm/core` npm package's models.json (itself from models.dev, MIT) by
`tools/update_prices.py`. It is read lazily, once, on the first lookup, so importing the
library stays cheap.

Lookup order for `price_for(provider, model)`:
1. a price registered at runtime with `register_price`;
2. the exact id (case-insensitive) in the provider's table;
3. the id without a date suffix ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini",
   "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5") - the generator drops dated ids whose
   price equals their base id's, so this step is what prices them;
4. for OpenRouter ("vendor/model[:variant]"): the id without its routing variant, then the
   upstream provider's price for the same model;
5. the provider's "*" entry (Ollama runs locally: every model costs 0).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

from nodellm_orm.core.messages import Usage

__all__ = [
    "Price",
    "apply_cost",
    "price_for",
    "price_table_source",
    "register_price",
    "strip_date_suffix",
]

_PER_TOKEN = 1_000_000

# Trailing release dates as providers spell them: -2024-07-18, -20250929, and OpenAI's older
# -MMDD (gpt-3.5-turbo-0125, gpt-4-0613). The month must be 01-12 so that version numbers such
# as "-2507" in other vendors' ids are not mistaken for dates more often than unavoidable.
_DATE_SUFFIX = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|20\d{2}(?:0[1-9]|1[0-2])\d{2}|(?:0[1-9]|1[0-2])\d{2})$"
)

# OpenRouter vendor prefixes that correspond to one of our direct providers.
_OPENROUTER_UPSTREAM = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "deepseek": "deepseek",
}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens. `cached_input` is None when the provider has no cache discount."""

    input: float
    output: float
    cached_input: float | None = None


_FREE = Price(input=0.0, output=0.0, cached_input=None)

_lock = threading.Lock()
_table: dict[str, dict[str, Price]] | None = None
_source: dict[str, Any] = {}
_overrides: dict[tuple[str, str], Price] = {}


def strip_date_suffix(model: str) -> str:
    """The id without a trailing release date; unchanged when it has none."""
    return _DATE_SUFFIX.sub("", model)


def _parse_price(raw: dict[str, Any]) -> Price:
    cached = raw.get("cached_input")
    return Price(
        input=float(raw["input"]),
        output=float(raw["output"]),
        cached_input=None if cached is None else float(cached),
    )


def _load() -> dict[str, dict[str, Price]]:
    global _table, _source
    if _table is not None:
        return _table
    with _lock:
        if _table is None:
            text = resources.files("nodellm_orm.core").joinpath("prices.json").read_text("utf-8")
            data = json.loads(text)
            _source = dict(data.get("source", {}))
            _table = {
                provider.lower(): {model.lower(): _parse_price(p) for model, p in models.items()}
                for provider, models in data["models"].items()
            }
    return _table


def price_table_source() -> dict[str, Any]:
    """Where the packaged prices come from: package, version, dates."""
    _load()
    return dict(_source)


def register_price(provider: str, model: str, price: Price) -> None:
    """Price a model the packaged table does not know (or override it) for this process."""
    _overrides[(provider.lower(), model.lower())] = price


def _lookup(table: dict[str, dict[str, Price]], provider: str, model: str) -> Price | None:
    override = _overrides.get((provider, model))
    if override is not None:
        return override
    models = table.get(provider)
    if models is None:
        return None
    found = models.get(model)
    if found is not None:
        return found
    base = strip_date_suffix(model)
    if base != model:
        found = _overrides.get((provider, base)) or models.get(base)
    return found


def price_for(provider: str, model: str) -> Price | None:
    """The price of `model` as served by `provider`, or None when it is not known."""
    table = _load()
    provider = provider.lower()
    model = model.strip().lower()
    if provider == "gemini":
        # Gemini answers with bare ids but users often copy the REST resource name.
        model = model.removeprefix("models/")

    found = _lookup(table, provider, model)
    if found is not None:
        return found

    if provider == "openrouter":
        found = _openrouter_fallback(table, model)
        if found is not None:
            return found

    default = table.get(provider, {}).get("*")
    return default


def _openrouter_fallback(table: dict[str, dict[str, Price]], model: str) -> Price | None:
    name, _, variant = model.partition(":")
    if variant == "free":
        # OpenRouter's ":free" variants are billed at zero by definition.
        return _FREE
    if variant:
        found = _lookup(table, "openrouter", name)
        if found is not None:
            return found
    vendor, slash, upstream_model = name.partition("/")
    upstream = _OPENROUTER_UPSTREAM.get(vendor) if slash else None
    if upstream is None:
        return None
    found = _lookup(table, upstream, upstream_model)
    if found is None and upstream == "anthropic":
        # OpenRouter spells Anthropic versions with dots (claude-sonnet-4.5), Anthropic with
        # dashes (claude-sonnet-4-5).
        found = _lookup(table, upstream, upstream_model.replace(".", "-"))
    return found


def apply_cost(usage: Usage, provider: str, model: str) -> Usage:
    """`usage` with cost, input_cost and output_cost filled in from the price table.

    A cost the provider reported (OpenRouter's billed amount) wins and is returned as is.
    `input_tokens` includes the cached ones: those are billed at the cached price (the input
    price when the model has no cache discount), the rest at the input price. `output_tokens`
    already includes reasoning tokens, all billed at the output price. An unknown model leaves
    the usage unchanged, so its cost stays None rather than a misleading 0.
    """
    if usage.cost is not None:
        return usage
    price = price_for(provider, model)
    if price is None:
        return usage
    cached = min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0))
    uncached = max(usage.input_tokens, 0) - cached
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    input_cost = (uncached * price.input + cached * cached_rate) / _PER_TOKEN
    output_cost = max(usage.output_tokens, 0) * price.output / _PER_TOKEN
    return usage.model_copy(
        update={
            "input_cost": input_cost,
            "output_cost": output_cost,
            "cost": input_cost + output_cost,
        }
    )
