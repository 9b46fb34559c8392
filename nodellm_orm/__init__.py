"""nodellm-orm: persist LLM conversations (chats, messages, tool calls, requests, agent sessions)
in SQL. The Python counterpart of the npm package @node-llm/orm.

Every public name is imported on first use (PEP 562 module `__getattr__`), so `import
nodellm_orm` costs next to nothing and SQLAlchemy is only imported when the sql backend is.
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing alone would cost more than this whole module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .core.agent import Agent, define_agent
    from .core.chat import Chat as CoreChat
    from .core.chat import RequestMetrics, ToolErrorDirective
    from .core.errors import (
        APIError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        LLMConnectionError,
        LLMError,
        LLMTimeoutError,
        RateLimitError,
        ResponseFormatError,
        ServerError,
        StructuredOutputError,
        ToolCallLimitError,
        ToolError,
    )
    from .core.llm import LLM, create_llm, register_provider
    from .core.messages import ChatChunk, Message, Response, Thinking, ToolCall, Usage
    from .core.options import AskOptions, ChatOptions
    from .core.providers.base import Provider, RetryPolicy
    from .core.tools import Tool
    from .model.names import TableNames
    from .model.records import (
        AgentSessionRecord,
        ChatRecord,
        MessageRecord,
        RequestRecord,
        ToolCallRecord,
    )
    from .orm.agent_session import (
        AgentClassMismatchError,
        AgentSession,
        create_agent_session,
        load_agent_session,
    )
    from .orm.chat import Chat, ChatStream, create_chat, load_chat
    from .orm.options import Persistence
    from .stores.base import SchemaDriftError, Store, StoreError
    from .stores.scoped import ScopedStore, ScopeError, scoped_store
    from .stores.sql import SqlStore, connect

# Where each public name lives: (module, name in that module). The TYPE_CHECKING imports above
# say the same for type checkers; a test holds the two equal.
_EXPORTS: dict[str, tuple[str, str]] = {
    "LLM": (".core.llm", "LLM"),
    "APIError": (".core.errors", "APIError"),
    "Agent": (".core.agent", "Agent"),
    "AskOptions": (".core.options", "AskOptions"),
    "ChatOptions": (".core.options", "ChatOptions"),
    "define_agent": (".core.agent", "define_agent"),
    "AgentClassMismatchError": (".orm.agent_session", "AgentClassMismatchError"),
    "AgentSession": (".orm.agent_session", "AgentSession"),
    "AgentSessionRecord": (".model.records", "AgentSessionRecord"),
    "AuthenticationError": (".core.errors", "AuthenticationError"),
    "BadRequestError": (".core.errors", "BadRequestError"),
    "Chat": (".orm.chat", "Chat"),
    "ChatChunk": (".core.messages", "ChatChunk"),
    "ChatRecord": (".model.records", "ChatRecord"),
    "ChatStream": (".orm.chat", "ChatStream"),
    "ConfigurationError": (".core.errors", "ConfigurationError"),
    "CoreChat": (".core.chat", "Chat"),
    "LLMConnectionError": (".core.errors", "LLMConnectionError"),
    "LLMError": (".core.errors", "LLMError"),
    "LLMTimeoutError": (".core.errors", "LLMTimeoutError"),
    "Message": (".core.messages", "Message"),
    "MessageRecord": (".model.records", "MessageRecord"),
    "Persistence": (".orm.options", "Persistence"),
    "Provider": (".core.providers.base", "Provider"),
    "RateLimitError": (".core.errors", "RateLimitError"),
    "RequestMetrics": (".core.chat", "RequestMetrics"),
    "RequestRecord": (".model.records", "RequestRecord"),
    "Response": (".core.messages", "Response"),
    "ResponseFormatError": (".core.errors", "ResponseFormatError"),
    "RetryPolicy": (".core.providers.base", "RetryPolicy"),
    "ServerError": (".core.errors", "ServerError"),
    "SchemaDriftError": (".stores.base", "SchemaDriftError"),
    "SqlStore": (".stores.sql", "SqlStore"),
    "Store": (".stores.base", "Store"),
    "StoreError": (".stores.base", "StoreError"),
    "StructuredOutputError": (".core.errors", "StructuredOutputError"),
    "TableNames": (".model.names", "TableNames"),
    "Thinking": (".core.messages", "Thinking"),
    "Tool": (".core.tools", "Tool"),
    "ToolCall": (".core.messages", "ToolCall"),
    "ToolCallLimitError": (".core.errors", "ToolCallLimitError"),
    "ToolCallRecord": (".model.records", "ToolCallRecord"),
    "ToolError": (".core.errors", "ToolError"),
    "ToolErrorDirective": (".core.chat", "ToolErrorDirective"),
    "Usage": (".core.messages", "Usage"),
    "connect": (".stores.sql", "connect"),
    "create_agent_session": (".orm.agent_session", "create_agent_session"),
    "create_chat": (".orm.chat", "create_chat"),
    "create_llm": (".core.llm", "create_llm"),
    "load_agent_session": (".orm.agent_session", "load_agent_session"),
    "load_chat": (".orm.chat", "load_chat"),
    "register_provider": (".core.llm", "register_provider"),
    "ScopeError": (".stores.scoped", "ScopeError"),
    "ScopedStore": (".stores.scoped", "ScopedStore"),
    "scoped_store": (".stores.scoped", "scoped_store"),
}

__all__ = [
    "LLM",
    "APIError",
    "Agent",
    "AgentClassMismatchError",
    "AgentSession",
    "AgentSessionRecord",
    "AskOptions",
    "AuthenticationError",
    "BadRequestError",
    "Chat",
    "ChatChunk",
    "ChatOptions",
    "ChatRecord",
    "ChatStream",
    "ConfigurationError",
    "CoreChat",
    "LLMConnectionError",
    "LLMError",
    "LLMTimeoutError",
    "Message",
    "MessageRecord",
    "Persistence",
    "Provider",
    "RateLimitError",
    "RequestMetrics",
    "RequestRecord",
    "Response",
    "ResponseFormatError",
    "RetryPolicy",
    "SchemaDriftError",
    "ScopeError",
    "ScopedStore",
    "ServerError",
    "SqlStore",
    "Store",
    "StoreError",
    "StructuredOutputError",
    "TableNames",
    "Thinking",
    "Tool",
    "ToolCall",
    "ToolCallLimitError",
    "ToolCallRecord",
    "ToolError",
    "ToolErrorDirective",
    "Usage",
    "connect",
    "create_agent_session",
    "create_chat",
    "create_llm",
    "define_agent",
    "load_agent_session",
    "load_chat",
    "register_provider",
    "scoped_store",
]


# Runtime only: type checkers see the imports above, so a misspelt name stays an error there.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        try:
            module, attr = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, __name__), attr)
        globals()[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
