"""The Redis link's bounds: a Redis that is down, silent or paused never holds a caller."""

from __future__ import annotations

import time

import pytest

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.live.redis_link import RedisLink
from tests.fakes.redis_server import RedisServer, SilentRedis
from tests.live._watched import WatchedLink

# The contract's bound is one second in all; the link abandons a call after half of it.
BOUND = 1.0


def link(url: str) -> RedisLink:
    return RedisLink(url, on_message=lambda payload: None)


async def test_a_silent_redis_is_down_and_no_call_waits_on_it(silent_redis: SilentRedis) -> None:
    silent = link(silent_redis.url)
    started = time.monotonic()
    await silent.start()
    assert time.monotonic() - started < BOUND
    assert not silent.redis_up
    started = time.monotonic()
    assert await silent.get("k") is None
    silent.put("k", b"v", 60)
    silent.send(b"{}")
    assert time.monotonic() - started < 0.1  # down: nothing is even tried
    started = time.monotonic()
    await silent.aclose()
    assert time.monotonic() - started < BOUND
    assert silent_redis.connections >= 1  # it was asked, and did not answer


async def test_a_redis_that_stops_answering_is_abandoned_within_the_bound(
    redis_server: RedisServer,
) -> None:
    watched = WatchedLink(redis_server.url)
    paused = watched.link
    await paused.start()
    paused.put("k", b"v", 60)
    try:
        await watched.get_eventually("k", b"v")  # queued, then flushed by the writer task
        redis_server.pause()
        started = time.monotonic()
        assert await paused.get("k") is None
        assert time.monotonic() - started < BOUND
    finally:
        redis_server.resume()
        await paused.aclose()


async def test_an_unreachable_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.kill()
    down = link(redis_server.url)
    await down.start()
    try:
        assert not down.redis_up
        assert await down.get("k") is None
    finally:
        await down.aclose()


async def test_writes_queued_while_redis_is_down_are_made_when_it_is_back(
    redis_server: RedisServer,
) -> None:
    writer, reader = link(redis_server.url), WatchedLink(redis_server.url)
    redis_server.kill()
    await writer.start()
    writer.put("copy", b"kept", 60)
    redis_server.start()
    await reader.link.start()
    try:
        await reader.get_eventually("copy", b"kept")
    finally:
        await writer.aclose()
        await reader.link.aclose()


def test_a_url_that_is_not_redis_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        link("http://user:hunter2@example.com")
    assert "hunter2" not in str(caught.value)
    assert "PROMPT_MIDDLEWARE_REDIS_URL" in str(caught.value)
