"""The last known good copy of every fetched prompt, kept in Redis for the other replicas.

A replica that has never fetched a prompt and finds its store failing serves the copy
another replica (or itself, before a restart) wrote, as ``x-prompt-cache: stale``, while the
copy is within ``PROMPT_MIDDLEWARE_CACHE_MAX_STALE_SECONDS`` of its expiry.

Copies are keyed by the store's cache key, which separates credential sets by a one-way
digest: a credential is never written to Redis, and one tenant never reads another's copy.

A copy is written again only when the prompt changed or the copy is a TTL old (the local
folder is re-read twice a second: its unchanged prompts are not rewritten each time).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

import msgspec
import structlog

from prompt_middleware.live.redis_link import RedisLink
from prompt_middleware.prompts import Prompt, PromptQuery

__all__ = ["LastKnownGood", "copy_key"]

logger = structlog.get_logger(__name__)

_KEY_PREFIX: Final = "prompt-middleware:lkg:"
# What was written last per key, to skip rewriting an unchanged prompt; bounded like the cache.
_MAX_REMEMBERED: Final = 1000


class _Copy(msgspec.Struct, array_like=True):
    fetched_at: float
    prompt: Prompt


_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.Decoder(_Copy).decode


def copy_key(store_key: Hashable, query: PromptQuery) -> str | None:
    """The Redis key of a cache entry's copy; None for a store key that is not text."""
    if isinstance(store_key, str):
        parts: tuple[str, ...] = (store_key,)
    elif isinstance(store_key, tuple) and all(isinstance(part, str) for part in store_key):
        parts = store_key
    else:
        return None
    # JSON keeps any character in a name unambiguous ("a:b" vs "a", "b").
    material = [list(parts), query.name, query.label, query.version]
    return _KEY_PREFIX + msgspec.json.encode(material).decode()


class LastKnownGood:
    """Writes copies off the request path; reads them back within the link's bound."""

    def __init__(
        self,
        link: RedisLink,
        *,
        ttl_seconds: float,
        max_stale_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._ttl = ttl_seconds
        self._max_stale = max_stale_seconds
        self._expire_after = math.ceil(ttl_seconds + max_stale_seconds)
        self._clock = clock  # wall time: copies are compared across machines
        self._written: OrderedDict[str, tuple[Prompt, float]] = OrderedDict()

    def remember(self, store_key: Hashable, query: PromptQuery, prompt: Prompt) -> None:
        """Queue ``prompt`` as the copy for this entry; returns at once."""
        key = copy_key(store_key, query)
        if key is None:
            return
        now = self._clock()
        last = self._written.get(key)
        if last is not None and last[0] == prompt and now - last[1] < self._ttl:
            return
        self._link.put(key, _encode(_Copy(fetched_at=now, prompt=prompt)), self._expire_after)
        self._written[key] = (prompt, now)
        self._written.move_to_end(key)
        if len(self._written) > _MAX_REMEMBERED:
            self._written.popitem(last=False)

    async def recall(self, store_key: Hashable, query: PromptQuery) -> tuple[Prompt, float] | None:
        """The copy for this entry and its age in seconds, if Redis has one still servable."""
        key = copy_key(store_key, query)
        raw = None if key is None else await self._link.get(key)
        if raw is None:
            return None
        try:
            copy = _decode(raw)
        except msgspec.DecodeError:  # written by another version, or not by us
            logger.warning("last_known_good_undecodable", prompt=query.name)
            return None
        age = max(0.0, self._clock() - copy.fetched_at)
        if age - self._ttl > self._max_stale:
            return None
        return copy.prompt, age
