"""The middlewares `@node-llm/core` ships that matter for stored conversations.

- `PIIMask`: masks e-mail addresses, card numbers, US social security and phone numbers in
  the turn's messages before the request; the user row is stored masked.
- `CostGuard`: stops the turn once the cost summed over the turns it has seen passes
  `max_cost`; the stopped answer and its request rows stay stored, marked with the error.
- `UsageLogger`: logs each turn's tokens and cost.
- `SchemaSelfCorrection`: the core chat already sends an answer that misses the schema back
  for correction `max_corrections` times (default 2, JS `maxRetries` default 2); this sets
  that number for the turns of the chat it is given to.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from .messages import Response
from .middleware import MiddlewareContext, MiddlewareStopError

log = logging.getLogger("nodellm_orm")

# Most specific first, so a card or SSN is not half-eaten by the phone pattern.
_PII_PATTERNS = (
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    re.compile(r"\b(?:\d[ -]?){12,15}\d\b"),
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    re.compile(r"(?:\+?\d{1,3}[-.\s]?)?\(?\b\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}\b"),
)


class PIIMask:
    """JS `PIIMask({mask})`: redact personal data from the messages sent (and stored)."""

    name = "PIIMask"

    def __init__(self, mask: str = "[REDACTED]") -> None:
        if not isinstance(mask, str):
            raise TypeError("mask must be a string")
        self.mask = mask

    def mask_text(self, text: str) -> str:
        for pattern in _PII_PATTERNS:
            text = pattern.sub(self.mask, text)
        return text

    def on_request(self, ctx: MiddlewareContext) -> None:
        for message in ctx.messages:
            if message.content:
                message.content = self.mask_text(message.content)


class CostLimitError(MiddlewareStopError):
    """The cost guard's budget is spent."""


class CostGuard:
    """JS `CostGuard({maxCost, onLimitExceeded})`: a budget in USD over the turns it sees.

    The guard is an object: give the same one to several chats to share a budget.
    """

    name = "CostGuard"

    def __init__(
        self,
        max_cost: float,
        on_limit_exceeded: Callable[[MiddlewareContext, float], object] | None = None,
    ) -> None:
        if isinstance(max_cost, bool) or not isinstance(max_cost, int | float) or max_cost <= 0:
            raise ValueError(
                f"CostGuard max_cost must be a number greater than 0, not {max_cost!r}"
            )
        self.max_cost = float(max_cost)
        self.on_limit_exceeded = on_limit_exceeded
        self.accumulated_cost = 0.0

    def on_response(self, ctx: MiddlewareContext, response: Response) -> None:
        self.accumulated_cost += response.usage.cost or 0.0
        if self.accumulated_cost > self.max_cost:
            if self.on_limit_exceeded is not None:
                self.on_limit_exceeded(ctx, self.accumulated_cost)
            raise CostLimitError(
                f"CostGuard: budget exceeded, accumulated cost ${self.accumulated_cost:.6f} "
                f"exceeds the limit ${self.max_cost:.6f}",
                provider=ctx.provider,
            )


class UsageLogger:
    """JS `UsageLogger({logger, prefix})`: one log entry with each turn's usage."""

    name = "UsageLogger"

    def __init__(
        self,
        logger: Callable[[str, dict[str, Any]], object] | None = None,
        prefix: str | None = None,
    ) -> None:
        self.logger = logger
        self.prefix = prefix

    def on_response(self, ctx: MiddlewareContext, response: Response) -> None:
        usage = response.usage
        message = (
            f"{f'[{self.prefix}] ' if self.prefix else ''}LLM Usage: {ctx.provider}/{ctx.model}"
        )
        data: dict[str, Any] = {
            "requestId": ctx.request_id,
            "tokens": {
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "total": usage.input_tokens + usage.output_tokens,
                "cached": usage.cached_tokens,
            },
            "cost": f"{usage.cost:.6f}" if usage.cost else None,
        }
        if self.logger is not None:
            self.logger(message, data)
        else:
            log.info("%s %s", message, json.dumps(data))


class SchemaSelfCorrection:
    """JS `SchemaSelfCorrection({maxRetries})`: how often a schema miss is sent back."""

    name = "SchemaSelfCorrection"

    def __init__(self, max_retries: int = 2) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, not {max_retries!r}")
        self.max_retries = max_retries

    def on_request(self, ctx: MiddlewareContext) -> None:
        ctx.options["max_corrections"] = self.max_retries
