"""Step 2 of a rewrite: the prompt a :class:`Target` names, through the cache, then the store.

The cache walk, in order: an unexpired entry (``get_fresh``: the hit path, no coroutine and
no closure); an expired entry the store's policy serves while one background refresh runs
(``serve_stale``: nothing awaited); only then does the request wait for the store
(``wait_for_store``, which joins a fetch already in flight and falls back to the stale entry
when the store fails). The cache keeps a :class:`PromptPlan`, built once per fetch.

A store's errors are translated here, once: a timeout or any unexpected exception becomes
:class:`PromptStoreUnavailable`; the store's own :class:`RequestError`\\ s pass as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from prompt_middleware.cache import CacheStatus, PromptCache
from prompt_middleware.engine.plan import PromptPlan
from prompt_middleware.engine.resolve import Target
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable, RequestError
from prompt_middleware.observe import FetchOutcome, Observer
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores.registry import StoreBinding

__all__ = ["Fetched", "PromptFetcher"]

logger = structlog.get_logger(__name__)

#: A plan, how the cache served it, and whether the request waited for the store.
Fetched = tuple[PromptPlan, CacheStatus, bool]


class PromptFetcher:
    """Fetches plans through one cache, each store call bounded by the store timeout."""

    def __init__(
        self,
        cache: PromptCache[PromptPlan],
        *,
        timeout_seconds: float,
        observer: Observer | None = None,
    ) -> None:
        self._cache = cache
        self._timeout_seconds = timeout_seconds
        self._observer = observer
        #: The first step of the walk, bound once: ``fresh(target.cache_key)``.
        self.fresh = cache.get_fresh

    async def after_miss(self, target: Target) -> Fetched:
        """The rest of the walk, once :attr:`fresh` found nothing."""
        key, policy = target.cache_key, target.binding.policy
        fetch = self._fetcher(target.binding, target.query)
        plan = self._cache.serve_stale(key, fetch, policy)
        if plan is not None:
            return plan, CacheStatus.STALE, False
        plan, status = await self._cache.wait_for_store(key, fetch, policy)
        return plan, status, True

    def get(
        self, binding: StoreBinding, query: PromptQuery
    ) -> Awaitable[tuple[PromptPlan, CacheStatus]]:
        """The whole walk for one prompt (prewarming)."""
        return self._cache.get(
            (binding.cache_key, query), self._fetcher(binding, query), binding.policy
        )

    def _fetcher(
        self, binding: StoreBinding, query: PromptQuery
    ) -> Callable[[], Awaitable[PromptPlan]]:
        return lambda: self._fetch_plan(binding, query)

    async def _fetch_plan(self, binding: StoreBinding, query: PromptQuery) -> PromptPlan:
        return PromptPlan(await self._fetch(binding, query))

    async def _fetch(self, binding: StoreBinding, query: PromptQuery) -> Prompt:
        started = time.perf_counter()
        outcome: FetchOutcome = "error"
        try:
            async with asyncio.timeout(self._timeout_seconds):
                prompt = await binding.store.get_prompt(query)
            outcome = "ok"
            return prompt
        except PromptNotFound:
            outcome = "not_found"
            raise
        except RequestError:
            raise
        except TimeoutError:
            raise PromptStoreUnavailable(
                f"The prompt store '{binding.prefix}' did not answer within "
                f"{self._timeout_seconds:g} s (PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS)."
            ) from None
        except Exception as exc:
            logger.exception("prompt_store_error", store=binding.prefix, prompt=query.name)
            raise PromptStoreUnavailable(
                f"The prompt store '{binding.prefix}' failed: {type(exc).__name__}."
            ) from exc
        finally:
            if self._observer is not None:
                self._observer.store_fetch(binding.prefix, outcome, time.perf_counter() - started)
