"""A local, read-only web dashboard over a nodellm-orm database (the `dashboard` extra).

```
nodellm-orm dashboard --url sqlite:///nodellm.db          # http://127.0.0.1:8765
```

or mounted in your own ASGI app:

```python
from nodellm_orm.dashboard import create_app
app.mount("/llm", create_app("postgresql://.../db"))
```

Pages: an overview (requests, tokens, cost and error rate over time per provider and model,
latency percentiles, the most expensive chats), a searchable list of chats, and each
conversation as the model saw it, with the request rows beside their turn. Importing
`nodellm_orm` does not import this package; this package needs the `dashboard` extra.
"""

from __future__ import annotations

from ._app import create_app
from ._queries import DashboardError

__all__ = ["DashboardError", "create_app"]
