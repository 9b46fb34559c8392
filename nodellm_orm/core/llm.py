"""`create_llm`, the `LLM` entry point, and the provider registry."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Unpack

import httpx

from .errors import ConfigurationError
from .providers.base import Provider, RetryPolicy

if TYPE_CHECKING:
    from .chat import Chat
    from .options import ChatOptions

# Built-in providers are imported on first use so `import nodellm_orm` stays fast.
_BUILTIN: dict[str, tuple[str, str]] = {
    "anthropic": ("nodellm_orm.core.providers.anthropic", "AnthropicProvider"),
    "deepseek": ("nodellm_orm.core.providers.openai", "DeepSeekProvider"),
    "gemini": ("nodellm_orm.core.providers.gemini", "GeminiProvider"),
    "ollama": ("nodellm_orm.core.providers.openai", "OllamaProvider"),
    "openai": ("nodellm_orm.core.providers.openai", "OpenAIProvider"),
    "openrouter": ("nodellm_orm.core.providers.openai", "OpenRouterProvider"),
}
_registry: dict[str, type[Provider]] = {}
_SIBLING_OPTIONS = frozenset(
    {"api_key", "base_url", "model", "retry", "request_timeout", "headers"}
)


def register_provider(name: str, cls: type[Provider]) -> None:
    """Make `create_llm(provider=name)` build `cls`."""
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{cls!r} is not a Provider subclass")
    _registry[name.lower()] = cls


def provider_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registry))


def provider_class(name: str) -> type[Provider]:
    key = name.lower()
    if key in _registry:
        return _registry[key]
    if key in _BUILTIN:
        module, attr = _BUILTIN[key]
        cls: type[Provider] = getattr(importlib.import_module(module), attr)
        _registry[key] = cls
        return cls
    raise ConfigurationError(
        f"unknown provider {name!r}; known providers: {', '.join(provider_names())}"
    )


def _retry_policy(retry: RetryPolicy | int | None) -> RetryPolicy:
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, int) and not isinstance(retry, bool) and retry >= 0:
        # retry=N means N retries after the first attempt.
        return RetryPolicy(attempts=retry + 1)
    raise TypeError(f"retry must be a RetryPolicy or a non-negative int, not {retry!r}")


class LLM:
    """A configured client: which provider, with which credentials, over which connection.

    Providers are created lazily and share one `httpx.AsyncClient`, so many chats reuse one
    connection pool.
    """

    def __init__(
        self,
        provider: str | Provider | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        retry: RetryPolicy | int | None = None,
        request_timeout: float | None = None,
        http: httpx.AsyncClient | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(provider, Provider):
            self._provider: Provider | None = provider
            self.provider_name = provider.name
            # The instance's pool is this LLM's: siblings share it, aclose() closes it.
            http = http or provider.http
        else:
            name = provider or os.environ.get("NODELLM_PROVIDER") or "openai"
            provider_class(name)  # fail now, listing the known providers
            self._provider = None
            self.provider_name = name.lower()
        self.api_key = api_key
        self.base_url = base_url
        self.default_model = model or os.environ.get("NODELLM_MODEL")
        self.retry = _retry_policy(retry)
        self.request_timeout = request_timeout
        self.headers = dict(headers or {})
        self._http = http
        # Siblings from with_provider run on this LLM's pool; the one that made the pool (or
        # was handed it) closes it, so closing a sibling never cuts the others off.
        self._closes_http = True

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.request_timeout or 120.0))
        return self._http

    @property
    def provider(self) -> Provider:
        """The provider instance; raises ConfigurationError (naming the env var) if no key."""
        if self._provider is None:
            cls = provider_class(self.provider_name)
            self._provider = cls(
                api_key=self.api_key,
                base_url=self.base_url,
                http=self.http,
                retry=self.retry,
                request_timeout=self.request_timeout,
                headers=self.headers,
            )
        return self._provider

    def with_provider(self, name: str | Provider, **overrides: Any) -> LLM:
        """A sibling LLM on another provider, sharing this LLM's connection pool.

        Naming the provider this LLM already uses returns it unchanged, so a configured
        provider instance (a scripted FakeProvider, custom credentials) is kept. `overrides`
        are api_key, base_url, model, retry, request_timeout and headers. The sibling's
        `aclose()` leaves the shared pool open; this LLM's `aclose()` closes it.
        """
        unknown = sorted(set(overrides) - _SIBLING_OPTIONS)
        if unknown:
            raise TypeError(
                f"with_provider() got unknown option(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(_SIBLING_OPTIONS))}"
            )
        if isinstance(name, str) and name.lower() == self.provider_name and not overrides:
            return self
        sibling = LLM(
            name,
            api_key=overrides.get("api_key"),
            base_url=overrides.get("base_url"),
            model=overrides.get("model"),
            retry=overrides.get("retry", self.retry),
            request_timeout=overrides.get("request_timeout", self.request_timeout),
            http=self.http,
            headers=overrides.get("headers", self.headers),
        )
        sibling._closes_http = False
        return sibling

    def resolve_model(self, model: str | None) -> str:
        return model or self.default_model or self.provider.default_model

    def chat(self, model: str | None = None, **options: Unpack[ChatOptions]) -> Chat:
        from .chat import Chat

        return Chat(self, model=self.resolve_model(model), **options)

    async def aclose(self) -> None:
        """Close the connection pool (shared with this LLM's `with_provider` siblings)."""
        if self._http is not None and self._closes_http:
            await self._http.aclose()


def create_llm(
    provider: str | Provider | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    retry: RetryPolicy | int | None = None,
    request_timeout: float | None = None,
    http: httpx.AsyncClient | None = None,
    headers: dict[str, str] | None = None,
) -> LLM:
    """Configure an LLM client.

    `provider` is a registered name (default: $NODELLM_PROVIDER, else "openai") or a Provider
    instance (e.g. a scripted `FakeProvider`). The API key defaults to the provider's variable
    (OPENAI_API_KEY, ANTHROPIC_API_KEY...). Pass `http=httpx.AsyncClient(transport=...)` to
    route requests through your own transport.
    """
    return LLM(
        provider,
        api_key=api_key,
        base_url=base_url,
        model=model,
        retry=retry,
        request_timeout=request_timeout,
        http=http,
        headers=headers,
    )
