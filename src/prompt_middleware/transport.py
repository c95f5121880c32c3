"""``PromptTransport``: the httpx2 door onto the rewrite engine, for a client in the same process.

    client = openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=PromptTransport()))

A client does not say what its base URL is, so a request is on a route when its URL *path
ends with* one of ``settings.routes``: the OpenAI SDK posts to ``{base_url}/chat/completions``
(``/v1/chat/completions`` for OpenAI, ``/openai/deployments/<name>/chat/completions`` for
Azure), and every such path is matched. Everything else goes to the wrapped transport as it
came, without being read.

httpx2 and httpx have the same request, response and stream classes under the same names, so
the door is written once (:class:`ClientDoor`) against the names it uses (:class:`HttpModule`)
and given one library's module: ``PromptTransport`` httpx2's, ``HttpxPromptTransport``
(:mod:`prompt_middleware.transport_httpx`) httpx's, for the SDKs still built on httpx.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar, Final, Protocol

import httpx2

from prompt_middleware.apis import ANTHROPIC, COUNT_TOKENS_SUFFIX, Api, api_for_path
from prompt_middleware.body import check_declared_size, join_capped, too_large
from prompt_middleware.doors import Door, prompt_headers
from prompt_middleware.engine import RewriteResult
from prompt_middleware.errors import RequestError
from prompt_middleware.handoff import BODY_HEADERS, Upstream, upstream_of, upstream_path
from prompt_middleware.observe import Observer
from prompt_middleware.report import report_request
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.tracing import GenerationSpan, TracedStream, Tracing

__all__ = ["ClientDoor", "HttpModule", "PromptTransport"]

_JSON_HEADERS: Final = {"content-type": "application/json"}
_CREDENTIAL_HEADERS: Final = (b"authorization", b"x-api-key")


class HttpModule(Protocol):
    """The names the door takes from its HTTP library: httpx2's module, or httpx's."""

    Request: type[httpx2.Request]
    Response: type[httpx2.Response]
    URL: type[httpx2.URL]
    ByteStream: type[httpx2.ByteStream]
    AsyncByteStream: type[httpx2.AsyncByteStream]
    RequestNotRead: type[httpx2.RequestNotRead]
    ResponseNotRead: type[httpx2.ResponseNotRead]


class ClientDoor(Door):
    """The transport door, for the library ``http`` names; a subclass adds the library's
    ``handle_async_request`` (its own types) around :meth:`send`."""

    http: ClassVar[HttpModule]
    traced_stream: ClassVar[type[TracedStream]] = TracedStream

    def __init__(
        self,
        transport: httpx2.AsyncBaseTransport,
        settings: Settings | None,
        stores: Mapping[str, PromptStore] | None,
        observer: Observer | None,
        tracing: Tracing | None,
    ) -> None:
        super().__init__(settings, stores, observer, tracing)
        self._transport = transport
        # Longest first, so "/v1/chat/completions" is reported rather than its own suffix.
        self._routes = tuple(
            sorted(
                {
                    "/" + r.lstrip("/")
                    for r in self._settings.routes
                    if not r.endswith(COUNT_TOKENS_SUFFIX)
                },
                key=len,
                reverse=True,
            )
        )
        self._apis = {route: api_for_path(route) for route in self._routes}

    async def send(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith(self._routes):
            return await self._transport.handle_async_request(request)
        return await self._handle(request)

    async def aclose(self) -> None:
        """Close the engine (cache refreshes, store connections) and the tracing, then the
        wrapped transport."""
        try:
            await super().aclose()
        finally:
            await self._transport.aclose()

    async def _handle(self, request: httpx2.Request) -> httpx2.Response:
        started = time.perf_counter()
        path = request.url.path
        route = next(r for r in self._routes if path.endswith(r))
        api = self._apis[route]
        # None unless the client sent one: the report makes one only for a line it logs.
        request_id = request.headers.get("x-request-id")
        body = None  # for the error's span, when it was read
        try:
            body, request = await self._read_body(request)
            result = await self._engine.rewrite(body, request.headers.raw, api)
        except Exception as exc:
            error = self.failure(exc, route, request_id, started, request.headers.raw, body)
            return self._error_response(request, error, api)

        if result is not None:
            request = self._rewritten(request, result, route, api)
        overhead = time.perf_counter() - started
        if self._tracing is None:
            response = await self._transport.handle_async_request(request)
        else:
            response = await self._send_traced(self._tracing, request, body, result, started, api)
        if result is not None:
            for name, value in prompt_headers(result, overhead):
                response.headers[name.decode("ascii")] = value.decode("ascii")
        # The duration ends at the response headers: the client reads the body later.
        report_request(
            route=route,
            request_id=request_id,
            result=result,
            status=response.status_code,
            overhead_seconds=overhead,
            duration_seconds=time.perf_counter() - started,
            observer=self._observer,
        )
        return response

    async def _send_traced(
        self,
        tracing: Tracing,
        request: httpx2.Request,
        body: bytes,
        result: RewriteResult | None,
        started: float,
        api: Api,
    ) -> httpx2.Response:
        """Send ``request`` inside its span, which ends when the response body is closed."""
        span = tracing.start_request(
            result, body, started=started, headers=request.headers.raw, api=api
        )
        request.headers.pop("tracestate", None)  # the span's own, if any, replaces it
        request.headers.update(span.trace_headers())
        try:
            response = await self._transport.handle_async_request(request)
        except Exception as exc:
            span.fail(type(exc).__name__)
            span.end()
            raise
        span.response_start(response.status_code, response.headers.get("content-type"))
        self._read_through(response, span)
        return response

    async def _read_body(self, request: httpx2.Request) -> tuple[bytes, httpx2.Request]:
        """The body, and the request to pass on unchanged (a copy if its stream was used up)."""
        limit = self._max_body_bytes
        check_declared_size(request.headers.get("content-length"), limit)
        http = self.http
        try:
            # Bytes and JSON content (what the OpenAI SDK sends) are already in memory.
            body = request.content
        except http.RequestNotRead:
            body = await self._read_stream(request, limit)
            request = http.Request(
                request.method,
                request.url,
                headers=request.headers,
                stream=http.ByteStream(body),
                extensions=request.extensions,
            )
        if len(body) > limit:
            raise too_large(limit)
        return body, request

    async def _read_stream(self, request: httpx2.Request, limit: int) -> bytes:
        stream = request.stream
        if not isinstance(stream, self.http.AsyncByteStream):
            raise TypeError(f"{type(self).__name__} needs an async request body (AsyncClient).")
        return await join_capped(stream, limit)

    def _read_through(self, response: httpx2.Response, span: GenerationSpan) -> None:
        """Show the span the response body as the caller reads it (or at once, if it is in
        memory already: a response made from bytes, as a mock transport's), and end it then."""
        try:
            content = response.content
        except self.http.ResponseNotRead:
            stream = response.stream
            if isinstance(stream, self.http.AsyncByteStream):
                response.stream = self.traced_stream(stream, span)
            else:  # not readable by an async client: nothing to show the span
                span.end()
            return
        span.response_chunk(content)
        span.end()

    def _rewritten(
        self, request: httpx2.Request, result: RewriteResult, route: str, api: Api
    ) -> httpx2.Request:
        """The request with the rewritten body, sent where the model-list entry says, if it
        does (with its key: ``x-api-key`` for Anthropic, else ``Authorization: Bearer``)."""
        drop = set(BODY_HEADERS)
        url = request.url
        upstream = upstream_of(result.entry)
        if upstream is not None:
            url = self._upstream_url(upstream, route, request.url)
            drop.add(b"host")
            if upstream.api_key is not None:
                drop.update(_CREDENTIAL_HEADERS)
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in drop]
        if upstream is not None and upstream.api_key is not None:
            key = upstream.api_key.get_secret_value()
            if api.provider == ANTHROPIC:
                headers.append((b"x-api-key", key.encode("latin-1")))
            else:
                headers.append((b"authorization", f"Bearer {key}".encode("latin-1")))
        headers.append((b"content-length", str(len(result.body)).encode("ascii")))
        return self.http.Request(
            request.method, url, headers=headers, content=result.body, extensions=request.extensions
        )

    def _upstream_url(self, upstream: Upstream, route: str, original: httpx2.URL) -> httpx2.URL:
        # The forwarder's rule, applied to the route matched. The query (Azure's api-version)
        # is kept.
        path = upstream_path(route)
        return self.http.URL(upstream.base_url.rstrip("/") + path, params=original.params)

    def _error_response(
        self, request: httpx2.Request, error: RequestError, api: Api
    ) -> httpx2.Response:
        return self.http.Response(
            error.status_code, content=api.error_json(error), headers=_JSON_HEADERS, request=request
        )


class PromptTransport(ClientDoor, httpx2.AsyncBaseTransport):
    """Rewrite chat-completion requests that name a managed prompt, then send them on.

    ``transport`` is where requests go next (default: a new ``httpx2.AsyncHTTPTransport()``;
    pass your own for proxies, limits or TLS settings: a client given a transport ignores its
    own). ``settings``, ``stores`` and ``observer`` are those of :class:`PromptMiddleware`.
    Errors the client can fix, and store failures, are answered as OpenAI-shaped JSON
    responses, never raised, so an SDK raises its usual status error; errors of the wrapped
    transport propagate unchanged, so an SDK retries them as usual. ``tracing`` overrides
    the one ``settings.traces`` asks for (README, "Traces"). For an ``httpx`` client (an SDK
    older than ``openai`` 3 or ``anthropic`` 2), use :class:`HttpxPromptTransport`.
    """

    http: ClassVar[HttpModule] = httpx2

    def __init__(
        self,
        transport: httpx2.AsyncBaseTransport | None = None,
        settings: Settings | None = None,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        observer: Observer | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        super().__init__(
            transport if transport is not None else httpx2.AsyncHTTPTransport(),
            settings,
            stores,
            observer,
            tracing,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.send(request)
