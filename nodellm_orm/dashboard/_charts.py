"""Plotly figures (plain JSON: data + layout) for the overview, from its grouped rows."""

from __future__ import annotations

from typing import Any

from ._queries import Overview

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
    "height": 280,
    "legend": {"orientation": "h", "y": -0.2},
    "xaxis": {"type": "date"},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {**_LAYOUT, "title": {"text": title, "font": {"size": 14}}, **extra}


def overview_charts(o: Overview) -> dict[str, Any]:
    """Requests and cost per provider/model, tokens by kind, error rate: over the buckets."""
    buckets = sorted(
        {row["bucket"] for row in o.series} | {r["bucket"] for r in o.reasoning_series}
    )
    index = {b: i for i, b in enumerate(buckets)}
    per_model: dict[str, dict[str, list[float]]] = {}
    tokens = {"input": [0.0] * len(buckets), "output": [0.0] * len(buckets)}
    reasoning = [0.0] * len(buckets)
    requests = [0.0] * len(buckets)
    errors = [0.0] * len(buckets)
    for row in o.series:
        i = index[row["bucket"]]
        name = f"{row['provider']}/{row['model']}"
        acc = per_model.setdefault(
            name, {"requests": [0.0] * len(buckets), "cost": [0.0] * len(buckets)}
        )
        acc["requests"][i] += row["requests"]
        acc["cost"][i] += row["cost"]
        tokens["input"][i] += row["input"]
        tokens["output"][i] += row["output"]
        requests[i] += row["requests"]
        errors[i] += row["errors"]
    for row in o.reasoning_series:
        reasoning[index[row["bucket"]]] += row["tokens"]
    x = buckets  # epoch milliseconds: plotly's date axis reads them as UTC instants
    rate = [e / n if n else 0.0 for e, n in zip(errors, requests, strict=True)]
    return {
        "requests": {
            "data": [
                {"type": "bar", "name": name, "x": x, "y": acc["requests"]}
                for name, acc in sorted(per_model.items())
            ],
            "layout": _layout(f"Requests per {o.bucket}", barmode="stack"),
        },
        "tokens": {
            "data": [
                {"type": "scatter", "mode": "lines+markers", "name": kind, "x": x, "y": ys}
                for kind, ys in (*tokens.items(), ("reasoning", reasoning))
            ],
            "layout": _layout(f"Tokens per {o.bucket}"),
        },
        "cost": {
            "data": [
                {"type": "bar", "name": name, "x": x, "y": acc["cost"]}
                for name, acc in sorted(per_model.items())
            ],
            "layout": _layout(f"Cost (USD) per {o.bucket}", barmode="stack"),
        },
        "errors": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "error rate",
                    "x": x,
                    "y": rate,
                }
            ],
            "layout": _layout(
                f"Error rate per {o.bucket}", yaxis={"tickformat": ".1%", "rangemode": "tozero"}
            ),
        },
    }
