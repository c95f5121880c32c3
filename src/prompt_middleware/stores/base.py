"""The protocol every prompt store implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prompt_middleware.prompts import Prompt, PromptQuery

__all__ = ["PromptStore"]


@runtime_checkable
class PromptStore(Protocol):
    """A source of prompts, such as Langfuse or a folder of prompt files.

    ``get_prompt`` returns the version that ``query`` names. It raises
    :class:`~prompt_middleware.errors.PromptNotFound` when the store has no such prompt,
    label or version, and :class:`~prompt_middleware.errors.PromptStoreUnavailable` when it
    cannot answer; any other exception is treated as the latter. It is never called on a
    cache hit, and concurrent requests for one query share one call, so a store needs no
    cache of its own. ``aclose`` releases connections and is called once at shutdown.
    """

    async def get_prompt(self, query: PromptQuery) -> Prompt: ...

    async def aclose(self) -> None: ...
