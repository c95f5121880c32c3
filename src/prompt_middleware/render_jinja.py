"""Prompts that need more than ``{{variable}}`` substitution: Jinja templates, input schemas.

:func:`prepare_prompt` is what the engine keeps per prompt version. A prompt without a
compiled template or an input schema (every Langfuse prompt, every plain ``.prompt`` file) gets
the :class:`~prompt_middleware.render.PreparedPrompt` it always had, so it pays nothing new.
Otherwise a :class:`CheckedPrompt` checks ``input.schema`` before rendering, then renders the
Jinja template (a ``.prompt`` body with logic, a Humanloop ``jinja`` prompt), or hands the
prompt to the plain renderer when it has a schema but no logic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prompt_middleware.input_schema import InputSchema
from prompt_middleware.jinja import PromptTemplate, TooLarge
from prompt_middleware.prompts import Prompt
from prompt_middleware.render import (
    PreparedPrompt,
    RenderedPrompt,
    RenderOptions,
    missing_variables_error,
    too_large_error,
)

__all__ = ["CheckedPrompt", "prepare_prompt"]


def prepare_prompt(prompt: Prompt) -> PreparedPrompt | CheckedPrompt:
    """``prompt`` made ready to render many times."""
    if prompt.template is None and prompt.input_schema is None:
        return PreparedPrompt(prompt)
    return CheckedPrompt(prompt, prompt.template, prompt.input_schema)


class CheckedPrompt:
    """A prompt with an input schema, a Jinja template, or both; renders like PreparedPrompt."""

    __slots__ = ("_plain", "_schema", "_template", "prompt")

    def __init__(
        self, prompt: Prompt, template: PromptTemplate | None, schema: InputSchema | None
    ) -> None:
        self.prompt = prompt
        self._template = template
        self._schema = schema
        self._plain = PreparedPrompt(prompt) if template is None else None

    def render(
        self,
        variables: Mapping[str, Any],
        client_messages: Callable[[], Sequence[Any] | None] | None,
        options: RenderOptions,
    ) -> RenderedPrompt:
        """Check the variables, then render; see :func:`~prompt_middleware.render.render_prompt`.

        Raises :class:`~prompt_middleware.errors.InvalidPromptRequest` for variables the
        schema refuses, and as the renderer does.
        """
        if self._schema is not None:
            self._schema.check(variables, self.prompt.name)
        if self._plain is not None:
            return self._plain.render(variables, client_messages, options)
        assert self._template is not None
        try:
            rendered = self._template.render(variables, options.max_rendered_chars)
        except TooLarge:
            raise too_large_error() from None
        text_role = options.text_prompt_role
        messages: list[Any] = [
            {"role": text_role if role is None else role, "content": content}
            for role, content in rendered.messages
        ]
        if options.client_messages == "append" and client_messages is not None:
            appended = client_messages()
            if appended is not None:
                messages.extend(appended)
        if rendered.missing and options.strict_variables:
            raise missing_variables_error(self.prompt.name, rendered.missing)
        return RenderedPrompt(messages=messages, missing_variables=rendered.missing)
