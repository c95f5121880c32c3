"""``PromptMiddleware``: the pure ASGI door onto the rewrite engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import RequestError, RequestTooLarge, send_error
from prompt_middleware.handoff import (
    UPSTREAM_SCOPE_KEY,
    WAITED_SCOPE_KEY,
    BodyForwarder,
    upstream_of,
)
from prompt_middleware.observe import Observer
from prompt_middleware.report import passed_on_is_reported, report_error, report_request
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore

__all__ = ["PromptMiddleware"]

logger = structlog.get_logger(__name__)

_BODY_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})


class PromptMiddleware:
    """Rewrite chat-completion requests that name a managed prompt; pass all else through.

    ``settings`` default to :meth:`Settings.from_env`. ``stores`` registers extra prompt
    stores by prefix (``{"mystore": MyStore()}`` serves ``model: "mystore/gpt-4o"``).
    ``observer`` is told about every request and store fetch (the sidecar's metrics).
    An ``app`` that is a :class:`~prompt_middleware.handoff.BodyForwarder` (the embedded
    forwarder) gets matched requests in one call, body and headers handed over, instead of
    through a replayed ASGI request; other routes still reach it through ASGI.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.app = app
        self._settings = settings if settings is not None else Settings.from_env()
        self._observer = observer
        self._engine = RewriteEngine(self._settings, stores=stores, observer=observer)
        self._routes = frozenset(self._settings.routes)
        self._max_body_bytes = self._settings.max_body_bytes
        # The forwarder takes the body in one call: see prompt_middleware.handoff.
        self._forwarder = app if isinstance(app, BodyForwarder) else None

    @property
    def engine(self) -> RewriteEngine:
        return self._engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in self._routes
            or scope["method"] != "POST"
        ):
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route: str = scope["path"]
        declared_size, request_id = _size_and_request_id(scope)
        try:
            body = await self._read_body(declared_size, receive)
            if body is None:
                return  # the client went away before it finished sending
            # The header list as ASGI gave it (no copy): read only by a header-keyed experiment.
            result = await self._engine.rewrite(body, scope["headers"])
        except RequestError as error:
            await send_error(send, error)
            report_error(
                route=route,
                request_id=request_id,
                error=error,
                duration_seconds=time.perf_counter() - started,
                observer=self._observer,
            )
            return
        except Exception:
            logger.exception("prompt_request_failed", route=route, request_id=request_id)
            await send_error(send, RequestError("prompt-middleware failed to rewrite the request."))
            return

        overhead = time.perf_counter() - started
        if self._forwarder is not None:
            status = await self._hand_over(scope, body, receive, send, result, overhead)
        elif result is None and not passed_on_is_reported(self._observer):
            await self.app(scope, _replay(body, receive), send)  # no status to keep
            return
        else:
            answered = [0]
            if result is None:
                await self.app(scope, _replay(body, receive), _record_status(send, answered))
            else:
                await self.app(
                    _with_body(scope, result),
                    _replay(result.body, receive),
                    _add_prompt_headers(send, result, overhead, answered),
                )
            status = answered[0]
        report_request(
            route=route,
            request_id=request_id,
            result=result,
            status=status,
            overhead_seconds=overhead,
            duration_seconds=time.perf_counter() - started,
            observer=self._observer,
        )

    def _hand_over(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        result: RewriteResult | None,
        overhead: float,
    ) -> Awaitable[int]:
        """Give the request to the forwarder in one call; awaited, the status it sent."""
        # Not a coroutine itself: the caller awaits the forwarder's, one frame fewer.
        assert self._forwarder is not None
        if result is None:
            return self._forwarder.forward_body(scope, body, receive, send)
        return self._forwarder.forward_body(
            scope,
            result.body,
            receive,
            send,
            upstream=upstream_of(result.entry),
            waited=result.waited,
            response_headers=_prompt_headers(result, overhead),
        )

    async def _read_body(self, declared_size: str | None, receive: Receive) -> bytes | None:
        limit = self._max_body_bytes
        if declared_size is not None and declared_size.isdigit() and int(declared_size) > limit:
            raise _too_large(limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return body  # the usual case: the whole body in one message
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        app_started = False

        async def app_receive() -> Message:
            nonlocal app_started
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Prewarm before the app sees start-up, so "ready" means "prompts loaded".
                await self._engine.prewarm()
                app_started = True
            return message

        async def app_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self._engine.aclose()
            await send(message)

        try:
            await self.app(scope, app_receive, app_send)
        except Exception:
            if app_started:
                raise
            logger.debug("lifespan_unsupported_by_app")
        if app_started:
            return
        # The app does not speak lifespan (it raised or returned at once): speak it for
        # the middleware alone, so prewarm and clean-up still happen.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._engine.prewarm()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._engine.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _size_and_request_id(scope: Scope) -> tuple[str | None, str | None]:
    """``content-length`` and ``x-request-id`` (the first of each), in one pass."""
    size = request_id = None
    for key, value in scope["headers"]:
        if key == b"content-length" and size is None:
            size = value.decode("latin-1")
        elif key == b"x-request-id" and request_id is None:
            request_id = value.decode("latin-1")
    return size, request_id


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than {limit} bytes (PROMPT_MIDDLEWARE_MAX_BODY_BYTES)."
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    # The body was read to rewrite it: hand the app the whole of it in one message, then the
    # server's own messages (http.disconnect) so the app still learns when the client leaves.
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _with_body(scope: Scope, result: RewriteResult) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k not in _BODY_HEADERS]
    headers.append((b"content-length", str(len(result.body)).encode("ascii")))
    rewritten = {**scope, "headers": headers}
    upstream = upstream_of(result.entry)
    if upstream is not None:
        rewritten[UPSTREAM_SCOPE_KEY] = upstream
    if result.waited:
        rewritten[WAITED_SCOPE_KEY] = True
    return rewritten


def _add_prompt_headers(
    send: Send, result: RewriteResult, overhead_seconds: float, status: list[int]
) -> Send:
    extra = _prompt_headers(result, overhead_seconds)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_with_headers


def _prompt_headers(
    result: RewriteResult, overhead_seconds: float
) -> tuple[tuple[bytes, bytes], ...]:
    """The response headers of a rewritten request: ``x-prompt-*`` and the overhead."""
    overhead_ms = b"%.3f" % (overhead_seconds * 1000)
    return (*result.headers, (b"x-prompt-middleware-overhead-ms", overhead_ms))


def _record_status(send: Send, status: list[int]) -> Send:
    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        await send(message)

    return recording_send
