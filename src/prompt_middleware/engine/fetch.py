"""Step 2 of a rewrite: the prompt a :class:`Target` names, through the cache, then the store.

The cache walk, in order: an unexpired entry (``get_fresh``: the hit path, no coroutine and
no closure); an expired entry the store's policy serves while one background refresh runs
(``serve_stale``: nothing awaited); only then does the request wait for the store
(``wait_for_store``, which joins a fetch already in flight and falls back to the stale entry
when the store fails). A failed store call is remembered for a few seconds: meanwhile
``serve_stale`` answers with the stale entry, or ``wait_for_store`` with the error, at once.
The cache keeps a :class:`PromptPlan`, built once per fetch.

A store's errors are translated here, once: a timeout or any unexpected exception becomes
:class:`PromptStoreUnavailable`; the store's own :class:`RequestError`\\ s pass as they are.

With :meth:`PromptFetcher.keep_copies` (the sidecar, with Redis), every prompt fetched is
handed to the copies (which write it off the request path), and a prompt the cache cannot
answer while its store is unavailable is looked up there: served stale, and kept in the cache
as a stale entry so that the next requests do not wait for the store again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

import structlog

from prompt_middleware.cache import CacheKey, CacheStatus, PromptCache
from prompt_middleware.engine.plan import PromptPlan
from prompt_middleware.engine.resolve import Target
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable, RequestError
from prompt_middleware.observe import FetchOutcome, Observer
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores.registry import StoreBinding

__all__ = ["Copies", "Fetched", "PromptFetcher"]

logger = structlog.get_logger(__name__)

#: A plan, how the cache served it, and whether the request waited for the store.
Fetched = tuple[PromptPlan, CacheStatus, bool]


class Copies(Protocol):
    """Last known good copies of fetched prompts, kept elsewhere (Redis) for every replica."""

    def remember(self, store_key: Hashable, query: PromptQuery, prompt: Prompt) -> None:
        """Keep ``prompt`` as the copy for this entry; returns at once."""

    async def recall(self, store_key: Hashable, query: PromptQuery) -> tuple[Prompt, float] | None:
        """The copy for this entry and its age in seconds, if one can still be served; the
        wait is bounded."""


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
        self._copies: Copies | None = None
        # One copy lookup per key at a time: a cold stampede on a failing store reads once.
        self._recalls: dict[CacheKey, asyncio.Task[PromptPlan | None]] = {}
        #: The first step of the walk, bound once: ``fresh(target.cache_key)``.
        self.fresh = cache.get_fresh

    def keep_copies(self, copies: Copies) -> None:
        """Hand every fetched prompt to ``copies``; fall back on them when a store fails."""
        self._copies = copies

    async def after_miss(self, target: Target) -> Fetched:
        """The rest of the walk, once :attr:`fresh` found nothing."""
        key, policy = target.cache_key, target.binding.policy
        fetch = self._fetcher(target.binding, target.query)
        plan = self._cache.serve_stale(key, fetch, policy)
        if plan is not None:
            return plan, CacheStatus.STALE, False
        plan, status = await self._from_store(target, fetch)
        return plan, status, True

    async def get(
        self, binding: StoreBinding, query: PromptQuery
    ) -> tuple[PromptPlan, CacheStatus]:
        """The whole walk for one prompt (prewarming)."""
        target = Target(binding, query)
        plan = self.fresh(target.cache_key)
        if plan is not None:
            return plan, CacheStatus.HIT
        plan, status, _ = await self.after_miss(target)
        return plan, status

    async def _from_store(
        self, target: Target, fetch: Callable[[], Awaitable[PromptPlan]]
    ) -> tuple[PromptPlan, CacheStatus]:
        """The store through the cache; the last known good copy when the store is down."""
        key = target.cache_key
        try:
            return await self._cache.wait_for_store(key, fetch, target.binding.policy)
        except PromptStoreUnavailable:
            if self._copies is None:
                raise
            task = self._recalls.get(key)
            if task is None:
                task = asyncio.create_task(self._recall(target))
                self._recalls[key] = task
                task.add_done_callback(lambda _: self._recalls.pop(key, None))
            plan = await asyncio.shield(task)
            if plan is None:
                raise
            return plan, CacheStatus.STALE

    async def _recall(self, target: Target) -> PromptPlan | None:
        assert self._copies is not None
        binding, query = target.binding, target.query
        found = await self._copies.recall(binding.cache_key, query)
        if found is None:
            return None
        prompt, age = found
        plan = PromptPlan(prompt)
        self._cache.add_stale(target.cache_key, plan, age_seconds=age, policy=binding.policy)
        logger.warning(
            "prompt_served_from_last_known_good",
            store=binding.prefix,
            prompt=query.name,
            age_seconds=round(age, 1),
        )
        return plan

    def _fetcher(
        self, binding: StoreBinding, query: PromptQuery
    ) -> Callable[[], Awaitable[PromptPlan]]:
        return lambda: self._fetch_plan(binding, query)

    async def _fetch_plan(self, binding: StoreBinding, query: PromptQuery) -> PromptPlan:
        prompt = await self._fetch(binding, query)
        if self._copies is not None:
            self._copies.remember(binding.cache_key, query, prompt)
        return PromptPlan(prompt)

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
