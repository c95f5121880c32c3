"""Last known good copies: written off the request path, read back by another replica."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from prompt_middleware.live.last_known_good import LastKnownGood, copy_key
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptQuery
from tests.fakes.clock import FakeClock
from tests.fakes.redis_server import RedisServer
from tests.live._watched import WatchedLink, exactly, key_written

CHAT = Prompt(
    name="support/answer",
    version=3,
    type="chat",
    prompt=(ChatMessage("system", "You help {{product}}."), Placeholder("history")),
    config={"model": "gpt-4o", "temperature": 0.2, "nested": [1, {"a": None}]},
    labels=("production", "latest"),
)
TEXT = Prompt(name="greeting", version="v2", type="text", prompt="Hello {{name}}")
# A LiteLLM .prompt file: read back, it must still be rendered as Jinja and checked.
DOTPROMPT = Prompt(
    name="greeting",
    version=2,
    type="chat",
    prompt="System: Hi{% if vip %}, dear{% endif %} {{ name }}",
    template_language="dotprompt",
    input_schema={"name": "string", "vip?": "boolean"},
)
TENANT_A = ("langfuse", "a" * 64)
TENANT_B = ("langfuse", "b" * 64)
PRODUCTION = PromptQuery("support/answer", label="production")


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[WatchedLink, WatchedLink]]:
    writer, reader = WatchedLink(redis_server.url), WatchedLink(redis_server.url)
    await writer.link.start()
    await reader.link.start()
    yield writer, reader
    await writer.link.aclose()
    await reader.link.aclose()


def copies(link: WatchedLink, clock: FakeClock) -> LastKnownGood:
    return LastKnownGood(link.link, ttl_seconds=60, max_stale_seconds=3600, clock=clock)


@pytest.mark.parametrize("prompt", [CHAT, TEXT, DOTPROMPT])
async def test_another_replica_reads_the_copy_back_exactly(
    pair: tuple[WatchedLink, WatchedLink], prompt: Prompt
) -> None:
    writer, reader = pair
    clock = FakeClock(1_770_000_000.0)
    query = PromptQuery(prompt.name, label="production")
    copies(writer, clock).remember(TENANT_A, query, prompt)
    key = copy_key(TENANT_A, query)
    assert key is not None
    await _written(reader, key)
    assert await copies(reader, clock).recall(TENANT_A, query) == (prompt, 0.0)


async def test_a_copy_is_kept_per_credential_set_label_and_version(
    pair: tuple[WatchedLink, WatchedLink], redis_server: RedisServer
) -> None:
    writer, reader = pair
    clock = FakeClock(1_770_000_000.0)
    copies(writer, clock).remember(TENANT_A, PRODUCTION, CHAT)
    key = copy_key(TENANT_A, PRODUCTION)
    assert key is not None
    await _written(reader, key)
    recall = copies(reader, clock).recall
    assert await recall(TENANT_B, PRODUCTION) is None
    assert await recall(TENANT_A, PromptQuery("support/answer", label="staging")) is None
    assert await recall(TENANT_A, PromptQuery("support/answer", version=3)) is None
    assert await recall(TENANT_A, PRODUCTION) == (CHAT, 0.0)


async def test_a_copy_older_than_ttl_plus_max_stale_is_not_served(
    pair: tuple[WatchedLink, WatchedLink],
) -> None:
    writer, reader = pair
    clock = FakeClock(1_770_000_000.0)
    copies(writer, clock).remember("file", PRODUCTION, CHAT)
    key = copy_key("file", PRODUCTION)
    assert key is not None
    await _written(reader, key)
    clock.now += 60 + 3600
    assert await copies(reader, clock).recall("file", PRODUCTION) == (CHAT, 3660.0)
    clock.now += 1
    assert await copies(reader, clock).recall("file", PRODUCTION) is None


async def test_a_copy_that_is_not_ours_is_ignored(pair: tuple[WatchedLink, WatchedLink]) -> None:
    writer, reader = pair
    key = copy_key("file", PRODUCTION)
    assert key is not None
    writer.link.put(key, b"\xc1 not msgpack", 60)
    await _written(reader, key)
    assert await copies(reader, FakeClock(1_770_000_000.0)).recall("file", PRODUCTION) is None


async def test_without_redis_nothing_is_recalled(redis_server: RedisServer) -> None:
    redis_server.kill()
    down = WatchedLink(redis_server.url)
    await down.link.start()
    try:
        lkg = copies(down, FakeClock(1_770_000_000.0))
        lkg.remember("file", PRODUCTION, CHAT)  # queued, never waited for
        assert await lkg.recall("file", PRODUCTION) is None
    finally:
        await down.link.aclose()


def test_keys_hold_the_digest_never_more_and_cannot_collide() -> None:
    key = copy_key(TENANT_A, PRODUCTION)
    assert key == (
        'prompt-middleware:lkg:[["langfuse","' + "a" * 64 + '"],"support/answer","production",null]'
    )
    assert copy_key("a:b", PromptQuery("c")) != copy_key(("a", "b"), PromptQuery("c"))
    assert copy_key(object(), PRODUCTION) is None
    assert copy_key(("x", 1), PRODUCTION) is None


async def _written(reader: WatchedLink, key: str) -> None:
    """Wait until the writer's queued copy has reached Redis (woken by Redis, not polled)."""
    async with key_written(reader.url, exactly(key)) as written:
        await written()


def test_the_copy_is_msgspec_encoded_with_its_fetch_time() -> None:
    from prompt_middleware.live import last_known_good

    class Capture:
        def __init__(self) -> None:
            self.puts: list[tuple[str, bytes, int]] = []

        def put(self, key: str, value: bytes, ttl_seconds: int) -> None:
            self.puts.append((key, value, ttl_seconds))

    capture = Capture()
    clock = FakeClock(1_770_000_000.0)
    lkg = last_known_good.LastKnownGood(
        capture,  # type: ignore[arg-type]
        ttl_seconds=60,
        max_stale_seconds=86400,
        clock=clock,
    )
    lkg.remember("file", PRODUCTION, TEXT)
    [(_, value, ttl)] = capture.puts
    assert ttl == 86460
    assert msgspec.msgpack.decode(value) == [
        clock.now,
        msgspec.msgpack.decode(msgspec.msgpack.encode(TEXT)),
    ]
