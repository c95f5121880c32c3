"""What a prompt gives every request, worked out once when the prompt is fetched.

The cache keeps a :class:`PromptPlan` per prompt version, so a cache hit finds the parsed
templates (a Jinja template compiled by its store, an input schema read), the prompt's model,
its parameters under each API's names and its ``x-prompt-*`` headers ready.
"""

from __future__ import annotations

from typing import Final

from prompt_middleware.apis import APIS, Writes
from prompt_middleware.header_values import header_value
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import Prompt

__all__ = ["PROVIDER_PREFIX", "PromptPlan"]

#: LiteLLM's provider prefix: ``openai/gpt-4o`` is ``gpt-4o`` to an OpenAI-style upstream.
PROVIDER_PREFIX: Final = "openai/"


class PromptPlan:
    """A fetched prompt, parsed for rendering, with its model, parameters and headers."""

    __slots__ = ("headers", "model", "prepared", "prompt", "writes")

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        self.prepared = prepare_prompt(prompt)
        config = prompt.config if isinstance(prompt.config, dict) else {}
        model = config.get("model")
        self.model = model.removeprefix(PROVIDER_PREFIX) if isinstance(model, str) else None
        # The config's parameters under each API's names, translated once per version.
        self.writes: dict[str, Writes] = {api.name: api.config_writes(config) for api in APIS}
        self.headers = (
            (b"x-prompt-name", header_value(prompt.name)),
            (b"x-prompt-version", header_value(str(prompt.version))),
        )
