"""The Redis link's bounds: a Redis that is down, silent or paused never holds a caller.

A call to a Redis that never answers returns within the link's bound (0.5 s) plus the margin
of every bound test (``tests/live/conftest.py``); start-up and shutdown, which no request
waits for, only within a hang detector's deadline.
"""

from __future__ import annotations

import asyncio

import pytest

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.live.redis_link import CALL_TIMEOUT_SECONDS, RedisLink
from tests.fakes.redis_server import RedisServer, SilentRedis
from tests.live._watched import key_written
from tests.live.conftest import MARGIN_SECONDS

# A hang detector for what no request waits for (start-up, shutdown, re-subscription).
DEADLINE = 10.0
CALL_BOUND = CALL_TIMEOUT_SECONDS + MARGIN_SECONDS


def link(url: str) -> RedisLink:
    return RedisLink(url, on_message=lambda payload: None)


async def test_a_silent_redis_is_down_and_no_call_waits_on_it(silent_redis: SilentRedis) -> None:
    silent = link(silent_redis.url)
    async with asyncio.timeout(DEADLINE):
        await silent.start()
    assert not silent.redis_up
    assert silent_redis.connections >= 1  # it was asked, and did not answer
    # Down: a read is not even tried (it returns without giving the loop a turn), and
    # writes only queue.
    read = silent.get("k").__await__()
    with pytest.raises(StopIteration) as returned:
        read.send(None)
    assert returned.value.value is None
    silent.put("k", b"v", 60)
    silent.send(b"{}")
    async with asyncio.timeout(DEADLINE):
        await silent.aclose()


async def test_a_redis_that_stops_answering_is_abandoned_within_the_bound(
    redis_server: RedisServer,
) -> None:
    # No watcher ping during the test: the link still believes Redis is up when it pauses.
    paused = RedisLink(redis_server.url, on_message=lambda payload: None, check_interval=600)
    await paused.start()
    assert paused.redis_up
    try:
        async with key_written(redis_server.url, "k") as written:
            paused.put("k", b"v", 60)  # queued, then flushed by the writer task
            await written()
        assert await paused.get("k") == b"v"
        redis_server.pause()
        async with asyncio.timeout(CALL_BOUND):
            assert await paused.get("k") is None  # tried, and abandoned at the link's bound
        assert paused.redis_up
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
    writer = link(redis_server.url)
    redis_server.kill()
    await writer.start()
    writer.put("copy", b"kept", 60)
    redis_server.start()
    try:
        async with key_written(redis_server.url, "copy") as written:
            await written()  # once the writer sees Redis back (its next check)
        assert await writer.get("copy") == b"kept"
    finally:
        await writer.aclose()


def test_a_url_that_is_not_redis_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        link("http://user:hunter2@example.com")
    assert "hunter2" not in str(caught.value)
    assert "PROMPT_MIDDLEWARE_REDIS_URL" in str(caught.value)


async def test_a_listener_back_on_the_channel_says_it_may_have_missed_something(
    redis_server: RedisServer,
) -> None:
    resubscribed = asyncio.Event()
    watched = RedisLink(
        redis_server.url, on_message=lambda payload: None, on_resubscribed=resubscribed.set
    )
    await watched.start()
    try:
        async with asyncio.timeout(DEADLINE):
            await watched.wait_subscribed()
        assert not resubscribed.is_set()  # the first subscription missed nothing
        redis_server.kill()
        redis_server.start()
        async with asyncio.timeout(DEADLINE):
            await resubscribed.wait()
    finally:
        await watched.aclose()
