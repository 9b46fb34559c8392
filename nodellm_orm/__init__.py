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
    from .core.chat import ToolErrorDirective
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
    from .core.messages import ChatChunk, Message, Response, ToolCall, Usage
    from .core.options import AskOptions, ChatOptions
    from .core.pricing import Price, register_price
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
    from .stores.sql import connect

# The public surface, and where each name lives: (module, name in that module). The
# TYPE_CHECKING imports above say the same for type checkers; a test holds the two equal.
_EXPORTS: dict[str, tuple[str, str]] = {
    # Entry points
    "connect": (".stores.sql", "connect"),
    "create_chat": (".orm.chat", "create_chat"),
    "load_chat": (".orm.chat", "load_chat"),
    "create_agent_session": (".orm.agent_session", "create_agent_session"),
    "load_agent_session": (".orm.agent_session", "load_agent_session"),
    "scoped_store": (".stores.scoped", "scoped_store"),
    # Handles
    "Chat": (".orm.chat", "Chat"),
    "ChatStream": (".orm.chat", "ChatStream"),
    "AgentSession": (".orm.agent_session", "AgentSession"),
    "ScopedStore": (".stores.scoped", "ScopedStore"),
    "Store": (".stores.base", "Store"),
    # Records (rows as read back)
    "ChatRecord": (".model.records", "ChatRecord"),
    "MessageRecord": (".model.records", "MessageRecord"),
    "ToolCallRecord": (".model.records", "ToolCallRecord"),
    "RequestRecord": (".model.records", "RequestRecord"),
    "AgentSessionRecord": (".model.records", "AgentSessionRecord"),
    # Options
    "ChatOptions": (".core.options", "ChatOptions"),
    "AskOptions": (".core.options", "AskOptions"),
    "TableNames": (".model.names", "TableNames"),
    "Persistence": (".orm.options", "Persistence"),
    # The LLM client, tools, agents, providers, prices
    "LLM": (".core.llm", "LLM"),
    "create_llm": (".core.llm", "create_llm"),
    "register_provider": (".core.llm", "register_provider"),
    "Provider": (".core.providers.base", "Provider"),
    "RetryPolicy": (".core.providers.base", "RetryPolicy"),
    "Price": (".core.pricing", "Price"),
    "register_price": (".core.pricing", "register_price"),
    "Tool": (".core.tools", "Tool"),
    "Agent": (".core.agent", "Agent"),
    "define_agent": (".core.agent", "define_agent"),
    # What a turn hands to hooks and streams
    "Message": (".core.messages", "Message"),
    "Response": (".core.messages", "Response"),
    "ToolCall": (".core.messages", "ToolCall"),
    "ChatChunk": (".core.messages", "ChatChunk"),
    "Usage": (".core.messages", "Usage"),
    "ToolErrorDirective": (".core.chat", "ToolErrorDirective"),
    # Errors
    "LLMError": (".core.errors", "LLMError"),
    "APIError": (".core.errors", "APIError"),
    "AuthenticationError": (".core.errors", "AuthenticationError"),
    "BadRequestError": (".core.errors", "BadRequestError"),
    "ConfigurationError": (".core.errors", "ConfigurationError"),
    "RateLimitError": (".core.errors", "RateLimitError"),
    "ServerError": (".core.errors", "ServerError"),
    "LLMTimeoutError": (".core.errors", "LLMTimeoutError"),
    "LLMConnectionError": (".core.errors", "LLMConnectionError"),
    "ResponseFormatError": (".core.errors", "ResponseFormatError"),
    "StructuredOutputError": (".core.errors", "StructuredOutputError"),
    "ToolCallLimitError": (".core.errors", "ToolCallLimitError"),
    "ToolError": (".core.errors", "ToolError"),
    "StoreError": (".stores.base", "StoreError"),
    "SchemaDriftError": (".stores.base", "SchemaDriftError"),
    "ScopeError": (".stores.scoped", "ScopeError"),
    "AgentClassMismatchError": (".orm.agent_session", "AgentClassMismatchError"),
}

# Names the package handed out in 0.1 that are not part of the surface: they still resolve,
# with a DeprecationWarning naming their home, for one release. Never in __all__, so
# `from nodellm_orm import *` does not bind them.
_MOVED: dict[str, tuple[str, str]] = {
    "CoreChat": ("nodellm_orm.core.chat", "Chat"),
    "RequestMetrics": ("nodellm_orm.core.chat", "RequestMetrics"),
    "SqlStore": ("nodellm_orm.stores.sql", "SqlStore"),
    "Thinking": ("nodellm_orm.core.messages", "Thinking"),
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
    "LLMConnectionError",
    "LLMError",
    "LLMTimeoutError",
    "Message",
    "MessageRecord",
    "Persistence",
    "Price",
    "Provider",
    "RateLimitError",
    "RequestRecord",
    "Response",
    "ResponseFormatError",
    "RetryPolicy",
    "SchemaDriftError",
    "ScopeError",
    "ScopedStore",
    "ServerError",
    "Store",
    "StoreError",
    "StructuredOutputError",
    "TableNames",
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
    "register_price",
    "register_provider",
    "scoped_store",
]


# Runtime only: type checkers see the imports above, so a misspelt name stays an error there.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        export = _EXPORTS.get(name)
        if export is not None:
            value = getattr(importlib.import_module(export[0], __name__), export[1])
            globals()[name] = value  # later lookups skip __getattr__
            return value
        if name in _MOVED:
            from .core.deprecation import moved

            return moved(__name__, name, _MOVED[name])  # never cached: each use warns
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
