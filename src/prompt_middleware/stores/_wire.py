"""Wire shapes the remote stores share: OpenAI-style chat messages, and the error for a body
that is JSON but not a prompt."""

from __future__ import annotations

import msgspec

__all__ = ["ContentPart", "InvalidPrompt", "WireMessage", "text_content"]


class InvalidPrompt(ValueError):
    """A 200 whose body is not a prompt of the service's shape; the store reports why."""


class ContentPart(msgspec.Struct, frozen=True):
    type: str
    text: str | None = None


class WireMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | tuple[ContentPart, ...] | None = None


def text_content(message: WireMessage) -> str:
    """The message's text: ``null`` is empty, text parts are joined (as LiteLLM flattens them),
    and any other part makes the prompt unservable."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts: list[str] = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise InvalidPrompt(
                f"a {message.role} message has a content part of type {part.type!r}; only "
                "text parts can be served"
            )
        texts.append(part.text)
    return "".join(texts)
