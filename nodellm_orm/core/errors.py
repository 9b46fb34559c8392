"""One error hierarchy for every provider.

Each error carries the provider's name, the HTTP status code (None when no response arrived)
and the provider's own message, so callers can branch on type and users can read what went
wrong.

`TimeoutError` and `ConnectionError` were the names of `LLMTimeoutError` and
`LLMConnectionError` in 0.1; the old names still resolve here (with a DeprecationWarning)
for one more release. The new classes also derive from the builtin `TimeoutError` /
`ConnectionError`, so `except TimeoutError:` keeps catching them.
"""

from __future__ import annotations

import builtins
from typing import Any


class LLMError(Exception):
    """Base of every error the LLM client raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.body = body
        # Seconds the provider asked to wait (Retry-After), when it said.
        self.retry_after: float | None = None
        # How long the attempt that raised this took, when a provider round trip did.
        self.duration_ms: int | None = None
        super().__init__(self._text())

    def _text(self) -> str:
        prefix = f"[{self.provider}] " if self.provider else ""
        suffix = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{prefix}{self.message}{suffix}"

    def with_message(self, message: str) -> None:
        """Replace the message (used to redact secrets); `str(error)` follows."""
        self.message = message
        self.args = (self._text(),)


class ConfigurationError(LLMError):
    """The client is set up wrongly: unknown provider, missing API key, bad option."""


class APIError(LLMError):
    """The provider answered with an error status."""


class BadRequestError(APIError):
    """400/404/422: the request itself is wrong; retrying will not help."""


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong or lacks permission."""


class RateLimitError(APIError):
    """429: too many requests or tokens; retried with backoff."""


class ServerError(APIError):
    """5xx (and 529 overloaded): the provider failed; retried with backoff."""


class ResponseFormatError(LLMError):
    """A success status whose body is not what the protocol sends: not JSON, a missing or
    wrong-typed field. `body` holds what arrived; the message quotes a short excerpt."""


class LLMTimeoutError(LLMError, builtins.TimeoutError):
    """The request took longer than the configured timeout; retried."""


class LLMConnectionError(LLMError, builtins.ConnectionError):
    """No response arrived: DNS, refused connection, reset."""


class ToolError(LLMError):
    """A tool failed and a hook decided to stop the turn."""


class StructuredOutputError(LLMError):
    """The answer still did not match the schema after the correction rounds."""


class ToolCallLimitError(LLMError):
    """The model asked for more tool calls than max_tool_calls allows."""


def error_for_status(
    status_code: int, message: str, *, provider: str | None, body: Any = None
) -> APIError:
    """Map an HTTP status to the error type a caller can branch on."""
    cls: type[APIError]
    if status_code in (401, 403):
        cls = AuthenticationError
    elif status_code == 429:
        cls = RateLimitError
    elif status_code >= 500:
        cls = ServerError
    elif status_code >= 400:
        cls = BadRequestError
    else:
        cls = APIError
    return cls(message, provider=provider, status_code=status_code, body=body)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, RateLimitError | ServerError | LLMTimeoutError | LLMConnectionError)


# Old name -> its home; resolved by __getattr__ so the module never shadows the builtins.
_MOVED: dict[str, tuple[str, str]] = {
    "TimeoutError": (__name__, "LLMTimeoutError"),
    "ConnectionError": (__name__, "LLMConnectionError"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .deprecation import moved

    return moved(__name__, name, _MOVED[name])
