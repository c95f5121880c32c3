"""The invalidation bus: one process's subscribers, and the links to the other processes.

    publish(store, prompt) ──> every local subscriber (the cache, the local folder), at once
                          └──> every link: sibling workers, Redis (other replicas)
    a link's message ──> receive() ──> every local subscriber (never passed on again)

Every process subscribes to each link itself, so a message is never forwarded twice. A
message carries its sender's ``origin``: a process skips what Redis echoes back to the
workers of its own ``serve`` (they had it through the worker link already).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final, Protocol

import msgspec
import structlog

__all__ = ["Invalidation", "InvalidationBus", "Link"]

logger = structlog.get_logger(__name__)


class Invalidation(msgspec.Struct, frozen=True, omit_defaults=True):
    """Forget the cached prompts of ``store`` (every store when None) named ``prompt``
    (every prompt when None)."""

    store: str | None = None
    prompt: str | None = None
    origin: str = ""

    def describe(self) -> dict[str, str]:
        """Log fields: what was invalidated."""
        return {"store": self.store or "*", "prompt": self.prompt or "*"}


class Link(Protocol):
    """A way to other processes; ``send`` never waits (the request path calls it)."""

    def send(self, payload: bytes) -> None: ...


Subscriber = Callable[[Invalidation], None]

_encode: Final = msgspec.json.Encoder().encode
_decode: Final = msgspec.json.Decoder(Invalidation).decode


class InvalidationBus:
    """Applies invalidations here and passes them to the other workers and replicas."""

    def __init__(self, *, origin: str | None = None) -> None:
        """``origin`` names this process's group (the workers of one ``serve``)."""
        self.origin = origin or secrets.token_hex(8)
        self._subscribers: list[Subscriber] = []
        self._links: list[Link] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with every invalidation, local or received."""
        self._subscribers.append(subscriber)

    def add_link(self, link: Link) -> None:
        """Send every local invalidation through ``link`` too."""
        self._links.append(link)

    def publish(self, store: str | None = None, prompt: str | None = None) -> None:
        """Apply an invalidation here (before returning) and send it to every link."""
        invalidation = Invalidation(store=store, prompt=prompt, origin=self.origin)
        self._apply(invalidation)
        payload = _encode(invalidation)
        for link in self._links:
            try:
                link.send(payload)
            except Exception:  # a link's failure must not fail the request that published
                logger.exception("invalidation_send_failed", link=type(link).__name__)

    def receive(self, payload: bytes, *, from_replicas: bool = False) -> None:
        """Apply an invalidation a link delivered; ``from_replicas`` for one from Redis,
        which this process's own group has applied already when it sent it."""
        try:
            invalidation = _decode(payload)
        except msgspec.DecodeError:
            logger.warning("invalidation_undecodable", size=len(payload))
            return
        if from_replicas and invalidation.origin == self.origin:
            return
        self._apply(invalidation)

    def apply_here(self, store: str | None = None, prompt: str | None = None) -> None:
        """Apply an invalidation in this process only (sent to no link)."""
        self._apply(Invalidation(store=store, prompt=prompt, origin=self.origin))

    def _apply(self, invalidation: Invalidation) -> None:
        logger.info("prompt_cache_invalidated", **invalidation.describe())
        for subscriber in self._subscribers:
            try:
                subscriber(invalidation)
            except Exception:
                logger.exception("invalidation_subscriber_failed", **invalidation.describe())
