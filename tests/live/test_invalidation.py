"""What an invalidation does to one process: the cache, the local folder, and the last known
good copy a cold cache falls back on when its store fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from pathlib import Path

import msgspec
import pytest

from prompt_middleware import Settings
from prompt_middleware.cache import CachePolicy, CacheStatus, PromptCache, store_of
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.engine.fetch import PromptFetcher
from prompt_middleware.engine.plan import PromptPlan
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.live.apply import applier
from prompt_middleware.live.bus import Invalidation, InvalidationBus
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores.local import LocalPromptStore
from prompt_middleware.stores.local import store as local_store
from prompt_middleware.stores.local.scan import Snapshot, scan_folder
from prompt_middleware.stores.registry import StoreBinding
from tests.fakes.clock import FakeClock
from tests.fakes.memory import MemoryStore, text_prompt, unavailable

POLICY = CachePolicy(ttl_seconds=60, max_stale_seconds=3600)
LABEL = PromptQuery("greeting", label="production")
STAGING = PromptQuery("greeting", label="staging")
PINNED = PromptQuery("greeting", version=1)
OTHER = PromptQuery("farewell", label="production")
TENANT_A = ("langfuse", "a" * 64)
TENANT_B = ("langfuse", "b" * 64)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> PromptCache:
    return PromptCache(max_entries=100, clock=clock)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "v1", labels=("production", "staging")),
        text_prompt("farewell", "bye"),
    )


async def get(
    cache: PromptCache, store: MemoryStore, query: PromptQuery = LABEL, at: Hashable = "langfuse"
) -> tuple[Prompt, CacheStatus]:
    return await cache.get((at, query), lambda: store.get_prompt(query), POLICY)


def new_version(store: MemoryStore) -> None:
    store.prompts = [
        text_prompt("greeting", "v1", labels=()),
        text_prompt("greeting", "v2", version=2, labels=("production", "staging")),
        text_prompt("farewell", "bye"),
    ]


# --- the cache -------------------------------------------------------------------------------


def test_a_store_key_belongs_to_its_prefix() -> None:
    assert store_of(("file", LABEL)) == "file"
    assert store_of((TENANT_A, LABEL)) == "langfuse"
    assert store_of((("http", "https://p", ()), LABEL)) == "http"


async def test_every_label_version_and_credential_set_of_the_prompt_is_fetched_again(
    cache: PromptCache, store: MemoryStore
) -> None:
    keys = [(TENANT_A, LABEL), (TENANT_B, LABEL), (TENANT_A, STAGING), (TENANT_A, PINNED)]
    for at, query in keys:
        await get(cache, store, query, at)
    await get(cache, store, OTHER, TENANT_A)
    await get(cache, store, LABEL, "file")
    calls = store.total_calls
    new_version(store)

    assert cache.invalidate_prompts("langfuse", "greeting") == len(keys)

    for at, query in keys:
        prompt, status = await get(cache, store, query, at)
        assert status is CacheStatus.MISS
        assert prompt.version == (1 if query.version == 1 else 2)
    assert store.total_calls == calls + len(keys)
    # Another prompt, and the same prompt in another store, are left alone.
    assert await get(cache, store, OTHER, TENANT_A) == (text_prompt("farewell", "bye"), "hit")
    assert (await get(cache, store, LABEL, "file"))[1] is CacheStatus.HIT


async def test_everything_or_a_whole_store_can_be_invalidated(
    cache: PromptCache, store: MemoryStore
) -> None:
    for at in ("file", "langfuse"):
        for query in (LABEL, OTHER):
            await get(cache, store, query, at)
    assert cache.invalidate_prompts("file") == 2
    assert (await get(cache, store, OTHER, "file"))[1] is CacheStatus.MISS
    assert (await get(cache, store, OTHER, "langfuse"))[1] is CacheStatus.HIT
    assert cache.invalidate_prompts() == 4
    assert (await get(cache, store, OTHER, "langfuse"))[1] is CacheStatus.MISS


async def test_an_invalidated_entry_is_not_served_while_it_refreshes(
    cache: PromptCache, store: MemoryStore
) -> None:
    await get(cache, store)
    new_version(store)
    cache.invalidate_prompts("langfuse", "greeting")
    # Stale-while-revalidate would answer v1 at once; an invalidated entry waits for v2.
    assert cache.serve_stale(("langfuse", LABEL), lambda: store.get_prompt(LABEL), POLICY) is None
    prompt, status = await get(cache, store)
    assert (prompt.prompt, status) == ("v2", CacheStatus.MISS)


async def test_an_invalidated_entry_is_the_stale_copy_when_the_store_fails(
    cache: PromptCache, store: MemoryStore
) -> None:
    await get(cache, store)
    cache.invalidate_prompts("langfuse", "greeting")
    store.failure = unavailable()
    prompt, status = await get(cache, store)
    assert (prompt.prompt, status) == ("v1", CacheStatus.STALE)


async def test_a_deleted_pinned_version_is_not_found_after_the_invalidation(
    cache: PromptCache, store: MemoryStore
) -> None:
    await get(cache, store, PINNED)
    store.prompts = [p for p in store.prompts if p.name != "greeting"]
    assert (await get(cache, store, PINNED))[1] is CacheStatus.HIT  # pinned: never expires
    cache.invalidate_prompts("langfuse", "greeting")
    with pytest.raises(PromptNotFound):
        await get(cache, store, PINNED)
    assert ("langfuse", PINNED) not in cache


class ReadsThenWaits:
    """A store whose every call reads at once, then answers when the test releases it."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.calls: list[asyncio.Event] = []
        self.called = asyncio.Event()

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        prompt = await self.store.get_prompt(query)
        release = asyncio.Event()
        self.calls.append(release)
        self.called.set()
        await release.wait()
        return prompt


async def calls(store: ReadsThenWaits, count: int) -> None:
    async with asyncio.timeout(10):  # a hang detector
        while len(store.calls) < count:
            store.called.clear()
            await store.called.wait()


async def test_a_fetch_begun_before_the_invalidation_is_neither_kept_nor_joined(
    cache: PromptCache, store: MemoryStore
) -> None:
    slow = ReadsThenWaits(store)

    def fetch() -> asyncio.Task[tuple[Prompt, CacheStatus]]:
        return asyncio.create_task(
            cache.get(("langfuse", LABEL), lambda: slow.get_prompt(LABEL), POLICY)
        )

    early = fetch()
    await calls(slow, 1)  # the early fetch has read v1 and waits
    new_version(store)
    cache.invalidate_prompts("langfuse", "greeting")
    late = fetch()
    await calls(slow, 2)  # a second fetch, not the early one joined
    slow.calls[1].set()
    assert (await late)[0].prompt == "v2"
    slow.calls[0].set()  # the early fetch ends last, with what it read before the change
    assert (await early)[0].prompt == "v1"
    assert await get(cache, store) == (
        text_prompt("greeting", "v2", version=2, labels=("production", "staging")),
        "hit",
    )


# --- the last known good copy, when the store fails on a cold cache --------------------------


class Copies:
    """The :class:`~prompt_middleware.engine.fetch.Copies` of one process, in memory."""

    def __init__(self) -> None:
        self.kept: dict[tuple[Hashable, PromptQuery], tuple[Prompt, float]] = {}
        self.recalls = 0

    def remember(self, store_key: Hashable, query: PromptQuery, prompt: Prompt) -> None:
        self.kept[(store_key, query)] = (prompt, 0.0)

    async def recall(self, store_key: Hashable, query: PromptQuery) -> tuple[Prompt, float] | None:
        self.recalls += 1
        return self.kept.get((store_key, query))


def fetcher_with(copies: Copies, clock: FakeClock) -> tuple[PromptFetcher, PromptCache[PromptPlan]]:
    cache: PromptCache[PromptPlan] = PromptCache(clock=clock)
    fetcher = PromptFetcher(cache, timeout_seconds=5)
    fetcher.keep_copies(copies)
    return fetcher, cache


async def test_every_fetched_prompt_is_kept_and_a_cold_cache_falls_back_on_it(
    store: MemoryStore, clock: FakeClock
) -> None:
    copies = Copies()
    binding = StoreBinding("langfuse", store, POLICY, TENANT_A)
    first, _ = fetcher_with(copies, clock)
    await first.get(binding, LABEL)
    assert copies.kept[(TENANT_A, LABEL)][0].prompt == "v1"

    store.failure = unavailable()
    copies.kept[(TENANT_A, LABEL)] = (copies.kept[(TENANT_A, LABEL)][0], 90.0)  # 90 s old
    cold, cache = fetcher_with(copies, clock)
    waves = await asyncio.gather(*(cold.get(binding, LABEL) for _ in range(20)))
    assert {(plan.prompt.prompt, status) for plan, status in waves} == {("v1", "stale")}
    assert copies.recalls == 1  # one read for the whole wave
    # Kept in the cache as an expired entry: the next requests do not wait for the store.
    calls = store.total_calls
    plan, status = await cold.get(binding, LABEL)
    assert (plan.prompt.prompt, status) == ("v1", CacheStatus.STALE)
    assert (store.total_calls, copies.recalls) == (calls, 1)
    assert (TENANT_A, LABEL) in cache


async def test_without_a_copy_or_for_a_missing_prompt_the_error_stands(
    store: MemoryStore, clock: FakeClock
) -> None:
    copies = Copies()
    fetcher, _ = fetcher_with(copies, clock)
    binding = StoreBinding("langfuse", store, POLICY, TENANT_A)
    store.failure = unavailable()
    with pytest.raises(PromptStoreUnavailable):
        await fetcher.get(binding, LABEL)
    store.failure = None
    with pytest.raises(PromptNotFound):
        await fetcher.get(binding, PromptQuery("missing", label="production"))
    assert copies.recalls == 1  # a missing prompt is the store's answer, not a failure


async def test_a_copy_past_the_stale_limit_is_not_served(
    store: MemoryStore, clock: FakeClock
) -> None:
    cache: PromptCache[PromptPlan] = PromptCache(clock=clock)
    plan = PromptPlan(text_prompt("greeting", "v1"))
    assert not cache.add_stale(("langfuse", LABEL), plan, age_seconds=60 + 3601, policy=POLICY)
    assert cache.add_stale(("langfuse", LABEL), plan, age_seconds=60 + 3599, policy=POLICY)
    # A copy never replaces what the cache holds.
    assert not cache.add_stale(("langfuse", LABEL), plan, age_seconds=0, policy=POLICY)


# --- the local folder -----------------------------------------------------------------------


async def test_the_local_folder_rereads_after_forget(tmp_path: Path) -> None:
    (tmp_path / "greeting.yaml").write_text("prompt: first\n")
    folder = LocalPromptStore(tmp_path, poll_interval=3600)
    assert (await folder.get_prompt(LABEL)).prompt == "first"
    (tmp_path / "greeting.yaml").write_text("prompt: second\n")
    assert (await folder.get_prompt(LABEL)).prompt == "first"  # within the poll interval
    folder.forget()
    assert (await folder.get_prompt(LABEL)).prompt == "second"


async def test_a_scan_running_across_forget_does_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "greeting.yaml").write_text("prompt: before\n")
    folder = LocalPromptStore(tmp_path, poll_interval=3600)
    read, resume = threading.Event(), threading.Event()

    def held_scan(directory: Path, previous: Snapshot) -> Snapshot:
        snapshot = scan_folder(directory, previous)
        read.set()  # the folder is read: now hold the scan until the test lets it finish
        resume.wait(10)
        return snapshot

    monkeypatch.setattr(local_store, "scan_folder", held_scan)
    running = asyncio.create_task(folder.get_prompt(LABEL))
    await asyncio.to_thread(read.wait, 10)
    (tmp_path / "greeting.yaml").write_text("prompt: after the edit\n")
    folder.forget()
    after = asyncio.create_task(folder.get_prompt(LABEL))
    resume.set()
    # Whoever waited on the scan that read too early gets a scan begun after forget().
    assert (await after).prompt == "after the edit"
    assert (await running).prompt == "after the edit"


async def test_a_langfuse_prompt_from_the_replicas_expires_every_other_langfuse_prompt(
    store: MemoryStore,
) -> None:
    # What a Redis fan-out delivers is applied as the webhook's own: the changed prompt is
    # fetched before it is served, the store's other prompts are served while they refresh,
    # another store's are left alone.
    engine = RewriteEngine(Settings(), stores={"langfuse": store, "mem": store})
    bus = InvalidationBus()
    bus.subscribe(applier(engine))
    targets = {
        (at, query): engine.stores.resolve(at)
        for at in ("langfuse", "mem")
        for query in (LABEL, OTHER)
    }
    for (_, query), binding in targets.items():
        await engine.fetcher.get(binding, query)
    bus.receive(
        msgspec.json.encode(Invalidation("langfuse", "greeting", origin="a replica")),
        from_replicas=True,
    )

    def served_at_once(at: str, query: PromptQuery) -> bool:
        binding = targets[(at, query)]
        key = (binding.cache_key, query)

        async def fetch() -> PromptPlan:
            return PromptPlan(await store.get_prompt(query))

        return (
            engine.cache.get_fresh(key) is not None
            or engine.cache.serve_stale(key, fetch, binding.policy) is not None
        )

    assert not served_at_once("langfuse", LABEL)  # the changed prompt: fetched first
    assert engine.cache.get_fresh((targets[("langfuse", OTHER)].cache_key, OTHER)) is None
    assert served_at_once("langfuse", OTHER)  # expired, served while it refreshes
    assert engine.cache.get_fresh((targets[("mem", LABEL)].cache_key, LABEL)) is not None
    await engine.aclose()
