"""The prompt cache in front of every store (README, "The cache").

It keeps whatever its fetch returns for a prompt: the engine fetches a prompt together with
what it gives every request (``engine/plan.py``), so that work is done once per version.

* A label is fresh for ``ttl_seconds``; a pinned version never changes and stays until the
  cache is full (unless the policy says versions can change, as files can).
* An expired entry is served at once while one background refresh runs
  (stale-while-revalidate).
* Concurrent misses for one key make one store call (single-flight); a caller that goes away
  does not cancel the call the others wait for.
* When the store fails, the stale entry is served for up to ``max_stale_seconds`` past its
  expiry; a ``PromptNotFound`` evicts.
* A failure is remembered: the store is asked again for that key at most once per 5 s (or per
  TTL when shorter) from the failed call's end; in between a request is answered at once, from
  the stale copy or with the remembered error, never by waiting for a store that just failed.
* :meth:`invalidate_prompts` (a webhook, ``/cache/invalidate``) makes every entry of a prompt
  wait for the store before it is served again (a remembered failure is forgotten); the old
  entry stays as the stale copy for a store that fails. :meth:`expire_prompts` makes entries
  count as expired: served at once while one background refresh runs.

The clock is injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Generic

import structlog

from prompt_middleware.errors import PromptNotFound
from prompt_middleware.prompts import Prompt, PromptQuery

__all__ = ["CacheKey", "CachePolicy", "CacheStatus", "PromptCache", "prompt_matcher"]

logger = structlog.get_logger(__name__)

# A store's identity (its prefix, plus a credential set where one store serves several)
# and the query: one tenant's entry is never another tenant's.
CacheKey = tuple[Hashable, PromptQuery]

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    #: What the cache keeps per key: a :class:`Prompt` unless told otherwise.
    Value = TypeVar("Value", default=Prompt)
else:
    from typing import TypeVar

    Value = TypeVar("Value")  # defaults to Prompt for the type checker only

Fetch = Callable[[], Awaitable[Value]]

# After a failed store call, wait this long (capped by the TTL) before asking again for that
# key, so a store that is down sees a trickle of requests rather than one per client request.
_RETRY_AFTER_FAILURE_SECONDS = 5.0


class CacheStatus(StrEnum):
    """How a prompt was served; the value is what ``x-prompt-cache`` shows."""

    HIT = "hit"
    MISS = "miss"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long a store's prompts are fresh, and how they are refreshed."""

    ttl_seconds: float = 60.0
    max_stale_seconds: float = 86400.0
    versions_are_immutable: bool = True
    revalidate_in_background: bool = True

    @property
    def retry_after_failure_seconds(self) -> float:
        """How long a failed store call is remembered: the store is not asked again sooner."""
        return min(self.ttl_seconds, _RETRY_AFTER_FAILURE_SECONDS)


@dataclass(slots=True)
class _Entry(Generic[Value]):
    prompt: Value
    expires_at: float
    #: The store is not asked for this key before then (it failed a moment ago).
    next_refresh_at: float
    #: Invalidated: never served again before a fetch is tried (only if the store fails).
    refetch: bool = False


@dataclass(slots=True)
class _Failure:
    """A key's last store call failed, with nothing cached to serve in its place."""

    error: Exception
    retry_at: float


def prompt_matcher(store: Hashable | None, prompt: str | None) -> Callable[[CacheKey], bool]:
    """True for the keys of ``prompt`` in ``store`` (a store's prefix); None matches all."""

    def matches(key: CacheKey) -> bool:
        return (store is None or store_of(key) == store) and (
            prompt is None or key[1].name == prompt
        )

    return matches


def store_of(key: CacheKey) -> Hashable:
    """The prefix of the store a key belongs to: a store's key is its prefix, or a tuple that
    starts with it (the prefix, then what tells its credential sets apart)."""
    store = key[0]
    return store[0] if isinstance(store, tuple) and store else store


class PromptCache(Generic[Value]):
    """A bounded LRU of prompts with single-flight fetches and stale-while-revalidate.

    The walk, in order: :meth:`get_fresh` (an unexpired entry; no coroutine, no closure),
    :meth:`serve_stale` (an expired entry the policy serves while it refreshes in the
    background; nothing awaited), :meth:`wait_for_store` (the only step that waits).
    :meth:`get` is the three in that order.
    """

    def __init__(self, *, max_entries: int = 1000, clock: Callable[[], float] = time.monotonic):
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry[Value]] = OrderedDict()
        self._in_flight: dict[CacheKey, asyncio.Task[Value]] = {}
        # Fetches begun before an invalidation of their key: still awaited by whoever joined
        # them, never stored, never joined again.
        self._detached: set[asyncio.Task[Value]] = set()
        # Keys with no entry whose store call failed: the error is answered until retry_at.
        self._failures: OrderedDict[CacheKey, _Failure] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    async def get(
        self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy
    ) -> tuple[Value, CacheStatus]:
        """The prompt for ``key``, calling ``fetch`` only when the cache cannot answer."""
        fresh = self.get_fresh(key)
        if fresh is not None:
            return fresh, CacheStatus.HIT
        stale = self.serve_stale(key, fetch, policy)
        if stale is not None:
            return stale, CacheStatus.STALE
        return await self.wait_for_store(key, fetch, policy)

    async def wait_for_store(
        self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy
    ) -> tuple[Value, CacheStatus]:
        """Fetch ``key`` (joining a fetch in flight) when neither a fresh nor a servable
        stale entry answers; an expired entry still answers when the store fails, up to
        ``max_stale_seconds`` past its expiry."""
        entry = self._entries.get(key)
        if entry is None:
            failure = self._failures.get(key)
            if failure is not None and key not in self._in_flight:
                if self._clock() < failure.retry_at:
                    # A copy per request: re-raising one instance would grow its traceback.
                    raise copy.copy(failure.error).with_traceback(None)
                del self._failures[key]
            return await self._fetch_once(key, fetch, policy), CacheStatus.MISS
        servable = self._clock() - entry.expires_at <= policy.max_stale_seconds
        try:
            return await self._fetch_once(key, fetch, policy), CacheStatus.MISS
        except PromptNotFound:
            raise
        except Exception:
            if not servable:
                raise
            logger.warning("prompt_served_stale", store=key[0], prompt=key[1].name)
            return entry.prompt, CacheStatus.STALE

    def remembered_failure(self, key: CacheKey) -> Exception | None:
        """The error of ``key``'s last store call while :meth:`wait_for_store` answers with it
        at once (no entry to serve, the retry window not passed, no fetch in flight)."""
        failure = self._failures.get(key)
        if failure is None or key in self._entries or key in self._in_flight:
            return None
        return failure.error if self._clock() < failure.retry_at else None

    def serve_stale(self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy) -> Value | None:
        """The expired prompt for ``key`` when the policy serves it while it is refreshed in
        the background (the refresh is started here when due), without awaiting anything;
        None when :meth:`wait_for_store` must wait. Call :meth:`get_fresh` first.

        Within the retry window of a failed store call every entry is served this way, an
        invalidated one too: the store that just failed is not waited for again.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if now - entry.expires_at > policy.max_stale_seconds:
            return None
        if now < entry.next_refresh_at:
            return entry.prompt
        if entry.refetch or not policy.revalidate_in_background:
            return None
        if key not in self._in_flight:
            self._start_fetch(key, fetch, policy)
        return entry.prompt

    def get_fresh(self, key: CacheKey) -> Value | None:
        """The prompt for ``key`` if the cache holds it unexpired, without awaiting anything.

        The hot path of a cache hit: no coroutine, no fetch closure. None means "ask
        :meth:`serve_stale`, then :meth:`wait_for_store`".
        """
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry.expires_at:
            return None
        self._entries.move_to_end(key)
        return entry.prompt

    def invalidate(self, key: CacheKey) -> None:
        """Forget ``key``: the next request fetches it."""
        self._entries.pop(key, None)
        self._failures.pop(key, None)

    def invalidate_prompts(self, store: Hashable | None = None, prompt: str | None = None) -> int:
        """Make every entry of ``prompt`` in ``store`` (a store's prefix; None: every prompt,
        every store) ask the store before it is served again: every label, version and
        credential set. Returns how many entries were invalidated.

        An entry is kept, expired, as the stale copy served if that fetch fails. A fetch
        already in flight may have read the store before the change: it still answers those
        who joined it, but its result is not kept and later requests start a new one.
        """

        matches = prompt_matcher(store, prompt)
        now = self._clock()
        invalidated = 0
        for key, entry in self._entries.items():
            if matches(key):
                entry.expires_at = min(entry.expires_at, now)
                entry.next_refresh_at = now
                entry.refetch = True
                invalidated += 1
        for key in [key for key in self._failures if matches(key)]:
            del self._failures[key]
        for key in [key for key in self._in_flight if matches(key)]:
            self._detached.add(self._in_flight.pop(key))
        return invalidated

    def expire_prompts(
        self, store: Hashable | None = None, *, except_prompt: str | None = None
    ) -> int:
        """Make every entry of ``store`` (None: every store) but those of ``except_prompt``
        count as expired: each is served at once while one background refresh runs (as the
        policy says), pinned versions too. Returns how many entries were expired.

        For a store whose prompts embed others (Langfuse resolves ``@@@langfusePrompt:…@@@``
        when it serves a prompt): one prompt changed, any other may have changed with it.
        """
        matches = prompt_matcher(store, None)
        now = self._clock()
        expired = 0
        for key, entry in self._entries.items():
            if matches(key) and key[1].name != except_prompt and not entry.refetch:
                entry.expires_at = min(entry.expires_at, now)
                entry.next_refresh_at = now
                expired += 1
        return expired

    def add_stale(
        self, key: CacheKey, value: Value, *, age_seconds: float, policy: CachePolicy
    ) -> bool:
        """Keep ``value``, fetched ``age_seconds`` ago elsewhere (another replica's last known
        good copy), as an expired entry: served stale, refetched as the policy says. False
        (nothing kept) when the cache has an entry for ``key`` or the copy is too old."""
        now = self._clock()
        expires_at = min(now, now - age_seconds + policy.ttl_seconds)
        if key in self._entries or now - expires_at > policy.max_stale_seconds:
            return False
        retry_at = now + policy.retry_after_failure_seconds
        self._failures.pop(key, None)
        self._entries[key] = _Entry(prompt=value, expires_at=expires_at, next_refresh_at=retry_at)
        self._trim()
        return True

    async def drain(self) -> None:
        """Wait until no fetch or background refresh is in flight; their errors are not raised."""
        while self._in_flight or self._detached:
            tasks = [*self._in_flight.values(), *self._detached]
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel background refreshes; called once at shutdown."""
        tasks = [*self._in_flight.values(), *self._detached]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()
        self._detached.clear()
        self._failures.clear()

    async def _fetch_once(self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy) -> Value:
        task = self._in_flight.get(key) or self._start_fetch(key, fetch, policy)
        # shield: one caller's cancellation (a client that went away) must not cancel the
        # fetch the other callers are waiting for.
        return await asyncio.shield(task)

    def _start_fetch(
        self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy
    ) -> asyncio.Task[Value]:
        task = asyncio.get_running_loop().create_task(self._fetch_and_store(key, fetch, policy))
        self._in_flight[key] = task
        task.add_done_callback(lambda done: self._fetch_done(key, done))
        return task

    async def _fetch_and_store(
        self, key: CacheKey, fetch: Fetch[Value], policy: CachePolicy
    ) -> Value:
        try:
            prompt = await fetch()
        except PromptNotFound:
            if self._current(key):
                self._entries.pop(key, None)
            raise
        except Exception as error:
            if self._current(key):
                self._remember_failure(key, error, policy)
            raise
        if not self._current(key):
            return prompt  # invalidated while it ran: it may hold what was just replaced
        now = self._clock()
        pinned = key[1].version is not None and policy.versions_are_immutable
        expires_at = math.inf if pinned else now + policy.ttl_seconds
        self._entries[key] = _Entry(
            prompt=prompt, expires_at=expires_at, next_refresh_at=expires_at
        )
        self._entries.move_to_end(key)
        self._failures.pop(key, None)
        self._trim()
        return prompt

    def _remember_failure(self, key: CacheKey, error: Exception, policy: CachePolicy) -> None:
        """Answer ``key`` without the store until the retry window has passed."""
        now = self._clock()
        retry_at = now + policy.retry_after_failure_seconds
        entry = self._entries.get(key)
        if entry is not None and now - entry.expires_at <= policy.max_stale_seconds:
            entry.next_refresh_at = retry_at
            return
        self._entries.pop(key, None)  # too stale to serve: the error answers in its place
        self._failures[key] = _Failure(error, retry_at)
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)

    def _current(self, key: CacheKey) -> bool:
        """True in the fetch task that is ``key``'s fetch in flight (not a detached one)."""
        return self._in_flight.get(key) is asyncio.current_task()

    def _trim(self) -> None:
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _fetch_done(self, key: CacheKey, task: asyncio.Task[Value]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        self._detached.discard(task)
        # A background refresh has no one awaiting it: read its error here so asyncio does
        # not report it as never retrieved. Callers that awaited it saw it already.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.debug(
                "prompt_fetch_failed", store=key[0], prompt=key[1].name, error=type(error).__name__
            )
