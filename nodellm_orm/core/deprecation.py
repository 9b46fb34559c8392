"""One way to keep an old name working for a release: resolve it, and warn naming its new home.

Used by the module `__getattr__` of `nodellm_orm` (names dropped from the public surface) and of
`nodellm_orm.core.errors` (0.1's `TimeoutError` / `ConnectionError`). Resolving through
`__getattr__`, never binding the old name in the module, keeps `from ... import *` from
shadowing a builtin and keeps the old names out of `__all__`.
"""

from __future__ import annotations

import importlib
import warnings


def moved(module: str, name: str, home: tuple[str, str]) -> object:
    """`module.name`, now `home` = (module, attribute), with a DeprecationWarning saying so."""
    new_module, attr = home
    warnings.warn(
        f"{module}.{name} is deprecated and will be removed in the next release; "
        f"use {new_module}.{attr}",
        DeprecationWarning,
        stacklevel=3,  # the caller's line: past this function and the module __getattr__
    )
    return getattr(importlib.import_module(new_module), attr)
