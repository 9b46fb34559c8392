"""nodellm-orm: persist LLM conversations (chats, messages, tool calls, requests, agent sessions)
in SQL. The Python counterpart of the npm package @node-llm/orm."""

from .core.agent import Agent
from .core.chat import Chat as CoreChat
from .core.chat import RequestMetrics, ToolErrorDirective
from .core.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    LLMError,
    RateLimitError,
    ServerError,
    StructuredOutputError,
    ToolCallLimitError,
    ToolError,
)
from .core.llm import LLM, create_llm, register_provider
from .core.messages import ChatChunk, Message, Response, Thinking, ToolCall, Usage
from .core.providers.base import Provider, RetryPolicy
from .core.tools import Tool
from .orm.agent_session import (
    AgentClassMismatchError,
    AgentSession,
    create_agent_session,
    load_agent_session,
)
from .orm.chat import Chat, ChatStream, create_chat, load_chat
from .orm.options import Persistence, TableNames
from .orm.records import (
    AgentSessionRecord,
    ChatRecord,
    MessageRecord,
    RequestRecord,
    ToolCallRecord,
)
from .stores.base import Store, StoreError
from .stores.sql import SqlStore, connect

__all__ = [
    "LLM",
    "APIError",
    "Agent",
    "AgentClassMismatchError",
    "AgentSession",
    "AgentSessionRecord",
    "AuthenticationError",
    "BadRequestError",
    "Chat",
    "ChatChunk",
    "ChatRecord",
    "ChatStream",
    "ConfigurationError",
    "CoreChat",
    "LLMError",
    "Message",
    "MessageRecord",
    "Persistence",
    "Provider",
    "RateLimitError",
    "RequestMetrics",
    "RequestRecord",
    "Response",
    "RetryPolicy",
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
    "load_agent_session",
    "load_chat",
    "register_provider",
]
