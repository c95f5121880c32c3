"""A prompt store that fails on purpose, for ``bench/soak.py``.

    PROMPT_MIDDLEWARE_STORES=flaky=bench.flaky_store:make

serves three prompts (``soak/text``, ``soak/chat`` in versions 1 and 2, ``soak/support``) and
fails ``FLAKY_STORE_FAILURE_RATE`` (default 0.1) of its ``get_prompt`` calls with
:class:`PromptStoreUnavailable`, at random but reproducibly (``FLAKY_STORE_SEED``). Each call
takes a millisecond, as a store on the same network would. The cache in front of it must
hide every failure once a prompt has been fetched once.
"""

from __future__ import annotations

import asyncio
import os
import random

from prompt_middleware import (
    ChatMessage,
    Placeholder,
    Prompt,
    PromptNotFound,
    PromptQuery,
    PromptStoreUnavailable,
)

__all__ = ["PROMPTS", "FlakyStore", "make"]

_CONFIG = {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 200}

PROMPTS: tuple[Prompt, ...] = (
    Prompt(
        name="soak/text",
        version=1,
        type="text",
        prompt="Write a one-line greeting for {{name}}, who just joined {{company}}.",
        config=_CONFIG,
        labels=("production",),
    ),
    Prompt(
        name="soak/chat",
        version=1,
        type="chat",
        prompt=(ChatMessage("system", "You answer in {{language}}."), Placeholder("messages")),
        config=_CONFIG,
        labels=(),
    ),
    Prompt(
        name="soak/chat",
        version=2,
        type="chat",
        prompt=(
            ChatMessage("system", "You answer in {{language}}, in at most two sentences."),
            Placeholder("messages"),
        ),
        config={**_CONFIG, "temperature": 0.0},
        labels=("production",),
    ),
    Prompt(
        name="soak/support",
        version=3,
        type="chat",
        prompt=(
            ChatMessage("system", "You support {{product}}. Be brief."),
            Placeholder("messages"),
        ),
        config={"model": "gpt-4o", "max_tokens": 300},
        labels=("production", "staging"),
    ),
)


class FlakyStore:
    """The prompts above; ``failure_rate`` of the calls raise PromptStoreUnavailable."""

    def __init__(self, *, failure_rate: float = 0.1, seed: int = 0) -> None:
        self._failure_rate = failure_rate
        self._random = random.Random(seed)  # fault injection, not cryptography
        self.calls = 0
        self.failures = 0

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        self.calls += 1
        await asyncio.sleep(0.001)
        if self._random.random() < self._failure_rate:
            self.failures += 1
            raise PromptStoreUnavailable("The flaky store failed on purpose.")
        for prompt in PROMPTS:
            if prompt.name != query.name:
                continue
            if query.version is not None and prompt.version == query.version:
                return prompt
            if query.version is None and (query.label or "production") in prompt.labels:
                return prompt
        raise PromptNotFound(f"Prompt {query.describe()} not found.", param="prompt_id")

    async def aclose(self) -> None:
        return None


def make() -> FlakyStore:
    """The factory ``PROMPT_MIDDLEWARE_STORES`` calls, configured from the environment."""
    return FlakyStore(
        failure_rate=float(os.environ.get("FLAKY_STORE_FAILURE_RATE", "0.1")),
        seed=int(os.environ.get("FLAKY_STORE_SEED", "0")),
    )
