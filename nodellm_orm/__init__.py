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
    ToolCallLimitError,
    ToolError,
)
from .core.llm import LLM, create_llm, register_provider
from .core.messages import ChatChunk, Message, Response, Thinking, ToolCall, Usage
from .core.providers.base import Provider, RetryPolicy
from .core.tools import Tool

__all__ = [
    "LLM",
    "APIError",
    "Agent",
    "AuthenticationError",
    "BadRequestError",
    "ChatChunk",
    "ConfigurationError",
    "CoreChat",
    "LLMError",
    "Message",
    "Provider",
    "RateLimitError",
    "RequestMetrics",
    "Response",
    "RetryPolicy",
    "ServerError",
    "Thinking",
    "Tool",
    "ToolCall",
    "ToolCallLimitError",
    "ToolError",
    "ToolErrorDirective",
    "Usage",
    "create_llm",
    "register_provider",
]
