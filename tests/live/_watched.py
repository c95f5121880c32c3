"""What a test awaits of Redis instead of polling it: a link's up/down changes, a key written
(Redis's keyspace notifications, which the test server sends)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as redis

from prompt_middleware.live.redis_link import RedisLink


class WatchedLink:
    """A :class:`RedisLink` plus the list of states it reported and a way to await one."""

    def __init__(self, url: str, on_message: Callable[[bytes], None] = lambda _: None) -> None:
        self.url = url
        self.states: list[bool] = []
        self._changed = asyncio.Event()
        self.link = RedisLink(url, on_message=on_message, on_state=self._on_state)

    def _on_state(self, up: bool) -> None:
        self.states.append(up)
        self._changed.set()

    async def wait_state(self, up: bool, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while self.link.redis_up is not up:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def key_written(
    url: str, pattern: str, seconds: float = 10.0
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """``async with key_written(url, "k*") as written: ...; await written()``: returns once a
    key matching ``pattern`` exists, woken by Redis when one is written (listening starts on
    entering, so a write made inside the block is never missed)."""
    client = redis.Redis.from_url(url)
    events = client.pubsub(ignore_subscribe_messages=True)
    await events.psubscribe(f"__keyspace@*__:{pattern}")

    async def written() -> None:
        async with asyncio.timeout(seconds):
            while not await client.keys(pattern):
                await events.get_message(timeout=seconds)  # blocks until an event arrives

    try:
        yield written
    finally:
        await events.aclose()
        await client.aclose()


def exactly(key: str) -> str:
    """A Redis pattern matching ``key`` only (its glob characters escaped)."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", key)
