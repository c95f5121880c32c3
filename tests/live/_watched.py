"""A Redis link whose up/down changes a test can await (instead of polling)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prompt_middleware.live.redis_link import RedisLink


class WatchedLink:
    """A :class:`RedisLink` plus the list of states it reported and a way to await one."""

    def __init__(self, url: str, on_message: Callable[[bytes], None] = lambda _: None) -> None:
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

    async def get_eventually(self, key: str, expected: bytes, seconds: float = 10.0) -> None:
        """Read ``key`` until it holds ``expected`` (each read is a real round trip)."""
        await self.wait_state(True, seconds)
        async with asyncio.timeout(seconds):
            while await self.link.get(key) != expected:
                await self.wait_state(True, seconds)
