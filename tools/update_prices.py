"""Regenerate nodellm_orm/core/prices.json from the @node-llm/core npm package.

@node-llm/core ships dist/models/models.json, a snapshot of models.dev (MIT). This script keeps
what our cost rule needs - USD per 1M input, output and cached-input tokens - for the providers
we implement, and records which package version and data sync it came from.

    python tools/update_prices.py                    # npm pack the latest @node-llm/core
    python tools/update_prices.py --version 1.17.1   # a given version
    python tools/update_prices.py --source path/to/models.json|package.tgz|unpacked-dir

Choices, so that a regenerated table differs from the last one only where prices changed:
- Only entries whose metadata says they come from models.dev are used. The other entries are
  provider model listings whose prices are placeholders (e.g. 0.075/0.3 for any Gemini model).
- Only models that answer with text through a chat API: embeddings, and media generators billed
  per image/second (all-zero token prices), are left out.
- A (provider, id) listed twice keeps the entry with a cached-input price, else the first.
- A dated id whose price equals its base id's is dropped: `price_for` resolves it by stripping
  the date, with the same `strip_date_suffix` used here.
- A cached-input price of 0 on a paid model means "no cache discount" and is stored as null.
- Ollama is local: one "*" entry prices every model at 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from nodellm_orm.core.pricing import strip_date_suffix

PACKAGE = "@node-llm/core"
MODELS_PATH = "package/dist/models/models.json"
PROVIDERS = ("openai", "anthropic", "gemini", "openrouter", "deepseek")
OUTPUT = Path(__file__).resolve().parents[1] / "nodellm_orm" / "core" / "prices.json"
MEDIA = {"image", "video", "audio"}


def npm_pack(version: str | None, workdir: Path) -> Path:
    spec = f"{PACKAGE}@{version}" if version else PACKAGE
    out = subprocess.run(
        ["npm", "pack", spec, "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    return workdir / out.stdout.strip().splitlines()[-1]


def read_source(source: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The models list and the package version, from a tarball, an unpacked dir or the JSON."""
    if source.is_dir():
        pkg = source / "package.json"
        version = json.loads(pkg.read_text())["version"] if pkg.exists() else None
        return json.loads((source / "dist/models/models.json").read_text()), version
    if source.suffix in {".tgz", ".gz"}:
        with tarfile.open(source) as tar:
            models_file = tar.extractfile(MODELS_PATH)
            pkg_file = tar.extractfile("package/package.json")
            assert models_file and pkg_file, f"{source} is not an npm package"
            return json.load(models_file), json.load(pkg_file)["version"]
    return json.loads(source.read_text()), None


def published_date(version: str) -> str | None:
    """The registry's publish date of this version; None when npm cannot say."""
    try:
        out = subprocess.run(
            ["npm", "view", f"{PACKAGE}@{version}", "time", "--json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        stamp = json.loads(out.stdout).get(version)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return None
    return str(stamp)[:10] if stamp else None


def compact_price(model: dict[str, Any]) -> dict[str, float | None] | None:
    """{"input", "output", "cached_input"} for a chat model with token prices, else None."""
    if (model.get("metadata") or {}).get("source") != "models.dev":
        return None
    output_kinds = set((model.get("modalities") or {}).get("output") or [])
    if "text" not in output_kinds or "embeddings" in output_kinds:
        return None
    standard = ((model.get("pricing") or {}).get("text_tokens") or {}).get("standard") or {}
    if "input_per_million" not in standard or "output_per_million" not in standard:
        return None
    price: dict[str, float | None] = {
        "input": standard["input_per_million"],
        "output": standard["output_per_million"],
        "cached_input": standard.get("cached_input_per_million"),
    }
    if price["cached_input"] == 0 and price["input"]:
        # A free cache read on a paid model is how the source spells "no caching" (gpt-3.5).
        price["cached_input"] = None
    if price["input"] == 0 and price["output"] == 0 and output_kinds & MEDIA:
        # Zero token prices on a media generator mean "billed per image/second", not "free".
        return None
    return price


def build(models: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    table: dict[str, dict[str, dict[str, float | None]]] = {p: {} for p in PROVIDERS}
    for model in models:
        provider = model.get("provider")
        if provider not in table:
            continue
        price = compact_price(model)
        if price is None:
            continue
        model_id = str(model["id"]).lower()
        known = table[provider].get(model_id)
        if known is None or (known["cached_input"] is None and price["cached_input"] is not None):
            table[provider][model_id] = price

    for prices in table.values():
        for model_id in list(prices):
            base = strip_date_suffix(model_id)
            if base != model_id and prices.get(base) == prices[model_id]:
                del prices[model_id]

    table["ollama"] = {"*": {"input": 0, "output": 0, "cached_input": None}}
    return {p: dict(sorted(m.items())) for p, m in table.items()}


def render(document: dict[str, Any]) -> str:
    """JSON with one model per line: small, and a price change is a one-line diff."""
    lines = ["{", f'  "source": {json.dumps(document["source"], sort_keys=True)},', '  "models": {']
    providers = list(document["models"].items())
    for i, (provider, models) in enumerate(providers):
        lines.append(f"    {json.dumps(provider)}: {{")
        entries = list(models.items())
        for j, (model_id, price) in enumerate(entries):
            comma = "," if j < len(entries) - 1 else ""
            lines.append(f"      {json.dumps(model_id)}: {json.dumps(price)}{comma}")
        lines.append("    }" + ("," if i < len(providers) - 1 else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="models.json, npm tarball or unpacked dir")
    parser.add_argument("--version", help=f"{PACKAGE} version to npm pack (default: latest)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or npm_pack(args.version, Path(tmp))
        models, version = read_source(source)

    synced = [
        str(m["metadata"]["last_synced"])
        for m in models
        if (m.get("metadata") or {}).get("last_synced")
    ]
    source_info: dict[str, Any] = {
        "package": PACKAGE,
        "version": version,
        "published": published_date(version) if version else None,
        "file": "dist/models/models.json",
        "data": "models.dev (MIT)",
        "data_synced": max(synced)[:10] if synced else None,
        "generated": dt.date.today().isoformat(),
        "unit": "USD per 1M tokens",
    }
    table = build(models)
    args.output.write_text(render({"source": source_info, "models": table}), encoding="utf-8")
    counts = ", ".join(f"{p} {len(m)}" for p, m in table.items())
    print(f"wrote {args.output} from {PACKAGE} {version}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
