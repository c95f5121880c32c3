"""The live-update parts of one process, wired together: the bus and its links, the last
known good copies, the webhook's verifier.

    LiveUpdates
    ├── bus            InvalidationBus: the cache and the local folder subscribe to it
    ├── WorkerLink     with PROMPT_MIDDLEWARE_WORKER_DIR (``serve --workers N`` sets it)
    ├── RedisLink      with PROMPT_MIDDLEWARE_REDIS_URL: fan-out to every replica
    ├── last_known_good  with Redis: copies of fetched prompts
    └── verifier       with PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prompt_middleware.live.bus import InvalidationBus
from prompt_middleware.live.last_known_good import LastKnownGood
from prompt_middleware.live.redis_link import RedisLink
from prompt_middleware.live.webhook import WebhookVerifier
from prompt_middleware.live.workers import WorkerLink

__all__ = ["LiveUpdates"]


class LiveUpdates:
    """Started in the app's lifespan, closed at shutdown; every part is optional."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        webhook_secret: str | None = None,
        worker_dir: str | None = None,
        ttl_seconds: float = 60.0,
        max_stale_seconds: float = 86400.0,
        on_redis_state: Callable[[bool], None] | None = None,
    ) -> None:
        # The workers of one serve share an origin (their directory's name), so that a
        # worker skips what Redis echoes back of its siblings' invalidations.
        origin = os.path.basename(worker_dir.rstrip("/")) if worker_dir else None
        self.bus = InvalidationBus(origin=origin)
        self.verifier = WebhookVerifier(webhook_secret) if webhook_secret else None
        self._workers = WorkerLink(worker_dir, on_message=self.bus.receive) if worker_dir else None
        self.redis: RedisLink | None = None
        self.last_known_good: LastKnownGood | None = None
        if redis_url:
            self.redis = RedisLink(
                redis_url,
                on_message=lambda payload: self.bus.receive(payload, from_replicas=True),
                on_state=on_redis_state,
            )
            self.last_known_good = LastKnownGood(
                self.redis, ttl_seconds=ttl_seconds, max_stale_seconds=max_stale_seconds
            )
        self._started = False

    @property
    def redis_up(self) -> bool | None:
        """Whether Redis answers; None without a Redis URL."""
        return None if self.redis is None else self.redis.redis_up

    async def start(self) -> None:
        """Bind the worker socket, connect to Redis (bounded); idempotent."""
        if self._started:
            return
        self._started = True
        if self._workers is not None:
            self._workers.start()
            self.bus.add_link(self._workers)
        if self.redis is not None:
            await self.redis.start()
            self.bus.add_link(self.redis)

    async def aclose(self) -> None:
        if self._workers is not None:
            self._workers.close()
        if self.redis is not None:
            await self.redis.aclose()
