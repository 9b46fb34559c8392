"""Small, sound import documents (the JSON Lines format of nodellm_orm.transfer) for tests."""

from __future__ import annotations

from typing import Any

HEADER = {"format": "nodellm-orm/chats", "version": 2}


def chat_records(chat_id: str, when: str, user: str | None = None) -> list[dict[str, Any]]:
    """One chat's records: the chat (with `userId` when given), its agent session, a message,
    a tool call of that message and a request, all created at `when`."""
    chat: dict[str, Any] = {"id": chat_id, "createdAt": when, "updatedAt": when}
    if user is not None:
        chat["userId"] = user
    return [
        {"chat": chat},
        {
            "agentSession": {
                "id": f"{chat_id}-s",
                "agentClass": "Helper",
                "chatId": chat_id,
                "createdAt": when,
                "updatedAt": when,
            }
        },
        {"message": {"id": f"{chat_id}-m", "chatId": chat_id, "role": "user", "createdAt": when}},
        {
            "toolCall": {
                "id": f"{chat_id}-t",
                "messageId": f"{chat_id}-m",
                "toolCallId": "call_1",
                "name": "get_weather",
                "arguments": "{}",
                "createdAt": when,
            }
        },
        {
            "request": {
                "id": f"{chat_id}-r",
                "chatId": chat_id,
                "messageId": f"{chat_id}-m",
                "provider": "fake",
                "model": "fake-model",
                "statusCode": 200,
                "duration": 5,
                "inputTokens": 3,
                "outputTokens": 4,
                "createdAt": when,
            }
        },
    ]
