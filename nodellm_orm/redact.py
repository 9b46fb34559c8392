"""Masking secrets out of text the library or the CLI shows: database URL passwords.

One helper, `mask_urls`, applied to every URL and every message that may quote one (a driver
error can embed the DSN it was given), so a password from `$DATABASE_URL` never reaches a
terminal, a log line or an exception message.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_urls"]

MASK = "***"

# scheme://user:password@host -- the password runs to the LAST "@" before the host part, since
# an unencoded "@" or ":" inside a password is common in hand-written URLs.
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@?#'\"]*:)(?P<secret>[^\s/?#'\"]*)@"
)
# key=value forms drivers print (libpq DSNs, `?password=` query parameters).
_PARAM = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>[^\s&'\";]+)", re.IGNORECASE)


def mask_urls(text: str) -> str:
    """`text` with the password of every URL (and every `password=` parameter) replaced by ***.

    `postgresql://app:s3cret@db/prod` -> `postgresql://app:***@db/prod`; a URL without a
    password is returned unchanged.
    """
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] else m[0], text)
    return _PARAM.sub(lambda m: f"{m['head']}{MASK}", text)
