"""One process's link to Redis: invalidations on a pub/sub channel, and a small outbox.

Redis is never on a request's critical path for longer than ``call_timeout``:

* ``send`` (an invalidation) and ``put`` (a last known good copy) only queue; one writer
  task flushes the queue in a pipeline, at once while Redis answers, later when it is back.
* ``get`` returns None at once while Redis is down, and abandons a call that takes longer
  than ``call_timeout``.
* A watcher pings Redis every ``check_interval``: ``redis_up`` (and ``on_state``) follow it.
  The listener re-subscribes on its own connection after any error or down period, so
  fan-out resumes about one check after Redis answers again. Pub/sub keeps nothing for a
  listener that is away: ``on_resubscribed`` is called on every subscription after the
  first, for the caller to assume it missed something.

redis-py's own retries are off: these loops are the retry policy, and each call is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import redis.asyncio as redis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from prompt_middleware.errors import ConfigurationError

__all__ = ["CALL_TIMEOUT_SECONDS", "CHANNEL", "RedisLink"]

logger = structlog.get_logger(__name__)

CHANNEL: Final = "prompt-middleware:invalidations"
#: The longest one Redis call may hold a caller (README: no request waits on Redis for more
#: than one second in all).
CALL_TIMEOUT_SECONDS: Final = 0.5
# What waits for Redis when it is down; beyond these, the oldest invalidation or the newest
# copy is dropped (the TTL still applies, and copies are written again on the next fetch).
_MAX_QUEUED_INVALIDATIONS: Final = 1000
_MAX_QUEUED_COPIES: Final = 1000
_FAILURES: Final = (RedisError, OSError, TimeoutError)


class RedisLink:
    """Publishes and receives invalidations, reads and writes copies, watches Redis."""

    def __init__(
        self,
        url: str,
        *,
        on_message: Callable[[bytes], None],
        on_state: Callable[[bool], None] | None = None,
        on_resubscribed: Callable[[], None] | None = None,
        channel: str = CHANNEL,
        call_timeout: float = CALL_TIMEOUT_SECONDS,
        check_interval: float = 0.5,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                "PROMPT_MIDDLEWARE_REDIS_URL must start with redis:// or rediss://."
            )
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                socket_connect_timeout=call_timeout,
                socket_timeout=call_timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:  # its message may quote the URL, and with it a password
            raise ConfigurationError(
                "PROMPT_MIDDLEWARE_REDIS_URL is not a valid Redis URL "
                "(redis://[:password@]host[:port][/db])."
            ) from None
        self._on_message = on_message
        self._on_state = on_state
        self._on_resubscribed = on_resubscribed
        self._subscriptions = 0
        self._channel = channel
        self._timeout = call_timeout
        self._interval = check_interval
        self._up = False
        self._reported = False
        self._downs = 0  # counts down periods: a listener from before one re-subscribes
        self._invalidations: list[bytes] = []
        self._copies: dict[str, tuple[bytes, int]] = {}
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def redis_up(self) -> bool:
        """True while Redis answers the watcher's pings."""
        return self._up

    async def start(self) -> None:
        """Ping once (bounded), then start the watcher, the listener and the writer."""
        self._set_up(await self._ping())
        for loop in (self._watch, self._listen, self._write):
            self._tasks.append(asyncio.create_task(loop()))

    async def wait_subscribed(self) -> None:
        """Return once the listener is subscribed (for tests and benchmarks)."""
        await self._subscribed.wait()

    def send(self, payload: bytes) -> None:
        """Publish an invalidation to every replica, off the caller's path."""
        self._invalidations.append(payload)
        del self._invalidations[:-_MAX_QUEUED_INVALIDATIONS]
        self._wake.set()

    def put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Write ``value`` under ``key`` for ``ttl_seconds``, off the caller's path."""
        if key not in self._copies and len(self._copies) >= _MAX_QUEUED_COPIES:
            return
        self._copies[key] = (value, max(1, ttl_seconds))
        self._wake.set()

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``; None if absent, or if Redis is down or slow."""
        if not self._up:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                value: Any = await self._client.get(key)
        except _FAILURES as exc:
            _raise_if_cancelled()
            logger.debug("redis_get_failed", error=type(exc).__name__)
            return None
        return value if isinstance(value, bytes) else None

    async def aclose(self) -> None:
        """Stop the loops and close the connections (queued writes are dropped)."""
        # The flag, not only the cancellation: redis-py can swallow a cancellation that
        # arrives during one of its calls, and the loops must stop all the same.
        self._closing.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2 * self._timeout)
        self._tasks.clear()
        with contextlib.suppress(*_FAILURES):
            async with asyncio.timeout(self._timeout):
                await self._client.aclose()

    async def _ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except _FAILURES:
            _raise_if_cancelled()
            return False
        return True

    def _set_up(self, up: bool) -> None:
        if up == self._up and self._reported:
            return
        if up != self._up or not self._reported:
            logger.info("redis_up" if up else "redis_down")
        if self._up and not up:
            self._downs += 1
        self._up, self._reported = up, True
        if up:
            self._wake.set()  # flush what queued while Redis was away
        if self._on_state is not None:
            self._on_state(up)

    async def _pause(self) -> None:
        """Wait one check interval (less when closing)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval):
                await self._closing.wait()

    async def _watch(self) -> None:
        while not self._closing.is_set():
            await self._pause()
            up = await self._ping()
            if not self._closing.is_set():
                self._set_up(up)

    async def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                await self._listen_once()
            except _FAILURES as exc:
                _raise_if_cancelled()
                logger.debug("redis_listen_failed", error=type(exc).__name__)
            self._subscribed.clear()
            await self._pause()

    async def _listen_once(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        try:
            async with asyncio.timeout(self._timeout):
                await pubsub.subscribe(self._channel)
                while await pubsub.get_message(timeout=self._timeout) is None:
                    pass  # the subscription's confirmation comes first
            downs = self._downs
            self._subscribed.set()
            self._subscriptions += 1
            logger.info("redis_subscribed", channel=self._channel, again=self._subscriptions > 1)
            if self._subscriptions > 1 and self._on_resubscribed is not None:
                self._on_resubscribed()
            # A connection from before a down period may be dead without knowing it.
            while downs == self._downs and not self._closing.is_set():
                message = await pubsub.get_message(timeout=self._interval)
                if message is not None and message.get("type") == "message":
                    self._on_message(message["data"])
        finally:
            with contextlib.suppress(*_FAILURES):
                async with asyncio.timeout(self._timeout):
                    await pubsub.aclose()

    async def _write(self) -> None:
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            if self._up and not self._closing.is_set() and not await self._flush():
                await self._pause()
                self._wake.set()

    async def _flush(self) -> bool:
        """Send what is queued in one pipeline; False (and kept queued) if Redis failed."""
        invalidations, self._invalidations = self._invalidations, []
        copies, self._copies = self._copies, {}
        if not invalidations and not copies:
            return True
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.pipeline(transaction=False) as pipe:
                    for payload in invalidations:
                        pipe.publish(self._channel, payload)
                    for key, (value, ttl) in copies.items():
                        pipe.set(key, value, ex=ttl)
                    await pipe.execute()
        except ResponseError as exc:  # Redis answered and refused: retrying will not help
            logger.warning("redis_write_refused", error=str(exc)[:200])
        except _FAILURES as exc:
            _raise_if_cancelled()
            logger.debug("redis_write_failed", error=type(exc).__name__)
            self._invalidations[:0] = invalidations
            del self._invalidations[:-_MAX_QUEUED_INVALIDATIONS]
            self._copies = {**copies, **self._copies}
            return False
        return True


def _raise_if_cancelled() -> None:
    # redis-py may turn the CancelledError of a cancelled call into a connection error: a
    # task being cancelled (shutdown, a client that went away) must still stop. A timeout's
    # own cancellation is uncancelled by asyncio.timeout before this runs.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
