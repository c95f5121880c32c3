"""The rewrite engine: request body bytes in, the body the upstream should get out.

Three steps, one module each, run by :meth:`RewriteEngine.rewrite`:

1. ``resolve.py``: the request's fields and the settings -> which store, prompt, label or
   version, credentials and model-list entry (a :class:`~.resolve.Resolution`);
2. ``fetch.py``: the prompt through the cache, then the store;
3. ``compose.py``: render, apply parameters, encode.

The ASGI middleware and the httpx2 transport are thin doors onto :meth:`RewriteEngine.rewrite`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Final

import httpx2
import msgspec
import structlog

from prompt_middleware.apis import CHAT, Api
from prompt_middleware.cache import CacheStatus, PromptCache
from prompt_middleware.engine.compose import Composer
from prompt_middleware.engine.fetch import Fetched, PromptFetcher
from prompt_middleware.engine.plan import PromptPlan
from prompt_middleware.engine.resolve import ExperimentChoice, Resolution, Resolver, Target
from prompt_middleware.engine.result import RewriteResult
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.experiments import ControlFallbacks
from prompt_middleware.observe import Observer
from prompt_middleware.prompts import DEFAULT_LABEL, PromptQuery
from prompt_middleware.request import decode_body
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.registry import StoreRegistry

__all__ = ["RewriteEngine", "RewriteResult"]

logger = structlog.get_logger(__name__)

#: The ids of the prompts OpenAI once saved (``pmpt_…``).
OPENAI_PROMPT_PREFIX: Final = "pmpt_"


class RewriteEngine:
    """Rewrites chat requests that name managed prompts; shared by every door."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        cache: PromptCache[PromptPlan] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        observer: Observer | None = None,
        fallbacks: ControlFallbacks | None = None,
    ) -> None:
        self._settings = settings
        self._cache: PromptCache[PromptPlan] = (
            cache if cache is not None else PromptCache(max_entries=settings.cache_max_entries)
        )
        self._stores = StoreRegistry(settings, stores=stores, http_client=http_client)
        self._resolver = Resolver(settings, self._stores)
        self._fetcher = PromptFetcher(
            self._cache, timeout_seconds=settings.store_timeout_seconds, observer=observer
        )
        self._composer = Composer(settings)
        self._observer = observer
        self._fallbacks = fallbacks if fallbacks is not None else ControlFallbacks()

    @property
    def experiment_fallbacks(self) -> ControlFallbacks:
        """Control fallbacks of the experiments, counted per (experiment, variant)."""
        return self._fallbacks

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def cache(self) -> PromptCache[PromptPlan]:
        return self._cache

    @property
    def fetcher(self) -> PromptFetcher:
        return self._fetcher

    @property
    def stores(self) -> StoreRegistry:
        return self._stores

    async def rewrite(
        self, body: bytes, headers: Iterable[tuple[bytes, bytes]] = (), api: Api = CHAT
    ) -> RewriteResult | None:
        """The rewritten request, or None when the body must go on unchanged.

        ``headers`` (ASGI's or an HTTP client's raw pairs) are read only by an experiment keyed on a
        header: a door passes the list it has, never a copy. ``api`` is the route's API
        (README, "Three APIs"): where the rendered prompt and its parameters go.

        Raises a :class:`RequestError` subclass for anything the client must fix or the
        store could not serve.
        """
        fields = decode_body(body)
        if api.prepares:
            fields = api.prepare(fields)
        request = self._resolver.resolve(fields, headers, api.user_of)
        if request is None:
            return None
        target = request.target
        if target is None:
            return self._composer.without_prompt(fields, request, api)
        plan = self._fetcher.fresh(target.cache_key)
        try:
            if plan is not None:
                status, waited = CacheStatus.HIT, False
            elif (choice := request.experiment_choice) is None or choice.control is None:
                plan, status, waited = await self._fetcher.after_miss(target)
            else:
                request, (plan, status, waited) = await self._variant_or_control(
                    request, target, choice, choice.control
                )
                target = request.target or target
        except PromptNotFound as exc:
            if target.query.name.startswith(OPENAI_PROMPT_PREFIX):
                raise _saved_prompt_gone(exc) from None
            raise
        return self._composer.compose(fields, request, target, plan, status, waited, api)

    async def _variant_or_control(
        self, request: Resolution, candidate: Target, choice: ExperimentChoice, control: Target
    ) -> tuple[Resolution, Fetched]:
        """A candidate variant, or the control when the candidate cannot be served.

        Not found, or its store failing with no stale copy: the control is served, and the
        fallback counted and (at most once a minute per experiment) warned about. The failure
        is remembered (a store's by the cache, a prompt not found by the fallbacks): until the
        store may be asked again, the candidate's requests go straight to the control. Only a
        failing control is the client's error.
        """
        key = candidate.cache_key
        # A store failure the cache remembers answers at once; a prompt not found, the cache
        # does not remember (a new prompt shows at once): the fallbacks do, for variants.
        reason: str | None = None
        if self._fallbacks.known_missing(key):
            reason = PromptNotFound.code
        elif isinstance(failure := self._cache.remembered_failure(key), PromptStoreUnavailable):
            reason = failure.code
        waited = False
        if reason is None:
            try:
                return request, await self._fetcher.after_miss(candidate)
            except (PromptNotFound, PromptStoreUnavailable) as exc:
                reason, waited = exc.code, True
                if isinstance(exc, PromptNotFound):
                    retry_after = candidate.binding.policy.retry_after_failure_seconds
                    self._fallbacks.not_found(key, retry_after)
        split, arm = choice.split, choice.arm
        self._fallbacks.record(split, arm, reason)
        if self._observer is not None:
            self._observer.experiment_fallback(split.name, arm.name)
        served = msgspec.structs.replace(
            request, target=control, experiment_choice=ExperimentChoice(split, split.control, None)
        )
        plan = self._fetcher.fresh(control.cache_key)
        if plan is not None:
            status = CacheStatus.HIT
        else:
            plan, status, waited_for_control = await self._fetcher.after_miss(control)
            waited = waited or waited_for_control
        # x-prompt-cache says "miss" whenever this request waited for a store.
        return served, (plan, CacheStatus.MISS if waited else status, waited)

    async def prewarm(self) -> None:
        """Fetch the prompts of ``PROMPT_MIDDLEWARE_PREWARM`` into the cache."""
        binding = self._stores.resolve(None)
        queries = [_parse_prewarm(item) for item in self._settings.prewarm]
        results = await asyncio.gather(
            *(self._fetcher.get(binding, query) for query in queries), return_exceptions=True
        )
        for query, result in zip(queries, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("prompt_prewarm_failed", prompt=query.name, error=str(result))

    async def aclose(self) -> None:
        """Stop background refreshes and close every store's connections."""
        await self._cache.aclose()
        await self._stores.aclose()


def _saved_prompt_gone(exc: PromptNotFound) -> PromptNotFound:
    """Not found, for a prompt once saved at OpenAI: where it should live now."""
    return PromptNotFound(
        f"{exc.message}. OpenAI shut down its saved prompts on 30 November 2026: put this "
        "prompt in your prompt store under the same id (a file of that name in the prompt "
        "folder, PROMPT_MIDDLEWARE_PROMPTS_DIR, or a Langfuse prompt of that name) and it is "
        "served from there, your code unchanged.",
        param=exc.param,
    )


def _parse_prewarm(item: str) -> PromptQuery:
    name, _, label = item.partition("@")
    return PromptQuery(name, label=label or DEFAULT_LABEL)
