"""The prompt cache: TTL, pinned versions, single-flight, stale-while-revalidate, stale-on-error."""

from __future__ import annotations

import asyncio

import pytest

from prompt_middleware.cache import CachePolicy, CacheStatus, PromptCache
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.prompts import Prompt, PromptQuery
from tests.fakes.clock import FakeClock
from tests.fakes.memory import MemoryStore, text_prompt, unavailable

POLICY = CachePolicy(ttl_seconds=60, max_stale_seconds=3600)
LABEL = PromptQuery("greeting", label="production")
PINNED = PromptQuery("greeting", version=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(text_prompt("greeting", "v1"))


@pytest.fixture
def cache(clock: FakeClock) -> PromptCache:
    return PromptCache(max_entries=100, clock=clock)


async def get(
    cache: PromptCache, store: MemoryStore, query: PromptQuery = LABEL, policy: CachePolicy = POLICY
) -> tuple[Prompt, CacheStatus]:
    return await cache.get(("memory", query), lambda: store.get_prompt(query), policy)


async def settle() -> None:
    """Let background refresh tasks run to completion (no timing involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_first_request_misses_then_hits_within_ttl(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    assert (await get(cache, store))[1] is CacheStatus.MISS
    for _ in range(1000):
        clock.now += 0.01
        prompt, status = await get(cache, store)
        assert status is CacheStatus.HIT
        assert prompt.prompt == "v1"
    assert store.total_calls == 1


async def test_concurrent_misses_make_one_store_call(
    cache: PromptCache, store: MemoryStore
) -> None:
    store.gate = asyncio.Event()
    waiting = [asyncio.create_task(get(cache, store)) for _ in range(200)]
    await settle()
    store.gate.set()
    results = await asyncio.gather(*waiting)
    assert store.total_calls == 1
    assert {status for _, status in results} == {CacheStatus.MISS}


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(
    cache: PromptCache, store: MemoryStore
) -> None:
    store.gate = asyncio.Event()
    first = asyncio.create_task(get(cache, store))
    second = asyncio.create_task(get(cache, store))
    await settle()
    first.cancel()
    await settle()
    store.gate.set()
    prompt, _ = await second
    assert prompt.prompt == "v1"
    assert first.cancelled()
    assert store.total_calls == 1


async def test_expired_label_is_served_stale_while_one_refresh_runs(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store)
    store.put(text_prompt("greeting", "v2", version=2))
    clock.now += 61
    store.gate = asyncio.Event()
    statuses = [(await get(cache, store))[1] for _ in range(50)]
    assert statuses == [CacheStatus.STALE] * 50
    await settle()
    assert store.total_calls == 2  # the first fetch and one refresh, however many requests
    store.gate.set()
    await settle()
    prompt, status = await get(cache, store)
    assert (prompt.prompt, status) == ("v2", CacheStatus.HIT)


async def test_store_failure_serves_stale_copy_until_max_stale(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store)
    store.failure = unavailable()
    clock.now += 61
    prompt, status = await get(cache, store)
    assert (prompt.prompt, status) == ("v1", CacheStatus.STALE)
    await settle()
    clock.now += 3600  # now past ttl + max_stale
    with pytest.raises(PromptStoreUnavailable):
        await get(cache, store)


async def test_failed_refresh_is_retried_after_a_backoff_not_per_request(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store)
    store.failure = unavailable()
    clock.now += 61
    for _ in range(20):
        await get(cache, store)
        await settle()
    assert store.total_calls == 2
    clock.now += 5
    store.failure = None
    await get(cache, store)
    await settle()
    assert store.total_calls == 3
    assert (await get(cache, store))[1] is CacheStatus.HIT


async def test_not_found_on_refresh_evicts(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store)
    store.prompts.clear()
    clock.now += 61
    assert (await get(cache, store))[1] is CacheStatus.STALE
    await settle()
    assert ("memory", LABEL) not in cache
    with pytest.raises(PromptNotFound):
        await get(cache, store)


async def test_a_cold_failure_is_remembered_until_the_retry_window(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    # No copy to serve: the error itself is remembered, and answered at once.
    store.failure = unavailable()
    failed_at = clock.now
    for _ in range(10):
        with pytest.raises(PromptStoreUnavailable):
            await get(cache, store)
        clock.now += 0.4
    assert store.total_calls == 1
    clock.now = failed_at + 5  # 5 s after the failed call's end
    store.failure = None
    assert (await get(cache, store))[1] is CacheStatus.MISS
    assert store.total_calls == 2


async def test_the_retry_window_is_the_ttl_when_that_is_shorter(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    short = CachePolicy(ttl_seconds=2, max_stale_seconds=3600)
    store.failure = unavailable()
    for _ in range(2):
        with pytest.raises(PromptStoreUnavailable):
            await get(cache, store, policy=short)
    assert store.total_calls == 1
    clock.now += 2
    with pytest.raises(PromptStoreUnavailable):
        await get(cache, store, policy=short)
    assert store.total_calls == 2


async def test_a_store_down_after_an_invalidation_costs_one_call_not_one_per_request(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    key = ("memory", LABEL)
    await get(cache, store)
    cache.invalidate_prompts("memory", "greeting")
    store.failure = unavailable()
    failed_at = clock.now
    assert await get(cache, store) == (text_prompt("greeting", "v1"), CacheStatus.STALE)
    assert store.total_calls == 2  # the one wait
    for _ in range(10):
        # Answered at once: serve_stale is the step that never awaits the store.
        stale = cache.serve_stale(key, lambda: store.get_prompt(LABEL), POLICY)
        assert stale is not None
        assert stale.prompt == "v1"
        assert (await get(cache, store))[1] is CacheStatus.STALE
        clock.now += 0.4
    assert store.total_calls == 2
    clock.now = failed_at + 5  # the retry window has passed: the store is asked again, once
    store.failure = None
    assert (await get(cache, store))[1] is CacheStatus.MISS
    assert (await get(cache, store))[1] is CacheStatus.HIT
    assert store.total_calls == 3


async def test_an_invalidation_forgets_a_remembered_failure(
    cache: PromptCache, store: MemoryStore
) -> None:
    # A 2xx from /cache/invalidate means "ask the store now", failure or not.
    store.failure = unavailable()
    with pytest.raises(PromptStoreUnavailable):
        await get(cache, store)
    store.failure = None
    cache.invalidate_prompts("memory", "greeting")
    assert (await get(cache, store))[1] is CacheStatus.MISS
    await get(cache, store)
    cache.invalidate_prompts()
    store.failure = unavailable()
    assert (await get(cache, store))[1] is CacheStatus.STALE
    cache.invalidate_prompts()  # a Redis re-subscription: everything, once more
    assert (await get(cache, store))[1] is CacheStatus.STALE
    assert store.total_calls == 4


async def test_pinned_version_never_expires(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store, PINNED)
    clock.now += 10**7
    assert (await get(cache, store, PINNED))[1] is CacheStatus.HIT
    assert store.total_calls == 1


async def test_mutable_versions_and_synchronous_revalidation(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    files = CachePolicy(
        ttl_seconds=0.5,
        max_stale_seconds=3600,
        versions_are_immutable=False,
        revalidate_in_background=False,
    )
    await get(cache, store, PINNED, files)
    store.put(text_prompt("greeting", "edited"))
    clock.now += 0.6
    prompt, status = await get(cache, store, PINNED, files)
    assert (prompt.prompt, status) == ("edited", CacheStatus.MISS)
    store.failure = unavailable()
    clock.now += 0.6
    prompt, status = await get(cache, store, PINNED, files)
    assert (prompt.prompt, status) == ("edited", CacheStatus.STALE)


async def test_size_bound_evicts_least_recently_used(clock: FakeClock) -> None:
    cache = PromptCache(max_entries=2, clock=clock)
    store = MemoryStore(*(text_prompt(name, name) for name in "abc"))
    queries = {name: PromptQuery(name, label="production") for name in "abc"}
    await get(cache, store, queries["a"])
    await get(cache, store, queries["b"])
    await get(cache, store, queries["a"])  # a is now the most recently used
    await get(cache, store, queries["c"])
    assert ("memory", queries["a"]) in cache
    assert ("memory", queries["b"]) not in cache
    assert len(cache) == 2


async def test_keys_separate_stores_and_credentials(cache: PromptCache) -> None:
    tenant_a = MemoryStore(text_prompt("greeting", "tenant a"))
    tenant_b = MemoryStore(text_prompt("greeting", "tenant b"))
    a = await cache.get((("langfuse", "key-a"), LABEL), lambda: tenant_a.get_prompt(LABEL), POLICY)
    b = await cache.get((("langfuse", "key-b"), LABEL), lambda: tenant_b.get_prompt(LABEL), POLICY)
    assert (a[0].prompt, b[0].prompt) == ("tenant a", "tenant b")


async def test_aclose_cancels_background_refreshes(
    cache: PromptCache, store: MemoryStore, clock: FakeClock
) -> None:
    await get(cache, store)
    store.gate = asyncio.Event()
    clock.now += 61
    await get(cache, store)
    await settle()
    await cache.aclose()
    assert store.total_calls == 2
