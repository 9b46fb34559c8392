"""Keeping API keys out of what the library raises and logs.

A provider may echo the key it was sent (a proxy's 401 page, a debug error event), and a URL
may carry one in its query string. Every error a provider raises passes through its
`Redactor` before it leaves the provider, so neither the message nor the kept body holds the
key; the ORM writes `str(error)`, so rows do not either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import LLMError

MASK = "***"
# Real keys are long; a shorter "key" (a test placeholder such as "k") would mask ordinary
# words of every message.
MIN_SECRET_LENGTH = 8
# Credentials that travel in a URL's query string or an Authorization header, whatever key.
_PATTERNS = (
    re.compile(r"(?i)([?&](?:key|api_key|apikey|api-key|access_token|token)=)[^&#\s'\"<>]+"),
    re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
)


class Redactor:
    """Masks the given secrets, and credentials in URLs, in text, values and errors."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a key that contains another is masked whole.
        self._secrets = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def adding(self, secrets: Iterable[str | None]) -> Redactor:
        """A redactor that also masks `secrets` (a request's own credential headers)."""
        return Redactor([*self._secrets, *secrets])

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(rf"\g<1>{MASK}", text)
        return text

    def value(self, value: Any) -> Any:
        """`value` with every string inside it (dict keys and values, list items) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value

    def error(self, error: LLMError) -> LLMError:
        """Mask `error`'s message and body in place (and return it), and the messages of
        the exceptions chained to it, which a traceback prints."""
        error.with_message(self.text(error.message))
        error.body = self.value(error.body)
        seen = {id(error)}
        cause = error.__cause__ or error.__context__
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            text = str(cause)
            masked = self.text(text)
            if masked != text:
                cause.args = (masked,)
            cause = cause.__cause__ or cause.__context__
        return error


# scheme://user:password@host -- the password runs to the LAST "@" before the host part, since
# an unencoded "@" or ":" inside a password is common in hand-written URLs.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@?#'\"]*:)(?P<secret>[^\s/?#'\"]*)@"
)
# key=value forms drivers print (libpq DSNs, `?password=` query parameters).
_PASSWORD_PARAM = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?P<secret>[^\s&'\";]+)")


def mask_urls(text: str) -> str:
    """`text` with the password of every database URL (and `password=` parameter) masked.

    `postgresql://app:s3cret@db/prod` -> `postgresql://app:***@db/prod`; a URL without a
    password is returned unchanged. The one helper for every message the library or the CLI
    prints or raises that may quote a database URL.
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] else m[0], text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['head']}{MASK}", text)
