"""An in-memory prompt store that counts its calls and can be told to fail or to wait."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptMessage, PromptQuery


def text_prompt(
    name: str,
    text: str,
    *,
    version: int = 1,
    config: Any = None,
    labels: Iterable[str] = ("production",),
) -> Prompt:
    return Prompt(
        name=name,
        version=version,
        type="text",
        prompt=text,
        config={} if config is None else config,
        labels=tuple(labels),
    )


def chat_prompt(
    name: str,
    messages: Iterable[tuple[str, str] | str],
    *,
    version: int = 1,
    config: Any = None,
    labels: Iterable[str] = ("production",),
) -> Prompt:
    """``messages``: ``(role, content)`` pairs, or a bare string naming a placeholder."""
    items: list[PromptMessage] = [
        Placeholder(m) if isinstance(m, str) else ChatMessage(role=m[0], content=m[1])
        for m in messages
    ]
    return Prompt(
        name=name,
        version=version,
        type="chat",
        prompt=tuple(items),
        config={} if config is None else config,
        labels=tuple(labels),
    )


class MemoryStore:
    """Prompts by (name, label) and (name, version); ``calls`` counts ``get_prompt``."""

    def __init__(self, *prompts: Prompt) -> None:
        self.prompts: list[Prompt] = list(prompts)
        self.calls: Counter[PromptQuery] = Counter()
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.closed = False

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def put(self, prompt: Prompt) -> None:
        self.prompts = [
            p for p in self.prompts if (p.name, p.version) != (prompt.name, prompt.version)
        ]
        self.prompts.append(prompt)

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        self.calls[query] += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        for prompt in sorted(self.prompts, key=lambda p: str(p.version), reverse=True):
            if prompt.name != query.name:
                continue
            if query.version is not None and prompt.version == query.version:
                return prompt
            if query.version is None and (query.label or "production") in prompt.labels:
                return prompt
        raise PromptNotFound(f"Prompt {query.describe()} not found.", param="prompt_id")

    async def aclose(self) -> None:
        self.closed = True


def unavailable() -> PromptStoreUnavailable:
    return PromptStoreUnavailable("The memory store is down.")


def greeting_store() -> MemoryStore:
    """A factory for ``PROMPT_MIDDLEWARE_STORES=mystore=tests.fakes.memory:greeting_store``."""
    return MemoryStore(text_prompt("hello", "Hello {{name}} from my store"))
