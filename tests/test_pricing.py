"""The packaged price table and the cost rule.

Expected figures are read from the packaged prices.json itself, so the tests check the rule and
the lookups, and stay true when the table is regenerated with new prices.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nodellm_orm.core import pricing
from nodellm_orm.core.messages import Usage
from nodellm_orm.core.pricing import Price, apply_cost, price_for, register_price

TABLE: dict[str, Any] = json.loads(
    resources.files("nodellm_orm.core").joinpath("prices.json").read_text("utf-8")
)
MODELS: dict[str, dict[str, dict[str, float | None]]] = TABLE["models"]


def as_price(raw: dict[str, float | None]) -> Price:
    assert raw["input"] is not None and raw["output"] is not None
    return Price(raw["input"], raw["output"], raw["cached_input"])


@pytest.fixture(autouse=True)
def no_registered_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "_overrides", {})


def test_table_covers_every_provider_and_names_its_source() -> None:
    for provider in ("openai", "anthropic", "gemini", "openrouter", "deepseek"):
        assert len(MODELS[provider]) >= 3, provider
    assert MODELS["ollama"]["*"] == {"input": 0, "output": 0, "cached_input": None}
    source = pricing.price_table_source()
    assert source["package"] == "@node-llm/core"
    assert source["version"] and source["data_synced"]


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-5"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-flash"),
        ("gemini", "gemini-2.5-pro"),
        ("deepseek", "deepseek-v4-pro"),
        ("openrouter", "openai/gpt-4o-mini"),
    ],
)
def test_well_known_models_are_priced(provider: str, model: str) -> None:
    price = price_for(provider, model)
    assert price is not None
    assert price == as_price(MODELS[provider][model])
    assert price.input > 0 and price.output > 0


def test_every_table_entry_is_found_by_its_exact_id() -> None:
    for provider, models in MODELS.items():
        for model, raw in models.items():
            if model != "*":
                assert price_for(provider, model) == as_price(raw), (provider, model)


def test_lookup_ignores_case() -> None:
    assert price_for("OpenAI", "GPT-4o-Mini") == as_price(MODELS["openai"]["gpt-4o-mini"])


def test_cached_tokens_are_billed_at_the_cached_price_and_the_rest_at_the_input_price() -> None:
    raw = MODELS["openai"]["gpt-4o-mini"]
    assert raw["cached_input"] is not None and raw["input"] is not None
    assert raw["output"] is not None
    usage = Usage(
        input_tokens=10_000, cached_tokens=4_000, output_tokens=2_000, reasoning_tokens=500
    )

    priced = apply_cost(usage, "openai", "gpt-4o-mini")

    expected_input = (6_000 * raw["input"] + 4_000 * raw["cached_input"]) / 1e6
    # Reasoning tokens are part of output_tokens: they are not billed a second time.
    expected_output = 2_000 * raw["output"] / 1e6
    assert priced.input_cost == pytest.approx(expected_input)
    assert priced.output_cost == pytest.approx(expected_output)
    assert priced.cost == pytest.approx(expected_input + expected_output)
    assert priced.input_tokens == 10_000 and priced.output_tokens == 2_000
    # The discount is real: the same tokens uncached cost more.
    uncached = apply_cost(Usage(input_tokens=10_000, output_tokens=2_000), "openai", "gpt-4o-mini")
    assert uncached.cost is not None and priced.cost is not None
    assert uncached.cost > priced.cost


def test_cached_tokens_cost_the_input_price_when_the_model_has_no_cache_discount() -> None:
    provider, model, raw = next(
        (p, m, r)
        for p, models in MODELS.items()
        for m, r in models.items()
        if r["cached_input"] is None and r["input"]
    )
    assert raw["input"] is not None and raw["output"] is not None
    priced = apply_cost(
        Usage(input_tokens=1_000, cached_tokens=600, output_tokens=10), provider, model
    )
    assert priced.input_cost == pytest.approx(1_000 * raw["input"] / 1e6)
    assert priced.cost == pytest.approx((1_000 * raw["input"] + 10 * raw["output"]) / 1e6)


def test_a_cost_given_by_the_provider_wins() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cost=0.0042)
    priced = apply_cost(usage, "openrouter", "openai/gpt-4o-mini")
    assert priced.cost == 0.0042
    assert priced.input_cost is None and priced.output_cost is None


def test_apply_cost_does_not_modify_its_argument() -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    apply_cost(usage, "openai", "gpt-4o-mini")
    assert usage.cost is None


@pytest.mark.parametrize(
    ("provider", "dated", "base"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("openai", "gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gemini", "gemini-2.5-flash-2099-01-31", "gemini-2.5-flash"),
    ],
)
def test_date_suffixed_ids_take_their_base_price(provider: str, dated: str, base: str) -> None:
    assert price_for(provider, dated) == as_price(MODELS[provider][base])
    usage = apply_cost(Usage(input_tokens=1_000, output_tokens=1_000), provider, dated)
    assert (
        usage.cost
        == apply_cost(Usage(input_tokens=1_000, output_tokens=1_000), provider, base).cost
    )


def test_a_dated_id_with_its_own_price_keeps_it() -> None:
    differing = [
        (provider, model)
        for provider, models in MODELS.items()
        for model, raw in models.items()
        if pricing.strip_date_suffix(model) != model
        and pricing.strip_date_suffix(model) in models
        and models[pricing.strip_date_suffix(model)] != raw
    ]
    assert differing, "the table should keep dated ids whose price differs from their base"
    for provider, model in differing:
        assert price_for(provider, model) == as_price(MODELS[provider][model])


def test_openrouter_falls_back_to_the_upstream_provider() -> None:
    missing = [m for m in MODELS["openai"] if f"openai/{m}" not in MODELS["openrouter"]]
    assert missing
    model = missing[0]
    assert price_for("openrouter", f"openai/{model}") == as_price(MODELS["openai"][model])
    # OpenRouter writes Anthropic versions with dots, Anthropic with dashes.
    anthropic_model = next(m for m in MODELS["anthropic"] if "-4-" in m)
    dotted = "anthropic/" + anthropic_model.replace("-4-", "-4.")
    expected = MODELS["openrouter"].get(dotted) or MODELS["anthropic"][anthropic_model]
    assert price_for("openrouter", dotted) == as_price(expected)
    assert price_for("openrouter", f"anthropic/{anthropic_model}-20990101") == as_price(
        MODELS["anthropic"][anthropic_model]
    )
    assert price_for("openrouter", "google/gemini-2.5-flash") is not None


def test_openrouter_routing_variants() -> None:
    assert price_for("openrouter", "openai/gpt-4o-mini:nitro") == as_price(
        MODELS["openrouter"]["openai/gpt-4o-mini"]
    )
    free = price_for("openrouter", "someone/some-model:free")
    assert free == Price(0.0, 0.0, None)


def test_unknown_model_leaves_usage_unpriced() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    for provider, model in [
        ("openai", "no-such-model"),
        ("nosuchprovider", "gpt-4o-mini"),
        ("openrouter", "unknownvendor/model-x"),
        ("fake", "fake-model"),
    ]:
        assert price_for(provider, model) is None
        priced = apply_cost(usage, provider, model)
        assert priced.cost is None and priced.input_cost is None and priced.output_cost is None


def test_ollama_is_local_and_free() -> None:
    priced = apply_cost(Usage(input_tokens=5_000, output_tokens=5_000), "ollama", "llama3.2:3b")
    assert priced.cost == 0.0


def test_registered_price_prices_an_unknown_model_and_overrides_the_table() -> None:
    register_price("openai", "my-finetune", Price(input=2.0, output=4.0))
    priced = apply_cost(Usage(input_tokens=500_000, output_tokens=250_000), "openai", "my-finetune")
    assert priced.cost == pytest.approx(2.0)
    register_price("openai", "gpt-4o-mini", Price(input=1.0, output=1.0))
    assert price_for("openai", "gpt-4o-mini-2024-07-18") == Price(1.0, 1.0)


def _load_generator() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tools" / "update_prices.py"
    spec = importlib.util.spec_from_file_location("update_prices", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry(
    provider: str, model_id: str, prices: dict[str, float], source: str | None = "models.dev"
) -> Any:
    return {
        "id": model_id,
        "provider": provider,
        "modalities": {"input": ["text"], "output": ["text"]},
        "pricing": {"text_tokens": {"standard": prices}},
        "metadata": {"source": source} if source else {"object": "model"},
    }


def test_generator_keeps_curated_prices_and_drops_redundant_dated_ids() -> None:
    gen = _load_generator()
    base = {"input_per_million": 1.0, "output_per_million": 2.0}
    table = gen.build(
        [
            _entry("gemini", "g-1", {"input_per_million": 0.075, "output_per_million": 0.3}, None),
            _entry("gemini", "g-1", base),
            _entry("gemini", "g-1", {**base, "cached_input_per_million": 0.1}),
            _entry("openai", "m", {**base, "cached_input_per_million": 0.5}),
            _entry("openai", "m-2024-07-18", {**base, "cached_input_per_million": 0.5}),
            _entry("openai", "m-2023-01-01", {"input_per_million": 9.0, "output_per_million": 9.0}),
            _entry("openai", "legacy", {**base, "cached_input_per_million": 0}),
            _entry("mistral", "not-ours", base),
            {
                **_entry("openai", "emb", {"input_per_million": 0.1, "output_per_million": 0}),
                "modalities": {"input": ["text"], "output": ["text", "embeddings"]},
            },
        ]
    )
    assert table["gemini"] == {"g-1": {"input": 1.0, "output": 2.0, "cached_input": 0.1}}
    assert set(table["openai"]) == {"m", "m-2023-01-01", "legacy"}
    assert table["openai"]["legacy"]["cached_input"] is None
    assert "mistral" not in table
    assert table["ollama"] == {"*": {"input": 0, "output": 0, "cached_input": None}}
    rendered = json.loads(gen.render({"source": {"version": "x"}, "models": table}))
    assert rendered["models"] == table
