"""What a prompt gives every request, worked out once when the prompt is fetched.

The cache keeps a :class:`PromptPlan` per prompt version, so a cache hit finds the parsed
templates (a Jinja template compiled by its store, an input schema read), the prompt's model,
its parameters under each API's names and its ``x-prompt-*`` headers ready.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from urllib.parse import quote

from prompt_middleware.apis import APIS, Writes
from prompt_middleware.prompts import Prompt
from prompt_middleware.render_jinja import prepare_prompt

__all__ = ["PROVIDER_PREFIX", "PromptPlan", "header_value"]

#: LiteLLM's provider prefix: ``openai/gpt-4o`` is ``gpt-4o`` to an OpenAI-style upstream.
PROVIDER_PREFIX: Final = "openai/"
# Printable ASCII but "%" (the escape) and " " (a header value must not start or end with
# one, and a name may): everything else is percent-encoded.
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


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


@lru_cache(maxsize=4096)
def header_value(value: str) -> bytes:
    """``value`` as a header value. Prompt names come from client input: no CR/LF (header
    splitting), no non-ASCII."""
    return quote(value, safe=_HEADER_SAFE).encode("ascii")
