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
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from prompt_middleware.engine import RewriteEngine
from prompt_middleware.live.apply import applier
from prompt_middleware.live.bus import InvalidationBus
from prompt_middleware.live.webhook import WebhookVerifier
from prompt_middleware.live.workers import WorkerLink
from prompt_middleware.settings import Secret, Settings

if TYPE_CHECKING:
    from prompt_middleware.live.last_known_good import LastKnownGood
    from prompt_middleware.live.redis_link import RedisLink

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
        # The workers of one serve share an origin (their host and private directory), so
        # that a worker skips what Redis echoes back of its siblings' invalidations.
        origin = None
        if worker_dir:
            origin = f"{socket.gethostname()}:{os.path.basename(worker_dir.rstrip('/'))}"
        self.bus = InvalidationBus(origin=origin)
        self.verifier = WebhookVerifier(webhook_secret) if webhook_secret else None
        self._workers = WorkerLink(worker_dir, on_message=self.bus.receive) if worker_dir else None
        self.redis: RedisLink | None = None
        self.last_known_good: LastKnownGood | None = None
        if redis_url:
            # redis-py is imported only when it is used (a tenth of a second at start-up).
            from prompt_middleware.live.last_known_good import LastKnownGood
            from prompt_middleware.live.redis_link import RedisLink

            self.redis = RedisLink(
                redis_url,
                on_message=lambda payload: self.bus.receive(payload, from_replicas=True),
                on_state=on_redis_state,
                # Away from the channel, this replica may have missed invalidations: every
                # cached prompt is fetched again before it is served.
                on_resubscribed=self.bus.apply_here,
            )
            self.last_known_good = LastKnownGood(
                self.redis, ttl_seconds=ttl_seconds, max_stale_seconds=max_stale_seconds
            )
        self._started = False

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_redis_state: Callable[[bool], None] | None = None
    ) -> LiveUpdates:
        """The parts ``settings`` ask for (README, "Many replicas")."""
        return cls(
            redis_url=_plain(settings.redis_url),
            webhook_secret=_plain(settings.langfuse_webhook_secret),
            worker_dir=settings.worker_dir,
            ttl_seconds=settings.cache_ttl_seconds,
            max_stale_seconds=settings.cache_max_stale_seconds,
            on_redis_state=on_redis_state,
        )

    def connect(self, engine: RewriteEngine) -> None:
        """Apply every invalidation to ``engine``; with Redis, keep its fetched prompts there
        and fall back on them when a store fails."""
        self.bus.subscribe(applier(engine))
        if self.last_known_good is not None:
            engine.fetcher.keep_copies(self.last_known_good)

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
        """Remove the worker socket, stop the Redis loops."""
        if self._workers is not None:
            self._workers.close()
        if self.redis is not None:
            await self.redis.aclose()


def _plain(secret: Secret | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
