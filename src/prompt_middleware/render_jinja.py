"""Prompts that need more than ``{{variable}}`` substitution: Jinja templates, input schemas.

:func:`~prompt_middleware.prepare.prepare_prompt` gives a prompt with Jinja logic or an input
schema a :class:`CheckedPrompt`: it checks the input schema, then renders the compiled Jinja
template (or the plain one, for a schema without logic). Every other prompt keeps the
:class:`~prompt_middleware.render.PreparedPrompt` it always had, so it pays nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from prompt_middleware.errors import InvalidPromptRequest, PromptStoreUnavailable
from prompt_middleware.input_schema import InputSchema
from prompt_middleware.jinja import (
    JinjaMessages,
    PromptTemplate,
    RenderFailed,
    TemplateInvalid,
    TooLarge,
    compile_jinja,
    is_plain,
)
from prompt_middleware.prompts import ChatMessage, Prompt
from prompt_middleware.render import (
    PreparedPrompt,
    RenderedPrompt,
    RenderOptions,
    missing_variables_error,
    too_large_error,
)

__all__ = ["CheckedPrompt", "jinja_template"]

logger = structlog.get_logger(__name__)


def jinja_template(prompt: Prompt) -> PromptTemplate | None:
    """The compiled template of a Jinja prompt that needs one; None for the plain renderer.

    Raises :class:`~prompt_middleware.jinja.TemplateInvalid` for a template that cannot be
    compiled."""
    language, body = prompt.template_language, prompt.prompt
    if language == "dotprompt":
        if not isinstance(body, str):
            raise TemplateInvalid("a dotprompt prompt is one template, not a list of messages", 1)
        return compile_jinja(body, split_roles=True)
    if language != "jinja":
        return None
    if isinstance(body, str):
        return None if is_plain(body) else compile_jinja(body, split_roles=False)
    messages = [item for item in body if isinstance(item, ChatMessage)]
    if all(is_plain(message.content) for message in messages):
        return None
    if len(messages) != len(body):
        raise TemplateInvalid("a Jinja chat prompt cannot hold placeholders", 1)
    return JinjaMessages(
        tuple((m.role, compile_jinja(m.content, split_roles=False)) for m in messages)
    )


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
        """Check the variables, then render; see :func:`~prompt_middleware.prepare.render_prompt`.

        Raises :class:`InvalidPromptRequest` for variables the schema refuses or the template
        fails on, and as the renderer does; :class:`PromptStoreUnavailable` when the sandbox
        stops the template.
        """
        if self._schema is not None:
            self._schema.check(variables, self.prompt.name)
        if self._plain is not None:
            return self._plain.render(variables, client_messages, options)
        assert self._template is not None
        try:
            rendered = self._template.render(variables, options.max_rendered_chars)
        except TooLarge:
            raise too_large_error(self.prompt.name) from None
        except RenderFailed as exc:
            raise self._failed(exc) from None
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

    def _failed(self, exc: RenderFailed) -> InvalidPromptRequest | PromptStoreUnavailable:
        prompt = self.prompt
        where = f"Prompt '{prompt.name}' cannot be rendered: line {exc.line} of its template"
        if exc.unsafe:
            # What the sandbox stops is the prompt's fault, not the client's.
            logger.warning(
                "prompt_template_unsafe",
                prompt=prompt.name,
                version=prompt.version,
                line=exc.line,
                reason=exc.reason,
            )
            return PromptStoreUnavailable(f"{where}: the sandbox stopped it ({exc.reason})")
        return InvalidPromptRequest(
            f"{where}, with these prompt_variables: {exc.reason}", param="prompt_variables"
        )
