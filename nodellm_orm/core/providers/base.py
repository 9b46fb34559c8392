"""A provider is two things: where and how to authenticate, and the wire protocol it speaks.

`WireProtocol` is pure translation (request -> JSON body, JSON body or one SSE event ->
`StreamDelta`s) and never does I/O, so it is tested with plain dicts. `Provider` owns the I/O:
the base URL, the auth headers, one shared `httpx.AsyncClient`, retries and error mapping.
OpenAI-compatible providers (OpenRouter, DeepSeek, Ollama) are a `Provider` subclass with a
different base URL and headers over the same protocol object.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import os
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from .. import errors
from ..clock import as_utc, utc_now
from ..deltas import normalized
from ..messages import ChatRequest, StreamDelta
from ..redaction import Redactor
from ..sse import SSEEvent, iter_sse

# How much of an unexpected body an error message quotes; the whole body stays on `.body`.
EXCERPT_CHARS = 200
# What a protocol may raise when a body does not have the shape it reads.
_SHAPE_ERRORS = (AttributeError, KeyError, IndexError, TypeError, ValueError)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


class WireProtocol(ABC):
    """How one API family encodes requests, responses and stream events."""

    @abstractmethod
    def path(self, request: ChatRequest) -> str:
        """The endpoint path relative to the provider's base URL (may include a query)."""

    @abstractmethod
    def render(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for `request` (streaming or not, as `request.stream` says)."""

    @abstractmethod
    def parse_response(self, body: dict[str, Any]) -> list[StreamDelta]:
        """A whole non-streaming response body, as deltas the accumulator folds."""

    @abstractmethod
    def parse_event(self, event: SSEEvent, state: dict[str, Any]) -> list[StreamDelta]:
        """One SSE event. `state` is private to one stream (e.g. block index -> tool call).

        Raise an `errors.APIError` for an error event sent mid-stream.
        """

    def error_message(self, body: Any) -> str:
        """The human message inside an error body (the common `{"error": {"message"}}`)."""
        if isinstance(body, dict):
            err = body.get("error", body)
            if isinstance(err, dict):
                # message first; else the error's type or status (Anthropic, Gemini).
                msg = err.get("message") or err.get("error") or err.get("type") or err.get("status")
                if msg:
                    return str(msg)
            elif isinstance(err, str):
                return err
        if isinstance(body, list) and body:
            return self.error_message(body[0])
        if isinstance(body, str):
            return summary(body)
        return excerpt(body) if body else "request failed"


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """The start of `value` (a body, JSON text), on one line, for an error message."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, default=str)
        except ValueError:
            value = repr(value)
    text = " ".join(value.split())
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def summary(text: str) -> str:
    """A readable line for a non-JSON error body: an HTML page's <title> (a proxy's 502 page),
    else its first line of text, capped at EXCERPT_CHARS."""
    title = _TITLE.search(text)
    line = title.group(1) if title else ""
    if not line.strip():
        plain = _TAG.sub(" ", text) if "<" in text else text
        line = next((ln for ln in plain.splitlines() if ln.strip()), "")
    line = excerpt(html.unescape(line))
    if not line:
        return "request failed (empty body)"
    if len(text) > len(line) + 100:
        line = f"{line} [{len(text):,} characters in .body]"
    return line


def malformed(what: str, body: Any) -> errors.ResponseFormatError:
    """A success body the protocol cannot read; `Provider` fills in provider and status."""
    quoted = summary(body) if isinstance(body, str) else excerpt(body)
    return errors.ResponseFormatError(f"{what}: {quoted}", body=body)


def _credentials(headers: dict[str, str]) -> list[str]:
    """Values of headers that carry a credential (Authorization, *key*, *token*)."""
    found = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "authorization" or "key" in lowered or "token" in lowered:
            found.append(value)
            found.append(value.split(" ", 1)[-1])  # the token of "Bearer <token>"
    return found


async def _remember(
    lines: AsyncIterator[str], head: list[str], keep: int = 20
) -> AsyncIterator[str]:
    async for line in lines:
        if len(head) < keep:
            head.append(line)
        yield line


def event_json(event: SSEEvent, provider: str | None) -> Any:
    """The JSON payload of one SSE event; None for an empty event or OpenAI's `[DONE]`."""
    data = event.data.strip()
    if not data or data == "[DONE]":
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        error = malformed("a stream event is not JSON", data)
        error.provider = provider
        raise error from exc


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter on 429, 5xx, timeouts and dropped connections.

    `attempts` counts every try, the first included; `Retry-After` wins over the computed delay
    (capped at `max_delay`).
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff: float = min(self.base_delay * 2.0**attempt, self.max_delay)
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # An HTTP-date with "-0000" parses naive; it means UTC all the same.
    return float((as_utc(when) - utc_now()).total_seconds())


# Awaited with each failed attempt that will be retried, and its duration in ms.
RetryHook = Callable[[errors.LLMError, int], Awaitable[None]]


@dataclass(slots=True)
class Exchange:
    """One provider round trip that got a success status; `deltas` yields its content.

    `Provider.open` stamps the times: `started` when this attempt was sent, `opened` when the
    first attempt was (earlier when retries came before), both read from `clock`.
    """

    status_code: int
    deltas: AsyncGenerator[StreamDelta, None]
    started: float = field(default_factory=time.perf_counter)
    opened: float = field(default_factory=time.perf_counter)
    clock: Callable[[], float] = time.perf_counter

    def duration_ms(self) -> int:
        """This attempt alone, from sending it until now (its last delta, once drained)."""
        return round((self.clock() - self.started) * 1000)

    def latency_ms(self) -> int:
        """The whole call, from the first attempt until now: retries and backoff included."""
        return round((self.clock() - self.opened) * 1000)


class Provider:
    """Where a provider lives and how to authenticate, plus the protocol it speaks."""

    name: ClassVar[str]
    protocol: ClassVar[WireProtocol]
    default_base_url: ClassVar[str]
    default_model: ClassVar[str] = ""
    # The environment variable holding the API key; None when the provider needs no key.
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.api_key = api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        if self.api_key_env and not self.api_key:
            raise errors.ConfigurationError(
                f"no API key for provider {self.name!r}: set {self.api_key_env} or pass api_key=",
                provider=self.name,
            )
        env_base = os.environ.get(self.base_url_env) if self.base_url_env else None
        self.base_url = self.resolve_base_url(base_url or env_base or self.default_base_url)
        self.http = http or httpx.AsyncClient()
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.extra_headers = dict(headers or {})
        # Seams for tests: what times an attempt and what waits between attempts.
        self.clock: Callable[[], float] = time.perf_counter
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.redactor = Redactor([self.api_key, *_credentials(self.extra_headers)])

    def resolve_base_url(self, url: str) -> str:
        """The base URL to use for a configured one (a provider may complete it)."""
        return url.rstrip("/")

    def map_error(self, error: errors.APIError) -> errors.APIError:
        """A provider's chance to re-type an error its API reports unusually."""
        return error

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request; Bearer by default."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def url(self, request: ChatRequest) -> str:
        return f"{self.base_url}/{self.protocol.path(request).lstrip('/')}"

    def headers(self, request: ChatRequest) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            **self.auth_headers(),
            **self.extra_headers,
            **request.headers,
        }

    async def open(self, request: ChatRequest, *, on_retry: RetryHook | None = None) -> Exchange:
        """Send `request`, retrying per the policy until a success status or a final error.

        `on_retry(error, duration_ms)` is awaited for each failed attempt that is retried, so
        callers can account for every round trip, not only the last.
        """
        attempts = max(1, self.retry.attempts)
        opened = self.clock()
        # Credentials a chat sends in its own headers are masked like the provider's key.
        extra = _credentials(request.headers) if request.headers else ()
        redactor = self.redactor.adding(extra) if extra else self.redactor
        for attempt in range(attempts):
            started = self.clock()
            try:
                exchange = await self.attempt(request)
            except errors.LLMError as error:
                error.duration_ms = round((self.clock() - started) * 1000)
                redactor.error(error)
                if attempt + 1 >= attempts or not errors.is_retryable(error):
                    raise
                if on_retry is not None:
                    await on_retry(error, error.duration_ms)
                await self.sleep(self.retry.delay(attempt, error.retry_after))
                continue
            exchange.started, exchange.opened, exchange.clock = started, opened, self.clock
            failed = functools.partial(self._stream_failed, exchange=exchange, redactor=redactor)
            exchange.deltas = normalized(exchange.deltas, failed)
            return exchange
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream_failed(
        self, error: errors.LLMError, exchange: Exchange, redactor: Redactor
    ) -> None:
        """An error an exchange's deltas raise: timed, completed and redacted in place."""
        if error.duration_ms is None:
            error.duration_ms = exchange.duration_ms()
        if isinstance(error, errors.ResponseFormatError):
            error.provider = error.provider or self.name
            if error.status_code is None:
                error.status_code = exchange.status_code
        redactor.error(error)

    async def attempt(self, request: ChatRequest) -> Exchange:
        """One round trip: a success status opens the exchange, anything else raises."""
        try:
            response = await self.http.send(
                self.http.build_request(
                    "POST",
                    self.url(request),
                    json=self.protocol.render(request),
                    headers=self.headers(request),
                    timeout=self._timeout(request),
                ),
                stream=True,
            )
        except httpx.TimeoutException as exc:
            raise errors.LLMTimeoutError(f"request timed out: {exc}", provider=self.name) from exc
        except httpx.TransportError as exc:
            raise errors.LLMConnectionError(
                f"connection failed: {exc}", provider=self.name
            ) from exc
        if response.status_code >= 400:
            error = await self._error(response)
            error.retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise error
        return Exchange(response.status_code, self._deltas(response, request))

    def _timeout(self, request: ChatRequest) -> float | httpx._client.UseClientDefault:
        timeout = request.timeout if request.timeout is not None else self.request_timeout
        return timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT

    async def _error(self, response: httpx.Response) -> errors.APIError:
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return self.map_error(
            errors.error_for_status(
                response.status_code,
                self.protocol.error_message(body),
                provider=self.name,
                body=body,
            )
        )

    async def _deltas(
        self, response: httpx.Response, request: ChatRequest
    ) -> AsyncGenerator[StreamDelta, None]:
        try:
            if not request.stream:
                raw = await response.aread()
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    text = raw.decode("utf-8", "replace")
                    raise malformed("the response is not JSON", text) from exc
                try:
                    deltas = self.protocol.parse_response(body)
                except _SHAPE_ERRORS as exc:
                    raise malformed(f"unexpected response shape ({exc!r})", body) from exc
                for delta in deltas:
                    yield delta
                return
            state: dict[str, Any] = {}
            head: list[str] = []  # the first lines, to quote when no event came at all
            events = 0
            async for event in iter_sse(_remember(response.aiter_lines(), head)):
                events += 1
                try:
                    deltas = self.protocol.parse_event(event, state)
                except _SHAPE_ERRORS as exc:
                    raise malformed(f"unexpected stream event ({exc!r})", event.data) from exc
                for delta in deltas:
                    yield delta
            if not events:
                # A proxy's HTML page or an empty body sent with a success status.
                raise malformed("the stream carried no events", "\n".join(head))
        except httpx.TimeoutException as exc:
            raise errors.LLMTimeoutError(f"stream timed out: {exc}", provider=self.name) from exc
        except httpx.TransportError as exc:
            raise errors.LLMConnectionError(f"stream broke: {exc}", provider=self.name) from exc
        finally:
            await response.aclose()
