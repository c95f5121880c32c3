"""``Forwarder``: the ASGI app that sends each request on to its upstream, and its lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Final

import aiohttp
import structlog
from starlette.types import Receive, Scope, Send

from prompt_middleware.apis import api_of, is_anthropic_path
from prompt_middleware.asgi import serve_lifespan
from prompt_middleware.errors import RequestError
from prompt_middleware.handoff import HandOff, handoff_from_scope
from prompt_middleware.settings import Settings
from prompt_middleware.sidecar.forwarder.debug import curl
from prompt_middleware.sidecar.forwarder.exchange import Exchange, WatchQueue, stream_body
from prompt_middleware.sidecar.forwarder.failures import no_upstream, translate
from prompt_middleware.sidecar.forwarder.headers import (
    anthropic_request_headers,
    request_headers,
)
from prompt_middleware.sidecar.forwarder.relay import UpstreamResponseCallback, relay_response
from prompt_middleware.sidecar.forwarder.session import create_session, upstream_timeout
from prompt_middleware.sidecar.forwarder.targets import Target, Targets, upstream_url

__all__ = ["Forwarder"]

logger = structlog.get_logger(__name__)

SessionFactory = Callable[[], aiohttp.ClientSession]

_BUFFERED_BODY_BYTES: Final = 64 * 1024
# A client is watched for once its upstream call has lasted this long (up to a quarter more:
# the watch queue's tick): a departure within it costs at most that much upstream work, and a
# quick answer costs no watcher at all.
_WATCH_AFTER_SECONDS: Final = 0.05


class Forwarder:
    """Forward every HTTP request to its upstream, streaming both ways (see the package doc).

    ``session_factory`` makes the aiohttp session, lazily, on the first request (it must be
    made inside the running loop, which is also why this takes a factory, not a session);
    the forwarder owns that session and :meth:`aclose` closes it (a lifespan shutdown calls
    it too). ``on_upstream_response(status, seconds)`` is called once per upstream response
    with the time from sending the request to its headers; it must not raise.
    ``detailed_debug`` logs each upstream request as a ``curl`` command, secrets masked.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: SessionFactory | None = None,
        on_upstream_response: UpstreamResponseCallback | None = None,
        detailed_debug: bool = False,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory or (lambda: create_session(settings))
        self._session: aiohttp.ClientSession | None = None
        self._timeout = upstream_timeout(settings)
        self._on_upstream_response = on_upstream_response
        self._detailed_debug = detailed_debug
        self._targets = Targets(settings)
        self._watching: WatchQueue | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                # Used on its own, the forwarder speaks lifespan itself; behind
                # PromptMiddleware it gets the same messages through the middleware.
                await serve_lifespan(receive, send, shutdown=self.aclose)
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        await self._handle(scope, receive, send)

    async def aclose(self) -> None:
        """Close the pooled connections; a later request would open a new session."""
        session, self._session = self._session, None
        if self._watching is not None:
            self._watching.close()
        if session is not None:
            await session.close()

    def forward_body(
        self, scope: Scope, handoff: HandOff, receive: Receive, send: Send
    ) -> Coroutine[Any, Any, int]:
        """Send a request the middleware has read (see ``BodyForwarder``)."""
        # Not a coroutine itself: the caller awaits ours, one frame fewer on every resume.
        return self._forward(Exchange(scope, handoff, receive, send, None))

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Buffer a small body (a chat request: the middleware hands it over whole) so that it
        # goes out with a Content-Length; stream a larger one (an upload) as it arrives.
        parts: list[bytes] = []
        size = 0
        streamed_body = True
        while streamed_body and size <= _BUFFERED_BODY_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part: bytes = message.get("body", b"")
            if part:
                parts.append(part)
                size += len(part)
            streamed_body = message.get("more_body", False)
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        body_done = asyncio.Event() if streamed_body else None
        await self._forward(
            Exchange(scope, handoff_from_scope(scope, body), receive, send, body_done)
        )

    async def _forward(self, exchange: Exchange) -> int:
        """Relay one request; the response's status (the upstream's, or our error's), or 0
        when the client left before there was one."""
        handoff = exchange.handoff
        try:
            target = self._targets.get(
                handoff.upstream, anthropic=is_anthropic_path(exchange.scope["path"])
            )
            if target is None:
                raise no_upstream(None if exchange.body_done is not None else handoff.body)
        except RequestError as error:
            if handoff.trace is not None:  # before the answer: its last byte ends the span
                handoff.trace.fail(error.code, error.message)
            await api_of(exchange.scope).send_error(exchange.send, error, handoff.response_headers)
            logger.info("upstream_request_failed", path=exchange.scope["path"], error=error.code)
            return error.status_code

        task = exchange.task = asyncio.current_task()
        assert task is not None
        data: bytes | AsyncIterator[bytes] | None = handoff.body or None
        if exchange.body_done is not None:
            # Sent on as it comes; chat routes arrive whole (the middleware buffered them).
            assert exchange.receive is not None
            data = stream_body(handoff.body, exchange.receive, exchange)
        try:
            if exchange.body_done is not None or handoff.waited:
                # The client may have left already (while its prompt was fetched): let the
                # watcher read what is queued before anything is sent, so that costs no
                # upstream call (with a pooled connection the request would be written
                # before the first suspension). Its leaving cancels us here, handled below.
                exchange.watch()
                await asyncio.sleep(0)
            else:
                # Watching costs a task per request, and matters only for requests that
                # last: an answer that comes back within the delay never pays for it.
                self._watch_queue().add(exchange)
            return await self._relay(exchange, target, data)
        except asyncio.CancelledError:
            if not exchange.client_gone or task.uncancel() > 0:
                raise
            logger.info("client_disconnected", path=exchange.scope["path"], upstream=target.host)
            return 0
        finally:
            exchange.stop_watching()

    async def _relay(
        self, exchange: Exchange, target: Target, data: bytes | AsyncIterator[bytes] | None
    ) -> int:
        scope = exchange.scope
        url = upstream_url(target, scope)
        streamed = data is not None and not isinstance(data, bytes)
        span = exchange.handoff.trace
        trace = None if span is None else span.trace_headers()
        if target.anthropic:
            headers = anthropic_request_headers(
                scope["headers"], target.authorization, keep_length=streamed, trace=trace
            )
        else:
            headers = request_headers(
                scope["headers"], target.authorization, keep_length=streamed, trace=trace
            )
        method: str = scope["method"]
        if self._detailed_debug:
            logger.info("upstream_request", curl=curl(method, str(url), headers, data))
        session = self._session
        if session is None:
            session = self._session = self._session_factory()
        started = time.perf_counter()
        try:
            response = await session.request(
                method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = translate(exc, target.host, self._settings)
            if span is not None:
                span.fail(error.code, error.message)
            await api_of(scope).send_error(exchange.send, error, exchange.handoff.response_headers)
            logger.warning(
                "upstream_request_failed",
                path=scope["path"],
                upstream=target.host,
                error=error.code,
                reason=type(exc).__name__,
            )
            return error.status_code
        return await relay_response(
            response, exchange, target.host, self._on_upstream_response, started
        )

    def _watch_queue(self) -> WatchQueue:
        loop = asyncio.get_running_loop()
        queue = self._watching
        if queue is None or queue.loop is not loop:
            queue = self._watching = WatchQueue(loop, _WATCH_AFTER_SECONDS)
        return queue
