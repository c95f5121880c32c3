"""What a prompt store returns, and what it is asked for."""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import msgspec

from prompt_middleware.input_schema import InputSchema
from prompt_middleware.jinja import PromptTemplate

__all__ = [
    "DEFAULT_LABEL",
    "ChatMessage",
    "Placeholder",
    "Prompt",
    "PromptMessage",
    "PromptQuery",
    "PromptType",
    "TemplateLanguage",
]

PromptType: TypeAlias = Literal["text", "chat"]
TemplateLanguage: TypeAlias = Literal["langfuse", "jinja"]

#: The label a request that names neither ``prompt_label`` nor ``prompt_version`` asks for
#: (README, "How a request is rewritten"); every store reads it from here.
DEFAULT_LABEL: Final = "production"


class ChatMessage(msgspec.Struct, frozen=True):
    """One message of a chat prompt; ``content`` may hold ``{{variables}}``."""

    role: str
    content: str


class Placeholder(msgspec.Struct, frozen=True):
    """A chat-prompt slot filled with a list of messages from ``prompt_variables[name]``."""

    name: str


PromptMessage: TypeAlias = ChatMessage | Placeholder


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a managed prompt, in the shape Langfuse gives it.

    ``prompt`` is a string for a text prompt and a tuple of messages and placeholders for a
    chat prompt. ``config`` is the prompt's free-form config; the renderer reads ``model`` and
    the chat-completions parameters from it when it is a JSON object. Instances are shared by
    every request that hits the cache: never mutate them.

    ``template_language`` says how ``{{variables}}`` are filled: ``langfuse`` keeps an unknown
    variable as written, as Langfuse's SDK does; ``jinja`` writes it as nothing, as Jinja does.
    ``template`` is set for a template with Jinja logic (``{% if %}``, filters, ...), compiled
    once by the store: it is rendered instead of ``prompt``, which then holds its source (the
    ``.prompt`` body, or the Humanloop template's text). ``input_schema`` is checked against
    ``prompt_variables`` before rendering.
    """

    name: str
    version: int | str
    type: PromptType
    prompt: str | tuple[PromptMessage, ...]
    config: Any = msgspec.field(default_factory=dict)
    labels: tuple[str, ...] = ()
    template_language: TemplateLanguage = "langfuse"
    template: PromptTemplate | None = None
    input_schema: InputSchema | None = None


class PromptQuery(msgspec.Struct, frozen=True):
    """Which version of which prompt: by ``label`` or by ``version``, never both."""

    name: str
    label: str | None = None
    version: int | None = None

    def describe(self) -> str:
        """``name`` with its label or version, for error messages and logs."""
        name = _shorten(self.name)
        if self.version is not None:
            return f"'{name}' version {self.version}"
        return f"'{name}' with label '{_shorten(self.label or DEFAULT_LABEL)}'"


def _shorten(text: str, limit: int = 200) -> str:
    # Names come from clients: a 200 KB name must not make a 200 KB error or log line.
    return text if len(text) <= limit else text[:limit] + "…"
