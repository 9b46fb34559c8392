"""Parity with `@node-llm/orm/prisma`: the same functions, imported from the path JS users know.

```python
from prisma import Prisma
from nodellm_orm.prisma import create_chat

db = Prisma()
await db.connect()
chat = await create_chat(db, llm, model="gpt-4o-mini")
```
"""

from .model import TableNames
from .orm.agent_session import AgentSession, create_agent_session, load_agent_session
from .orm.chat import Chat, create_chat, load_chat
from .orm.options import Persistence

__all__ = [
    "AgentSession",
    "Chat",
    "Persistence",
    "TableNames",
    "create_agent_session",
    "create_chat",
    "load_agent_session",
    "load_chat",
]
