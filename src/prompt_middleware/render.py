"""Prompt + variables + client messages -> the messages to send. Pure: no I/O, no clock.

Variables follow the Langfuse SDK's ``compile`` to the letter: ``{{name}}`` with whitespace
inside the braces ignored, the text between the first ``{{`` and the next ``}}`` being the
name; values stringified with ``str()``; ``None`` becomes the empty string; no escaping; no
re-expansion of substituted text; an unknown variable stays as written.

Where the SDK would produce a message no chat endpoint accepts, we refuse with a 400 instead:
a placeholder value that is not a list of message objects with a ``role`` (the SDK sends
``role: "NOT_GIVEN"``), and an unfilled placeholder (the SDK keeps it in the output).
Where the SDK crashes (a placeholder message whose ``content`` is ``null`` or a list of
content parts) we keep ``null`` as it is and fill the ``text`` of text parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import msgspec

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.prompts import ChatMessage, Prompt

__all__ = [
    "ClientMessagesMode",
    "PreparedPrompt",
    "RenderOptions",
    "RenderedPrompt",
    "compile_template",
    "find_variables",
    "missing_variables_error",
    "too_large_error",
]

ClientMessagesMode = Literal["ignore", "append"]

_OPENING = "{{"
_CLOSING = "}}"

# (text before the variable, variable name or None at the end, the variable as written)
_Segment = tuple[str, str | None, str]


@lru_cache(maxsize=8192)
def _parse(template: str) -> tuple[_Segment, ...]:
    # Templates come from cached prompts, so the same string objects recur on every
    # request: parsing once per distinct template keeps the per-request work to a join.
    segments: list[_Segment] = []
    position = 0
    while True:
        start = template.find(_OPENING, position)
        end = template.find(_CLOSING, start) if start != -1 else -1
        if end == -1:
            segments.append((template[position:], None, ""))
            return tuple(segments)
        stop = end + len(_CLOSING)
        name = template[start + len(_OPENING) : end].strip()
        segments.append((template[position:start], name, template[start:stop]))
        position = stop


def find_variables(template: str) -> list[str]:
    """The variable names of ``template``, in order, as the Langfuse SDK finds them."""
    return [name for _, name, _ in _parse(template) if name is not None]


def compile_template(template: str, variables: Mapping[str, Any]) -> str:
    """Fill ``{{name}}`` variables exactly as the Langfuse SDK's ``compile`` does."""
    return _fill(_parse(template), variables, {}, None)


class _PastLimit(Exception):
    """Rendering went past ``max_rendered_chars``; answered as :func:`too_large_error`."""


def _fill(
    segments: tuple[_Segment, ...],
    variables: Mapping[str, Any],
    missing: dict[str, None],
    limit: int | None,
) -> str:
    # One pass: fill, and note the variables that were not given. The parts are counted
    # before they are joined, so a variable repeated a thousand times is refused before a
    # gigabyte is built (the list holds references, not copies).
    parts: list[str] = []
    size = 0
    for literal, name, written in segments:
        parts.append(literal)
        size += len(literal)
        if name is not None:
            if name in variables:
                value = variables[name]
                text = "" if value is None else str(value)
            else:
                missing[name] = None
                text = written
            parts.append(text)
            size += len(text)
    if limit is not None and size > limit:
        raise _PastLimit
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How a prompt becomes messages; see the ``PROMPT_MIDDLEWARE_*`` settings of the same names."""

    text_prompt_role: str = "user"
    messages_placeholder: str = "messages"
    client_messages: ClientMessagesMode = "ignore"
    strict_variables: bool = False
    max_rendered_chars: int | None = None


class RenderedPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """The messages to send, and the variables the templates asked for that were not given."""

    messages: list[Any]
    missing_variables: tuple[str, ...]


# What a prompt is made of, once parsed: a message with no variables, a message template,
# a placeholder. ``role`` None is a text prompt's: RenderOptions.text_prompt_role says which.
_STATIC: Final = 0
_TEMPLATE: Final = 1
_PLACEHOLDER: Final = 2
_Step = tuple[int, str | None, Any]


class PreparedPrompt:
    """A prompt parsed once, to be rendered many times: the engine's cache keeps one per
    prompt version, inside its plan (``engine/plan.py``).

    ``render`` is :func:`~prompt_middleware.prepare.render_prompt` without the per-call work
    of walking the prompt and looking its templates up: a message without variables is
    already its final text.
    """

    __slots__ = ("_steps", "prompt")

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        # Jinja writes an unknown variable as nothing; Langfuse's SDK keeps it as written.
        blank = prompt.template_language != "langfuse"
        steps: list[_Step] = []
        if isinstance(prompt.prompt, str):
            steps.append(_template_step(None, prompt.prompt, blank))
        else:
            for item in prompt.prompt:
                if isinstance(item, ChatMessage):
                    steps.append(_template_step(item.role, item.content, blank))
                else:
                    steps.append((_PLACEHOLDER, None, item.name))
        self._steps: tuple[_Step, ...] = tuple(steps)

    def render(
        self,
        variables: Mapping[str, Any],
        client_messages: Callable[[], Sequence[Any] | None] | None,
        options: RenderOptions,
    ) -> RenderedPrompt:
        """Render with ``variables``; see :func:`~prompt_middleware.prepare.render_prompt`."""
        missing: dict[str, None] = {}
        messages: list[Any] = []
        left = options.max_rendered_chars  # what rendering may still produce; None: no limit
        client_messages_used = False
        unfilled: list[str] = []
        text_role = options.text_prompt_role

        def fill(template: str) -> str:
            nonlocal left
            try:
                text = _fill(_parse(template), variables, missing, left)
            except _PastLimit:
                raise too_large_error(self.prompt.name) from None
            if left is not None:
                left -= len(text)
            return text

        for kind, role, value in self._steps:
            if kind == _STATIC:
                if left is not None:
                    left -= len(value)
                    if left < 0:
                        raise too_large_error(self.prompt.name)
                messages.append({"role": text_role if role is None else role, "content": value})
            elif kind == _TEMPLATE:
                try:
                    content = _fill(value, variables, missing, left)
                except _PastLimit:
                    raise too_large_error(self.prompt.name) from None
                if left is not None:
                    left -= len(content)
                messages.append({"role": text_role if role is None else role, "content": content})
            elif value in variables:
                source = f"prompt_variables.{value}"
                messages.extend(_fill_placeholder(value, variables[value], source, fill))
            elif (
                value == options.messages_placeholder
                and client_messages is not None
                and (conversation := client_messages()) is not None
            ):
                # The client's own conversation goes in as sent: never templated, so a user
                # who types "{{secret}}" gets those characters, not a variable's value.
                messages.extend(conversation)
                client_messages_used = True
            else:
                unfilled.append(value)
        if unfilled:
            raise _unfilled(self.prompt.name, unfilled)

        if options.client_messages == "append" and not client_messages_used and client_messages:
            appended = client_messages()
            if appended is not None:
                messages.extend(appended)

        if missing and options.strict_variables:
            raise missing_variables_error(self.prompt.name, missing)
        return RenderedPrompt(messages=messages, missing_variables=tuple(missing))


def missing_variables_error(prompt_name: str, missing: Iterable[str]) -> InvalidPromptRequest:
    """The 400 of strict mode: ``prompt_name`` needs the ``missing`` variables."""
    return InvalidPromptRequest(
        f"Prompt '{prompt_name}' needs variables that prompt_variables does not "
        f"give: {sorted(missing)}.",
        param="prompt_variables",
    )


def too_large_error(prompt_name: str) -> InvalidPromptRequest:
    """The 400 of a render of ``prompt_name`` past ``PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS``."""
    return InvalidPromptRequest(
        f"Prompt '{prompt_name}' renders larger than PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS: "
        "send smaller prompt_variables.",
        param="prompt_variables",
    )


def _unfilled(name: str, placeholders: list[str]) -> InvalidPromptRequest:
    return InvalidPromptRequest(
        f"Prompt '{name}' has unfilled placeholders {placeholders}: pass each "
        "as a list of messages in prompt_variables (an empty list removes it).",
        param="prompt_variables",
    )


def _template_step(role: str | None, template: str, blank: bool) -> _Step:
    segments = _parse(template)
    if len(segments) == 1:  # no variables: the text is final
        return (_STATIC, role, template)
    if blank:  # an unknown variable is written as nothing
        segments = tuple((literal, name, "") for literal, name, _ in segments)
    return (_TEMPLATE, role, segments)


def _fill_placeholder(
    name: str, value: Any, source: str, fill: Callable[[str], str]
) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidPromptRequest(
            f"Placeholder '{name}' must be filled with a list of messages; {source} is a "
            f"{_json_type(value)}.",
            param=source.split(".", 1)[0],
        )
    filled: list[dict[str, Any]] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidPromptRequest(
                f"{source}[{index}] must be a message object with a string 'role'.",
                param=source.split(".", 1)[0],
            )
        # A copy keeps every key (tool_calls, name, ...) and leaves the caller's data alone.
        message = dict(message)
        # Like the SDK, a message without "content" gets "" (an explicit null stays null).
        content = message.get("content", "")
        if isinstance(content, str):
            message["content"] = fill(content)
        elif isinstance(content, list):
            message["content"] = [_fill_part(part, fill) for part in content]
        filled.append(message)
    return filled


def _fill_part(part: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return {**part, "text": fill(part["text"])}
    return part


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"
