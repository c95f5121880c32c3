"""``PromptMiddleware``: the pure ASGI door onto the rewrite engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.answer_watch import AnswerWatch, watched_send
from prompt_middleware.apis import COUNT_TOKENS_SUFFIX, Api, api_for_path
from prompt_middleware.asgi import serve_lifespan
from prompt_middleware.body import read_body
from prompt_middleware.doors import Door, prompt_headers
from prompt_middleware.engine import RewriteResult
from prompt_middleware.handoff import (
    BodyForwarder,
    HandOff,
    upstream_of,
    with_handoff,
    with_trace,
)
from prompt_middleware.live.endpoints import WEBHOOK_PATH, answer_webhook
from prompt_middleware.live.updates import LiveUpdates
from prompt_middleware.observe import Observer
from prompt_middleware.report import passed_on_is_reported, report_request
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.tracing import GenerationSpan, Tracing

__all__ = ["PromptMiddleware"]

logger = structlog.get_logger(__name__)


class PromptMiddleware(Door):
    """Rewrite chat-completion requests that name a managed prompt; pass all else through.

    ``settings`` default to :meth:`Settings.from_env`. ``stores`` registers extra prompt
    stores by prefix (``{"mystore": MyStore()}`` serves ``model: "mystore/gpt-4o"``).
    ``observer`` is told about every request and store fetch (the sidecar's metrics).
    An ``app`` that is a :class:`~prompt_middleware.handoff.BodyForwarder` (the embedded
    forwarder) gets matched requests in one call, body and headers handed over, instead of
    through a replayed ASGI request; other routes still reach it through ASGI.
    ``tracing`` overrides the one ``settings.traces`` asks for (README, "Traces").

    With a webhook secret, a Redis URL or sibling workers in the settings (README, "Many
    replicas") the middleware keeps its prompts live: it answers ``POST /webhooks/langfuse``
    and, with Redis, shares invalidations and last known good copies with the other replicas.
    ``live`` passes in live updates built elsewhere (the sidecar's, which shows Redis's state in
    its metrics); either way the middleware is their one owner: it connects them to its engine,
    starts them in its lifespan (before the prewarm) and closes them at shutdown.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        observer: Observer | None = None,
        tracing: Tracing | None = None,
        live: LiveUpdates | None = None,
    ) -> None:
        super().__init__(settings, stores, observer, tracing)
        self.app = app
        # Each route's API (README, "Three APIs"); a count_tokens body is never managed.
        self._apis = {
            route: api_for_path(route)
            for route in self._settings.routes
            if not route.endswith(COUNT_TOKENS_SUFFIX)
        }
        self._routes = frozenset(self._apis)
        # The forwarder takes the request in one call: see prompt_middleware.handoff.
        self._forwarder = app if isinstance(app, BodyForwarder) else None
        if live is None and _asks_for_live_updates(self._settings):
            live = LiveUpdates.from_settings(self._settings)
        self._live = live
        self._webhook: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        if live is not None:
            live.connect(self._engine)
            if live.verifier is not None:
                self._webhook = partial(answer_webhook, verifier=live.verifier, bus=live.bus)

    @property
    def live(self) -> LiveUpdates | None:
        """The live updates this middleware applies (README, "Many replicas"); None without."""
        return self._live

    @property
    def answers_webhook(self) -> bool:
        """True when this middleware answers ``POST /webhooks/langfuse`` (a secret is set)."""
        return self._webhook is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in self._routes
            or scope["method"] != "POST"
        ):
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
                return
            if self._webhook is not None and _is_webhook(scope):
                await self._webhook(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route: str = scope["path"]
        api = self._apis[route]
        declared_size, request_id = _size_and_request_id(scope)
        body = None  # for the error's span, when it was read
        try:
            body = await read_body(receive, self._max_body_bytes, declared_size=declared_size)
            if body is None:
                return  # the client went away before it finished sending
            # The header list as ASGI gave it (no copy): read only by a header-keyed experiment.
            result = await self._engine.rewrite(body, scope["headers"], api)
        except Exception as exc:
            error = self.failure(exc, route, request_id, started, scope["headers"], body)
            await api.send_error(send, error)
            return

        overhead = time.perf_counter() - started
        span = watch = None
        if self._tracing is not None or _in_experiment(result, self._observer):
            scope, span, watch = self._observed(scope, body, result, started, api)
        try:  # free in CPython 3.11+ unless something raises
            if self._forwarder is not None:
                handoff = _handoff(body, result, overhead, span, watch)
                if watch is not None:
                    send = watched_send(send, watch)
                status = await self._forwarder.forward_body(scope, handoff, receive, send)
            elif result is None and watch is None and not passed_on_is_reported(self._observer):
                await self.app(scope, _replay(body, receive), send)  # no status to keep
                return
            else:
                answered = [0]
                if result is None:
                    await self.app(
                        scope, _replay(body, receive), _record_status(send, answered, watch)
                    )
                else:
                    handoff = _handoff(body, result, overhead, span, watch)
                    await self.app(
                        with_handoff(scope, handoff),
                        _replay(handoff.body, receive),
                        _add_headers(send, handoff.response_headers, answered, watch),
                    )
                status = answered[0]
        except Exception as exc:
            if watch is not None:
                watch.fail(type(exc).__name__)
            raise
        finally:
            if watch is not None:
                watch.end()  # after the last byte, if the answer was not already over
        report_request(
            route=route,
            request_id=request_id,
            result=result,
            status=status,
            overhead_seconds=overhead,
            duration_seconds=time.perf_counter() - started,
            observer=self._observer,
        )

    def _observed(
        self, scope: Scope, body: bytes, result: RewriteResult | None, started: float, api: Api
    ) -> tuple[Scope, GenerationSpan | None, AnswerWatch | None]:
        """The request's span (traces on) and its answer watch (for a sampled span, and for
        an experiment's metrics, README "Dashboard"), and the scope to pass on: a plain app's
        carries the span's ``traceparent`` (a managed request's gets it in :func:`with_handoff`'s
        copy; the forwarder writes it into its upstream headers from the hand-off)."""
        span = None
        if self._tracing is not None:
            span = self._tracing.start_request(
                result, body, started=started, headers=scope["headers"], api=api
            )
            if result is None and self._forwarder is None:
                scope = with_trace(scope, span)
        if self._observer is not None and result is not None and result.variant_name is not None:
            watch = AnswerWatch(
                started,
                span,
                observer=self._observer,
                experiment=result.experiment_name or "",
                variant=result.variant_name,
                api=api.name,
            )
        elif span is not None and span.recording:  # a left-out span records nothing
            watch = AnswerWatch(started, span, api=api.name)
        else:
            watch = None
        return scope, span, watch

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        app_started = False

        async def app_receive() -> Message:
            nonlocal app_started
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Prewarm before the app sees start-up, so "ready" means "prompts loaded".
                await self._start()
                app_started = True
            return message

        async def app_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.aclose()
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
        await serve_lifespan(receive, send, startup=self._start, shutdown=self.aclose)

    async def _start(self) -> None:
        # Live updates first: a prompt whose store is down may then come from Redis.
        if self._live is not None:
            await self._live.start()
        await self._engine.prewarm()

    async def aclose(self) -> None:
        """Close the live updates, then the engine and tracing."""
        try:
            if self._live is not None:
                await self._live.aclose()
        finally:
            await super().aclose()


def _is_webhook(scope: Scope) -> bool:
    return bool(
        scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST"
    )


def _asks_for_live_updates(settings: Settings) -> bool:
    return bool(settings.langfuse_webhook_secret or settings.redis_url or settings.worker_dir)


def _size_and_request_id(scope: Scope) -> tuple[bytes | None, str | None]:
    """``content-length`` and ``x-request-id`` (the first of each), in one pass."""
    size: bytes | None = None
    request_id: str | None = None
    for key, value in scope["headers"]:
        if key == b"content-length" and size is None:
            size = value
        elif key == b"x-request-id" and request_id is None:
            request_id = value.decode("latin-1")
    return size, request_id


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


def _in_experiment(result: RewriteResult | None, observer: Observer | None) -> bool:
    """Whether the request's experiment is measured: it is in one, and someone observes."""
    return observer is not None and result is not None and result.variant_name is not None


def _handoff(
    body: bytes,
    result: RewriteResult | None,
    overhead_seconds: float,
    span: GenerationSpan | None,
    watch: AnswerWatch | None,
) -> HandOff:
    if result is None:
        return HandOff(body, trace=span, watch=watch)
    return HandOff(
        result.body,
        upstream_of(result.entry),
        result.waited,
        prompt_headers(result, overhead_seconds),
        span,
        watch,
    )


def _add_headers(
    send: Send,
    extra: Sequence[tuple[bytes, bytes]],
    status: list[int],
    watch: AnswerWatch | None,
) -> Send:
    """``send`` that adds ``extra`` to the answer's headers, keeps its status, and shows the
    answer to ``watch`` once each message has gone out (one wrapper for the three)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)
        if watch is not None:
            watch.show(message)

    return send_with_headers


def _record_status(send: Send, status: list[int], watch: AnswerWatch | None) -> Send:
    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        await send(message)
        if watch is not None:
            watch.show(message)

    return recording_send
