"""What an invalidation does to one engine, and which store names ``/cache/invalidate`` takes.

An invalidation of (store, prompt) — either may be "every" — reaches two places:

* the stores that keep their own view of their source (the local folder's snapshot) forget
  it, so that the next lookup reads the source as it is now;
* the cache marks every entry of the prompt (every label, version and credential set) to be
  fetched again before it is served;
* in a store whose prompts embed others (Langfuse resolves ``@@@langfusePrompt:…@@@`` when it
  serves a prompt), every other entry of the store counts as expired: served at once while one
  background refresh runs, so a prompt embedding the changed one follows within one refresh.

An experiment's variant remembered as not found is forgotten too: it may be the prompt just
published. The stores forget first: a fetch the cache starts afterwards must not read the old view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

from prompt_middleware.cache import prompt_matcher
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.errors import InvalidPromptRequest, InvalidRequest
from prompt_middleware.live.bus import Invalidation
from prompt_middleware.stores.kinds import STORE_ALIASES

__all__ = ["ForgetsItsSource", "applier", "store_prefixes"]

#: The stores whose prompts may embed other prompts of the same store.
_EMBEDDING_STORES: Final = ("langfuse",)


@runtime_checkable
class ForgetsItsSource(Protocol):
    """A store that answers from its own copy of its source (the local folder)."""

    def forget(self) -> None:
        """Read the source again on the next lookup."""


def applier(engine: RewriteEngine) -> Callable[[Invalidation], None]:
    """A bus subscriber applying each invalidation to ``engine``."""

    def apply(invalidation: Invalidation) -> None:
        for store in _stores_named(engine, invalidation.store):
            if isinstance(store, ForgetsItsSource):
                store.forget()
        engine.cache.invalidate_prompts(invalidation.store, invalidation.prompt)
        # A candidate remembered as not found may have just been created.
        engine.experiment_fallbacks.forget(prompt_matcher(invalidation.store, invalidation.prompt))
        if invalidation.prompt is None:
            return  # every prompt of the store(s) is fetched again already
        for store in _EMBEDDING_STORES:
            if invalidation.store in (None, store):
                engine.cache.expire_prompts(store, except_prompt=invalidation.prompt)

    return apply


def store_prefixes(engine: RewriteEngine) -> Callable[[str], str]:
    """The store prefix a client's store name (or an alias, ``dotprompt``) stands for; an
    :class:`InvalidRequest` for a name that is no store of ``engine``."""
    known = set(engine.stores.prefixes)
    if any(b.integration == "generic_prompt_management" for b in engine.settings.prompts):
        known.add("http")  # the prompts: section's HTTP prompt services

    def prefix(name: str) -> str:
        resolved = STORE_ALIASES.get(name, name)
        if resolved not in known:
            raise InvalidRequest(
                f"There is no prompt store '{name[:100]}': use one of {', '.join(sorted(known))}.",
                param="store",
            )
        return resolved

    return prefix


def _stores_named(engine: RewriteEngine, prefix: str | None) -> list[object]:
    registry = engine.stores
    stores: list[object] = []
    for name in sorted(registry.prefixes) if prefix is None else [prefix]:
        try:
            stores.append(registry.resolve(name).store)
        except InvalidPromptRequest:
            continue  # a known kind that is not configured here
    return stores
