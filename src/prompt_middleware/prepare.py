"""A prompt made ready to render: the plain renderer, or the Jinja and input-schema one.

:func:`prepare_prompt` is what the engine keeps per prompt version (in its plan). A prompt
with neither Jinja logic nor an input schema — every Langfuse prompt, every ``.prompt`` file
whose only Jinja is ``{{ name }}`` — gets the :class:`~prompt_middleware.render.PreparedPrompt`
(``render.py``); otherwise a :class:`~prompt_middleware.render_jinja.CheckedPrompt`
(``render_jinja.py``). A template or schema that cannot be read makes the prompt unavailable,
as a store failure does, so the cache serves its last good copy; stores check both when they
read a prompt, so this is a safety net.

Both renderers sit below this module: neither imports the other's dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prompt_middleware.errors import PromptStoreUnavailable
from prompt_middleware.input_schema import InputSchema, SchemaInvalid
from prompt_middleware.jinja import TemplateInvalid
from prompt_middleware.prompts import Prompt
from prompt_middleware.render import PreparedPrompt, RenderedPrompt, RenderOptions
from prompt_middleware.render_jinja import CheckedPrompt, jinja_template

__all__ = ["prepare_prompt", "render_prompt"]


def prepare_prompt(prompt: Prompt) -> PreparedPrompt | CheckedPrompt:
    """``prompt`` made ready to render many times; :class:`PromptStoreUnavailable` when its
    template or input schema cannot be read."""
    try:
        template = jinja_template(prompt)
        schema = None if prompt.input_schema is None else InputSchema.parse(prompt.input_schema)
    except (TemplateInvalid, SchemaInvalid) as exc:
        raise PromptStoreUnavailable(f"Prompt '{prompt.name}' cannot be served: {exc}") from exc
    if template is None and schema is None:
        return PreparedPrompt(prompt)
    return CheckedPrompt(prompt, template, schema)


def render_prompt(
    prompt: Prompt,
    variables: Mapping[str, Any],
    client_messages: Callable[[], Sequence[Any] | None] | None,
    options: RenderOptions,
) -> RenderedPrompt:
    """Render ``prompt`` into chat messages.

    ``client_messages`` returns the request's own ``messages`` (None when it has none); it
    is called only when they are used, so a request whose messages are ignored never has
    them decoded. They are passed on as they are (the items may be ``msgspec.Raw``): they
    fill the messages placeholder or are appended, but are never templated.

    Raises :class:`InvalidPromptRequest` for an unfilled or malformed placeholder, and for
    missing variables when ``options.strict_variables`` is set.
    """
    return prepare_prompt(prompt).render(variables, client_messages, options)
