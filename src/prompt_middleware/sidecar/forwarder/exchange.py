"""One request through the forwarder, and the watch for its client leaving.

A client that leaves while we wait for the upstream, or in the middle of a stream, must cancel
the upstream request rather than let it run on. Reading ``receive`` for ``http.disconnect``
takes a task per request, so it starts only for requests that last (:class:`WatchQueue`), or
at once for one that may already be over (a streamed body, a wait for a prompt store).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from prompt_middleware.handoff import HandOff

__all__ = ["Exchange", "WatchQueue", "stream_body"]


class Exchange:
    """The record of one forwarded request: what the relay sends, and what its watcher shares.

    ``body_done`` is set once the rest of a streamed body has been read (None: the body is
    ``handoff.body``, whole); until then the body's reader is the one that sees a disconnect.
    """

    __slots__ = (
        "__weakref__",
        "body_done",
        "client_gone",
        "handoff",
        "receive",
        "scope",
        "send",
        "task",
        "watcher",
    )

    def __init__(
        self,
        scope: Scope,
        handoff: HandOff,
        receive: Receive,
        send: Send,
        body_done: asyncio.Event | None,
    ) -> None:
        self.scope = scope
        self.handoff = handoff
        self.receive: Receive | None = receive
        self.send = send
        self.body_done = body_done
        self.task: asyncio.Task[object] | None = None
        self.client_gone = False
        self.watcher: asyncio.Task[None] | None = None

    @property
    def over(self) -> bool:
        return self.receive is None

    def watch(self) -> None:
        """Start watching for the client's departure (unless the exchange is over)."""
        if self.receive is not None:
            loop = asyncio.get_running_loop()
            self.watcher = loop.create_task(_watch_disconnect(self.receive, self))

    def stop_watching(self) -> None:
        # Over (``over`` is what the watch queue checks): drop what the exchange holds of the
        # connection, for anything that still holds the exchange.
        self.receive = self.task = None
        if self.watcher is not None:
            self.watcher.cancel()

    def leave(self) -> None:
        # The client went away: cancel the relay, which closes the upstream connection.
        self.client_gone = True
        if self.task is not None:
            self.task.cancel()


class WatchQueue:
    """Exchanges to start watching once they have lasted ``delay`` seconds.

    One timer for all of them, not one per request: every exchange waits the same delay, so
    they fall due in the order they came, and one that is over by then is skipped. The timer
    fires at most every quarter of the delay, however many requests arrive meanwhile. The
    queue holds its exchanges weakly: a request that is over is freed at once with all it
    held (its scope, body, span), instead of living on for the delay — long enough, at a few
    thousand requests a second, for the garbage collector to move it to its older
    generations, whose collections then cost more than the rest of the request.
    """

    __slots__ = ("_delay", "_pending", "_tick", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self._delay = delay
        self._tick = delay / 4
        self._pending: deque[tuple[float, weakref.ref[Exchange]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, exchange: Exchange) -> None:
        self._pending.append((self.loop.time() + self._delay, weakref.ref(exchange)))
        if self._timer is None:
            self._timer = self.loop.call_later(self._delay, self._due)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)

    def _due(self) -> None:
        now = self.loop.time()
        pending = self._pending
        while pending and pending[0][0] <= now:
            exchange = pending.popleft()[1]()
            if exchange is not None and not exchange.over:
                exchange.watch()
        self._timer = (
            self.loop.call_at(max(pending[0][0], now + self._tick), self._due) if pending else None
        )


async def stream_body(first: bytes, receive: Receive, exchange: Exchange) -> AsyncIterator[bytes]:
    """A body sent on as it arrives: ``first``, then the rest as ``receive`` gives it."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            exchange.leave()
            return
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            assert exchange.body_done is not None
            exchange.body_done.set()
            return


async def _watch_disconnect(receive: Receive, exchange: Exchange) -> None:
    with contextlib.suppress(Exception):
        if exchange.body_done is not None:
            await exchange.body_done.wait()
        while (await receive())["type"] != "http.disconnect":
            pass
        exchange.leave()
