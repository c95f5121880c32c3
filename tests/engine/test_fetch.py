"""Fetch: the cache walk (fresh, then stale, then the store), plans that follow new prompt
versions, and whether a request waited."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import structlog

from prompt_middleware import Settings
from prompt_middleware.cache import CachePolicy, CacheStatus, PromptCache
from prompt_middleware.engine.fetch import PromptFetcher
from prompt_middleware.engine.plan import PromptPlan
from prompt_middleware.engine.resolve import Target
from prompt_middleware.errors import (
    InvalidPromptRequest,
    PromptNotFound,
    PromptStoreUnavailable,
    RequestError,
)
from prompt_middleware.prompts import DEFAULT_LABEL, Prompt, PromptQuery
from prompt_middleware.stores.registry import StoreBinding
from tests.engine.helpers import (
    EngineFactory,
    RecordingObserver,
    header,
    managed,
)
from tests.fakes.clock import FakeClock
from tests.fakes.memory import MemoryStore, text_prompt, unavailable

# --- 2. plans follow new prompt versions ---------------------------------------------------

NEW_GREETING = text_prompt(
    "greeting", "v3 {{name}}", version=3, config={"model": "openai/gpt-4.1", "temperature": 0.7}
)


async def test_an_invalidated_prompt_is_rendered_from_its_new_version(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    engine = make_engine()
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    old = await managed(engine, body)
    assert msgspec.json.decode(old.body) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "v1 A"}],
    }
    assert header(old, b"x-prompt-version") == b"1"

    store.prompts = [NEW_GREETING]
    engine.cache.invalidate(("mem", PromptQuery("greeting", label="production")))
    new = await managed(engine, body)
    assert msgspec.json.decode(new.body) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "v3 A"}],
        "temperature": 0.7,
    }
    assert list(new.headers) == [
        (b"x-prompt-name", b"greeting"),
        (b"x-prompt-version", b"3"),
        (b"x-prompt-store", b"mem"),
        (b"x-prompt-cache", b"miss"),
    ]


async def test_an_expired_prompt_is_refreshed_and_then_rendered_from_its_new_version(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    # TTL 0: every entry is expired as soon as it is stored (the clock never goes back), so
    # each request is served stale while one background refresh runs.
    engine = make_engine(Settings(default_store="mem", cache_ttl_seconds=0))
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "B"}}
    assert header(await managed(engine, body), b"x-prompt-version") == b"1"

    store.prompts = [NEW_GREETING]
    stale = await managed(engine, body)  # served at once while the refresh runs
    assert (header(stale, b"x-prompt-version"), header(stale, b"x-prompt-cache")) == (
        b"1",
        b"stale",
    )
    assert msgspec.json.decode(stale.body)["messages"] == [{"role": "user", "content": "v1 B"}]
    await engine.cache.drain()

    refreshed = await managed(engine, body)
    assert list(refreshed.headers) == [
        (b"x-prompt-name", b"greeting"),
        (b"x-prompt-version", b"3"),
        (b"x-prompt-store", b"mem"),
        (b"x-prompt-cache", b"stale"),
    ]
    assert msgspec.json.decode(refreshed.body) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "v3 B"}],
        "temperature": 0.7,
    }
    await engine.cache.drain()
    assert store.total_calls == 3


async def test_an_injected_cache_is_the_one_the_engine_uses(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    engine = make_engine(cache=cache)
    body = {"model": "m", "prompt_id": "greeting"}
    await managed(engine, body)
    assert ("mem", PromptQuery("greeting", label="production")) in cache
    clock.now += 61
    assert header(await managed(engine, body), b"x-prompt-cache") == b"stale"


async def test_only_a_request_that_waited_for_the_store_says_so(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    # An expired prompt served while it is refreshed in the background did not wait: the
    # forwarder need not look for a departed client at once (a store outage serves every
    # request this way).
    clock = FakeClock()
    engine = make_engine(cache=PromptCache(clock=clock))
    body = {"model": "m", "prompt_id": "greeting"}
    miss = await managed(engine, body)
    hit = await managed(engine, body)
    clock.now += 61
    stale = await managed(engine, body)
    await engine.cache.drain()
    assert [header(r, b"x-prompt-cache") for r in (miss, hit, stale)] == [b"miss", b"hit", b"stale"]
    assert [r.waited for r in (miss, hit, stale)] == [True, False, False]
    assert store.total_calls == 2  # the stale one started the refresh


async def test_a_store_down_after_an_invalidation_makes_one_request_wait_not_each(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    clock = FakeClock()
    engine = make_engine(cache=PromptCache(clock=clock))
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    await managed(engine, body)
    engine.cache.invalidate_prompts("mem", "greeting")
    store.failure = unavailable()
    results = [await managed(engine, body) for _ in range(8)]
    assert [header(r, b"x-prompt-cache") for r in results] == [b"stale"] * 8
    assert [r.waited for r in results] == [True] + [False] * 7
    assert store.total_calls == 2


async def test_serve_stale_answers_only_what_needs_no_wait(store: MemoryStore) -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    key = ("mem", PromptQuery("greeting", label="production"))
    calls: list[int] = []

    async def fetch() -> Prompt:
        calls.append(1)
        return await store.get_prompt(PromptQuery("greeting", label="production"))

    background = CachePolicy(ttl_seconds=60, max_stale_seconds=100)
    waiting = CachePolicy(ttl_seconds=60, max_stale_seconds=100, revalidate_in_background=False)
    assert cache.serve_stale(key, fetch, background) is None  # nothing cached
    prompt, _ = await cache.get(key, fetch, background)
    clock.now += 61
    assert cache.serve_stale(key, fetch, waiting) is None  # this policy fetches first
    assert cache.serve_stale(key, fetch, background) is prompt
    assert cache.serve_stale(key, fetch, background) is prompt  # one refresh in flight
    await cache.drain()
    assert len(calls) == 2
    clock.now += 61 + 101
    assert cache.serve_stale(key, fetch, background) is None  # too stale to serve


# --- 5. PromptCache.get_fresh ----------------------------------------------------------------

POLICY = CachePolicy(ttl_seconds=60, max_stale_seconds=3600)
LABEL = PromptQuery("greeting", label="production")
PINNED = PromptQuery("greeting", version=1)


async def fill(cache: PromptCache, store: MemoryStore, query: PromptQuery) -> Prompt:
    prompt, status = await cache.get(("mem", query), lambda: store.get_prompt(query), POLICY)
    assert status is CacheStatus.MISS
    return prompt


async def test_get_fresh_answers_only_unexpired_entries_and_never_fetches(
    store: MemoryStore,
) -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    assert cache.get_fresh(("mem", LABEL)) is None
    prompt = await fill(cache, store, LABEL)
    pinned = await fill(cache, store, PINNED)
    assert store.total_calls == 2

    clock.now += 59.999
    assert cache.get_fresh(("mem", LABEL)) is prompt
    clock.now += 0.001  # now exactly the expiry: what get() would serve as stale
    assert cache.get_fresh(("mem", LABEL)) is None
    clock.now += 10**6
    assert cache.get_fresh(("mem", LABEL)) is None
    assert cache.get_fresh(("mem", PINNED)) is pinned  # a pinned version never expires
    assert cache.get_fresh(("other", LABEL)) is None

    await cache.drain()  # would run any fetch get_fresh had started
    assert store.total_calls == 2
    assert ("mem", LABEL) in cache  # an expired entry stays for get() to serve stale


async def test_get_fresh_counts_as_a_use_for_the_lru(store: MemoryStore) -> None:
    cache = PromptCache(max_entries=2, clock=FakeClock())
    await fill(cache, store, LABEL)
    await fill(cache, store, PINNED)
    assert cache.get_fresh(("mem", LABEL)) is not None
    await fill(cache, store, PromptQuery("greeting", version=2))
    assert ("mem", LABEL) in cache
    assert ("mem", PINNED) not in cache


# --- the store behind the cache: one plan per fetch, errors translated once -----------------


class FailingStore:
    """A store that fails the way it is told to, counting calls."""

    def __init__(self, error: BaseException | None = None, *, hang: bool = False) -> None:
        self.error = error
        self.hang = hang
        self.calls = 0

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()  # never set: only the store timeout ends the wait
        assert self.error is not None
        raise self.error

    async def aclose(self) -> None:
        pass


def target_for(store: object, prefix: str = "mem") -> Target:
    binding = StoreBinding(prefix, store, CachePolicy(), prefix)  # type: ignore[arg-type]
    return Target(binding, PromptQuery("greeting", label=DEFAULT_LABEL))


async def test_a_hit_is_the_plan_the_fetch_made_and_kept(store: MemoryStore) -> None:
    cache: PromptCache[PromptPlan] = PromptCache()
    fetcher = PromptFetcher(cache, timeout_seconds=5)
    target = target_for(store)
    assert fetcher.fresh(target.cache_key) is None
    plan, status, waited = await fetcher.after_miss(target)
    assert (status, waited) == (CacheStatus.MISS, True)
    assert plan.prompt.name == "greeting"
    assert plan.model == "gpt-4o"
    assert plan.headers == ((b"x-prompt-name", b"greeting"), (b"x-prompt-version", b"1"))
    assert fetcher.fresh(target.cache_key) is plan  # the same plan: built once per fetch
    assert store.total_calls == 1


async def test_a_store_that_does_not_answer_in_time_is_unavailable() -> None:
    store = FailingStore(hang=True)
    fetcher = PromptFetcher(PromptCache(), timeout_seconds=0.01)
    with pytest.raises(PromptStoreUnavailable) as raised:
        await fetcher.after_miss(target_for(store))
    assert str(raised.value) == (
        "The prompt store 'mem' did not answer within 0.01 s "
        "(PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS)."
    )


async def test_an_unexpected_store_error_is_unavailable_and_logged() -> None:
    fetcher = PromptFetcher(PromptCache(), timeout_seconds=5)
    with structlog.testing.capture_logs() as logs, pytest.raises(PromptStoreUnavailable) as raised:
        await fetcher.after_miss(target_for(FailingStore(KeyError("x"))))
    assert str(raised.value) == "The prompt store 'mem' failed: KeyError."
    assert [log["store"] for log in logs if log["event"] == "prompt_store_error"] == ["mem"]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(PromptNotFound("no such prompt"), "not_found"), (InvalidPromptRequest("bad"), "error")],
)
async def test_the_store_own_errors_pass_as_they_are_and_are_observed(
    error: RequestError, outcome: str
) -> None:
    observer = RecordingObserver()
    fetcher = PromptFetcher(PromptCache(), timeout_seconds=5, observer=observer)
    with pytest.raises(type(error)) as raised:
        await fetcher.after_miss(target_for(FailingStore(error)))
    assert raised.value is error
    assert [(store, seen) for store, seen, _ in observer.fetches] == [("mem", outcome)]
