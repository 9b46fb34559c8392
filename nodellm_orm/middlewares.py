"""Middlewares (the `@node-llm/core` protocol) and the ones it ships.

```python
from nodellm_orm.middlewares import CostGuard, PIIMask
chat = await create_chat(db, llm, middlewares=[PIIMask(), CostGuard(max_cost=0.50)])
```

See `nodellm_orm.core.middleware` for the protocol: a middleware is any object with a `name`
and any of `on_request`, `on_response`, `on_error`, `on_tool_call_start`, `on_tool_call_end`,
`on_tool_call_error`.
"""

from __future__ import annotations

from .core.middleware import (
    Middleware,
    MiddlewareContext,
    MiddlewareStopError,
    Replace,
    Retry,
)
from .core.middlewares import CostGuard, CostLimitError, PIIMask, SchemaSelfCorrection, UsageLogger

__all__ = [
    "CostGuard",
    "CostLimitError",
    "Middleware",
    "MiddlewareContext",
    "MiddlewareStopError",
    "PIIMask",
    "Replace",
    "Retry",
    "SchemaSelfCorrection",
    "UsageLogger",
]
