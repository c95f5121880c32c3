"""What a prompt store returns, and what it is asked for."""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import msgspec

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
#: How a prompt's text is filled: see :class:`Prompt`.
TemplateLanguage: TypeAlias = Literal["langfuse", "jinja", "dotprompt"]

#: The label a request that names neither ``prompt_label`` nor ``prompt_version`` asks for
#: (README, "How a request is rewritten"); every store reads it from here.
DEFAULT_LABEL: Final = "production"


# Tagged as Langfuse tags a chat prompt's items ("type": "chatmessage" | "placeholder"), so a
# Prompt encoded by msgspec (a last known good copy in Redis) decodes back to the same Prompt.
class ChatMessage(msgspec.Struct, frozen=True, tag_field="type", tag="chatmessage"):
    """One message of a chat prompt; ``content`` may hold ``{{variables}}``."""

    role: str
    content: str


class Placeholder(msgspec.Struct, frozen=True, tag_field="type", tag="placeholder"):
    """A chat-prompt slot filled with a list of messages from ``prompt_variables[name]``."""

    name: str


PromptMessage: TypeAlias = ChatMessage | Placeholder


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a managed prompt, in the shape Langfuse gives it.

    ``prompt`` is a string for a text prompt and a tuple of messages and placeholders for a
    chat prompt. ``config`` is the prompt's free-form config; the renderer reads ``model`` and
    the chat-completions parameters from it when it is a JSON object. Instances are shared by
    every request that hits the cache: never mutate them.

    ``template_language`` says how the text is filled. ``langfuse``: ``{{variables}}`` as the
    Langfuse SDK fills them, an unknown one kept as written. ``jinja``: the text, or each
    message's content, is a Jinja template of its own (Humanloop's ``jinja``). ``dotprompt``:
    ``prompt`` is one Jinja template whose rendered text is split into messages at its role
    markers (a LiteLLM ``.prompt`` body). ``input_schema`` is a ``.prompt`` file's
    ``input.schema``, as written, checked against ``prompt_variables`` before rendering. Both
    are plain data, like every field here: templates are compiled when the engine prepares the
    prompt (:func:`~prompt_middleware.prepare.prepare_prompt`), once per version.
    """

    name: str
    version: int | str
    type: PromptType
    prompt: str | tuple[PromptMessage, ...]
    config: Any = msgspec.field(default_factory=dict)
    labels: tuple[str, ...] = ()
    template_language: TemplateLanguage = "langfuse"
    input_schema: Any = None


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
