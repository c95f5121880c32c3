"""``Forwarder``: the embedded forwarder, an ASGI app that relays requests to an OpenAI-style API.

    client --ASGI--> Forwarder --aiohttp--> <base_url>/<path>      (``/v1/<path>`` or ``/<path>``)

The upstream is the one the middleware named (a model-list entry with an ``api_base``: through
:meth:`Forwarder.forward_body`, or ``scope[UPSTREAM_SCOPE_KEY]`` when the forwarder is reached
through other ASGI layers), else ``PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL``. Status, headers and
body come back as the upstream sent them (compressed bodies stay compressed), relayed chunk by
chunk as they arrive; only hop-by-hop headers are dropped, both ways.

Why aiohttp and not httpx on this path: the upstream client decides the sidecar's speed, and as
a bare pass-through proxy on one core aiohttp serves several times more requests than httpx's
default transport and adds less latency per hop (``bench/upstream_clients.py`` measures it).
httpx stays everywhere else (stores, ``PromptTransport``, tests).

Errors before the upstream answers are ours, as JSON (CONTRACT §7): no upstream for the model
400 ``invalid_prompt_request``; refused, unresolvable, reset, or not connected within
``PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS`` 502 ``upstream_unavailable``; no response
within ``PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS`` 504 ``upstream_timeout``. Once the
response has started, a failing upstream ends the client's response without its final chunk,
so the client sees a truncated transfer rather than a clean end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from functools import lru_cache
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import msgspec
import structlog
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from prompt_middleware.errors import (
    ConfigurationError,
    InvalidPromptRequest,
    RequestError,
    UpstreamTimeout,
    UpstreamUnavailable,
    send_error,
)
from prompt_middleware.handoff import (
    UPSTREAM_SCOPE_KEY,
    WAITED_SCOPE_KEY,
    Upstream,
    upstream_path,
)
from prompt_middleware.settings import Settings

__all__ = ["Forwarder", "UpstreamResponseCallback", "create_session", "upstream_timeout"]

logger = structlog.get_logger(__name__)

UpstreamResponseCallback = Callable[[int, float], None]
SessionFactory = Callable[[], aiohttp.ClientSession]

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded ("trailers" is the
# value of TE, but old proxies send it as a header name, so drop that too).
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Also never copied from the client: aiohttp writes host and content-length for the upstream,
# and our server has already answered any "Expect: 100-continue".
_DROP_REQUEST: Final = _HOP_BY_HOP | {b"host", b"content-length", b"expect"}
_DROP_REQUEST_AUTH: Final = _DROP_REQUEST | {b"authorization"}
# aiohttp would add these when the client did not send them; a proxy adds nothing.
_SKIP_AUTO_HEADERS: Final = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_PATH_SAFE: Final = "/!$&'()*+,;=:@~"
_MAX_TARGETS: Final = 256
_MAX_URLS: Final = 1024
_BUFFERED_BODY_BYTES: Final = 64 * 1024
# A client is watched for once its upstream call has lasted this long (up to a quarter more:
# the watch queue's tick): a departure within it costs at most that much upstream work, and a
# quick answer costs no watcher at all.
_WATCH_AFTER_SECONDS: Final = 0.05
_MASK: Final = "**********"
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)
_SECRET_QUERY: Final = re.compile(r"key|token|secret|sig|password", re.IGNORECASE)


def create_session(settings: Settings) -> aiohttp.ClientSession:
    """The pooled client session the forwarder uses unless given a factory; call in a loop.

    One session and one connector for every upstream: the connector already keeps one
    keep-alive pool per (scheme, host, port), so each upstream has its own pool while all
    share one lifecycle. No connection limit: the server in front bounds concurrency, and a
    cap here would queue long streams behind each other and time out the connect phase.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        timeout=upstream_timeout(settings),
    )


def upstream_timeout(settings: Settings) -> aiohttp.ClientTimeout:
    """The upstream timeouts of CONTRACT §6 as aiohttp takes them."""
    # No total unless asked for: a stream may rightly last longer than any fixed bound.
    # ``connect`` covers DNS, TCP and TLS; ``sock_read`` is the longest wait for the
    # upstream's next bytes.
    return aiohttp.ClientTimeout(
        total=settings.upstream_total_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
        sock_read=settings.upstream_timeout_seconds,
    )


class _Target:
    """An upstream made ready to use: URL prefix, host for messages, Authorization value."""

    __slots__ = ("authorization", "host", "prefix")

    def __init__(self, base_url: str, authorization: str | None) -> None:
        url = URL(base_url)
        # Credentials in the URL would clash with the Authorization we set (and leak in logs).
        if url.scheme not in ("http", "https") or not url.host or url.user is not None:
            raise ValueError(base_url)
        self.prefix = str(url.with_query(None).with_fragment(None)).rstrip("/")
        self.host = url.raw_authority  # host[:port], for messages and logs
        self.authorization = authorization


class _Model(msgspec.Struct):
    model: str | None = None


_decode_model = msgspec.json.Decoder(_Model).decode


class _Exchange:
    """Per-request state shared by the relay and its disconnect watcher."""

    __slots__ = ("body_done", "client_gone", "receive", "task", "watcher")

    def __init__(
        self, task: asyncio.Task[object], receive: Receive, body_done: asyncio.Event | None
    ) -> None:
        self.task: asyncio.Task[object] | None = task
        self.receive: Receive | None = receive
        self.body_done = body_done
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
        # Over: drop what the exchange holds of the request, which a watch queue may keep
        # a little longer.
        self.receive = self.task = None
        if self.watcher is not None:
            self.watcher.cancel()

    def leave(self) -> None:
        # The client went away: cancel the relay, which closes the upstream connection.
        self.client_gone = True
        if self.task is not None:
            self.task.cancel()


class _WatchQueue:
    """Exchanges to start watching once they have lasted ``delay`` seconds.

    One timer for all of them, not one per request: every exchange waits the same delay, so
    they fall due in the order they came, and one that is over by then is skipped. The timer
    fires at most every quarter of the delay, however many requests arrive meanwhile.
    """

    __slots__ = ("_delay", "_pending", "_tick", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self._delay = delay
        self._tick = delay / 4
        self._pending: deque[tuple[float, _Exchange]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, exchange: _Exchange) -> None:
        self._pending.append((self.loop.time() + self._delay, exchange))
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
            exchange = pending.popleft()[1]
            if not exchange.over:
                exchange.watch()
        self._timer = (
            self.loop.call_at(max(pending[0][0], now + self._tick), self._due) if pending else None
        )


class Forwarder:
    """Forward every HTTP request to the upstream, streaming both ways (see the module doc).

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
        self._upstream_target = lru_cache(maxsize=_MAX_TARGETS)(self._new_target)
        self._watching: _WatchQueue | None = None
        key = settings.upstream_api_key
        self._default_authorization = None if key is None else f"Bearer {key.get_secret_value()}"
        self._default: _Target | None = None
        if settings.upstream_base_url is not None:
            try:
                self._default = _Target(settings.upstream_base_url, self._default_authorization)
            except ValueError:
                raise ConfigurationError(
                    "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL="
                    f"{_without_credentials(settings.upstream_base_url)!r} is "
                    "invalid: it must be an http(s) URL without credentials, such as "
                    "https://api.openai.com/v1."
                ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
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

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # Used on its own, the forwarder speaks lifespan itself; behind PromptMiddleware it
        # gets the same messages through the middleware.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def forward_body(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        *,
        upstream: Upstream | None = None,
        waited: bool = False,
        response_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> Coroutine[Any, Any, int]:
        """Send a request whose body was already read (see :class:`BodyForwarder`)."""
        # Not a coroutine itself: the caller awaits ours, one frame fewer on every resume.
        return self._forward(scope, body, None, receive, send, upstream, waited, response_headers)

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
        await self._forward(
            scope,
            body,
            asyncio.Event() if streamed_body else None,
            receive,
            send,
            scope.get(UPSTREAM_SCOPE_KEY),
            bool(scope.get(WAITED_SCOPE_KEY)),
            (),
        )

    async def _forward(
        self,
        scope: Scope,
        body: bytes,
        body_done: asyncio.Event | None,
        receive: Receive,
        send: Send,
        upstream: Upstream | None,
        waited: bool,
        response_headers: Sequence[tuple[bytes, bytes]],
    ) -> int:
        """Relay one request; ``body_done`` is set when the rest of a streamed body is read.
        Returns the response's status (the upstream's, or our error's), or 0 when the client
        left before there was one."""
        try:
            target = self._target(upstream)
        except RequestError as error:
            await send_error(send, error, response_headers)
            logger.info("upstream_request_failed", path=scope["path"], error=error.code)
            return error.status_code
        if target is None:
            refusal = _no_upstream(None if body_done is not None else body)
            await send_error(send, refusal, response_headers)
            logger.info("upstream_request_failed", path=scope["path"], error=refusal.code)
            return refusal.status_code

        task = asyncio.current_task()
        assert task is not None
        # A body still arriving is sent on as it comes; until it ends, its reader is the one
        # that sees a disconnect. Chat routes arrive whole (the middleware buffered them).
        exchange = _Exchange(task, receive, body_done)
        data: bytes | AsyncIterator[bytes] | None = body or None
        if body_done is not None:
            data = _stream_body(body, receive, exchange)
        try:
            if body_done is not None or waited:
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
            return await self._relay(scope, target, data, send, response_headers)
        except asyncio.CancelledError:
            if not exchange.client_gone or task.uncancel() > 0:
                raise
            logger.info("client_disconnected", path=scope["path"], upstream=target.host)
            return 0
        finally:
            exchange.stop_watching()

    def _watch_queue(self) -> _WatchQueue:
        loop = asyncio.get_running_loop()
        queue = self._watching
        if queue is None or queue.loop is not loop:
            queue = self._watching = _WatchQueue(loop, _WATCH_AFTER_SECONDS)
        return queue

    def _target(self, upstream: Upstream | None) -> _Target | None:
        return self._default if upstream is None else self._upstream_target(upstream)

    def _new_target(self, upstream: Upstream) -> _Target:
        # The entry's key, else PROMPT_MIDDLEWARE_UPSTREAM_API_KEY, else the client's.
        authorization = self._default_authorization
        if upstream.api_key is not None:
            authorization = f"Bearer {upstream.api_key.get_secret_value()}"
        try:
            return _Target(upstream.base_url, authorization)
        except ValueError:
            raise UpstreamUnavailable(
                f"The model's api_base {_without_credentials(upstream.base_url)!r} is not an "
                "http(s) URL without credentials."
            ) from None

    async def _relay(
        self,
        scope: Scope,
        target: _Target,
        data: bytes | AsyncIterator[bytes] | None,
        send: Send,
        response_headers: Sequence[tuple[bytes, bytes]],
    ) -> int:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        url = _upstream_url(target.prefix, path)
        query: bytes = scope.get("query_string", b"")
        if query:
            url = URL(f"{url}?{query.decode('latin-1')}", encoded=True)
        streamed = data is not None and not isinstance(data, bytes)
        headers = _request_headers(scope["headers"], target.authorization, keep_length=streamed)
        method: str = scope["method"]
        if self._detailed_debug:
            logger.info("upstream_request", curl=_curl(method, str(url), headers, data))

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
            error = self._translate(exc, target)
            await send_error(send, error, response_headers)
            logger.warning(
                "upstream_request_failed",
                path=scope["path"],
                upstream=target.host,
                error=error.code,
                reason=type(exc).__name__,
            )
            return error.status_code

        try:
            if self._on_upstream_response is not None:
                self._on_upstream_response(response.status, time.perf_counter() - started)
            answer_headers = _response_headers(response.raw_headers)
            answer_headers += response_headers
            start: Message = {
                "type": "http.response.start",
                "status": response.status,
                "headers": answer_headers,
            }
            try:
                await send(start)
            except OSError:
                # The client is gone (servers may raise instead of telling receive); what the
                # upstream answered is still what the request is counted under.
                return response.status
            content = response.content
            while True:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    # Too late for an error response: end without the final chunk, so the
                    # client's HTTP library reports a truncated body instead of a clean end.
                    logger.warning(
                        "upstream_stream_failed",
                        path=scope["path"],
                        upstream=target.host,
                        status=response.status,
                        reason=type(exc).__name__,
                    )
                    return response.status
                # Finish with the last chunk when it is known to be last: one message fewer.
                last = not chunk or content.at_eof()
                try:
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                except OSError:
                    return response.status
                if last:
                    return response.status
        finally:
            # Read to the end, the connection is back in the pool already; otherwise
            # (failure, client gone, cancelled) it cannot be reused and is closed.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    def _translate(self, exc: aiohttp.ClientError | TimeoutError, target: _Target) -> RequestError:
        settings = self._settings
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamUnavailable(
                f"Could not connect to the upstream {target.host} within "
                f"{settings.upstream_connect_timeout_seconds:g} s "
                "(PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS)."
            )
        total = settings.upstream_total_timeout_seconds
        if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
            # aiohttp's total timeout is a plain TimeoutError; its read timeout a ClientError.
            return UpstreamTimeout(
                f"The upstream {target.host} did not finish within {total or 0:g} s "
                "(PROMPT_MIDDLEWARE_UPSTREAM_TOTAL_TIMEOUT_SECONDS)."
            )
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(
                f"The upstream {target.host} sent no response within "
                f"{settings.upstream_timeout_seconds:g} s "
                "(PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS)."
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.strerror or type(exc.os_error).__name__
            return UpstreamUnavailable(
                f"Could not connect to the upstream {target.host}: {reason}."
            )
        return UpstreamUnavailable(
            f"The upstream {target.host} failed before answering ({type(exc).__name__})."
        )


@lru_cache(maxsize=_MAX_URLS)  # bounded: made-up paths cannot grow memory
def _upstream_url(prefix: str, path: str) -> URL:
    # A service calls a handful of paths on a handful of upstreams: quoting the path and
    # parsing the URL are done once for each.
    return URL(prefix + quote(upstream_path(path), safe=_PATH_SAFE), encoded=True)


def _request_headers(
    raw: Iterable[tuple[bytes, bytes]],
    authorization: str | None,
    *,
    keep_length: bool,
) -> list[tuple[str, str]]:
    drop = _DROP_REQUEST if authorization is None else _DROP_REQUEST_AUTH
    headers: list[tuple[str, str]] = []
    connection: bytes | None = None
    for name, value in raw:
        if name in drop:
            if name == b"connection":
                connection = value
            elif name == b"content-length" and keep_length:
                # A body sent on as it arrives keeps its declared length (else: chunked).
                headers.append(("content-length", value.decode("latin-1")))
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection is not None:
        named = _connection_tokens(connection)
        if named:
            headers = [(k, v) for k, v in headers if k.encode("latin-1") not in named]
    if authorization is not None:
        headers.append(("authorization", authorization))
    return headers


def _response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    connection: bytes | None = None
    for name, value in raw:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            if lowered == b"connection":
                connection = value
            continue
        headers.append((lowered, value))
    if connection is not None:
        named = _connection_tokens(connection)
        if named:
            headers = [(k, v) for k, v in headers if k not in named]
    return headers


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    # "Connection: keep-alive, X-Private" names headers for this hop only (RFC 9110 §7.6.1).
    tokens = {token.strip().lower() for token in value.split(b",")}
    return frozenset(tokens - _HOP_BY_HOP - {b""})


async def _stream_body(first: bytes, receive: Receive, exchange: _Exchange) -> AsyncIterator[bytes]:
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


async def _watch_disconnect(receive: Receive, exchange: _Exchange) -> None:
    # Runs beside the relay so that a client leaving while we wait for the upstream, or in the
    # middle of a stream, cancels the upstream request instead of letting it run on.
    with contextlib.suppress(Exception):
        if exchange.body_done is not None:
            await exchange.body_done.wait()
        while (await receive())["type"] != "http.disconnect":
            pass
        exchange.leave()


def _without_credentials(url: str) -> str:
    with contextlib.suppress(ValueError):
        parsed = URL(url)
        if parsed.user is not None or parsed.password is not None:
            return str(parsed.with_user(None))
    return url


def _no_upstream(body: bytes | None) -> InvalidPromptRequest:
    model = None
    if body:
        with contextlib.suppress(msgspec.DecodeError):
            model = _decode_model(body).model
    if model is not None:
        return InvalidPromptRequest(
            f"No upstream for model {model!r}: give its model_list entry an api_base or set "
            "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL.",
            param="model",
        )
    return InvalidPromptRequest(
        "No upstream to forward to: set PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL.", param="model"
    )


def _curl(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    data: bytes | AsyncIterator[bytes] | None,
) -> str:
    base, _, query = url.partition("?")
    if query:
        # Some APIs take their key in the query string (?key=..., ?api-key=...).
        fields = [field.partition("=") for field in query.split("&")]
        query = "&".join(
            f"{name}={_MASK}" if _SECRET_QUERY.search(name) else f"{name}{eq}{value}"
            for name, eq, value in fields
        )
        base = f"{base}?{query}"
    parts = ["curl", "-sS", "-X", method, shlex.quote(base)]
    for name, value in headers:
        if name.lower() in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {_MASK}" if rest else _MASK
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if isinstance(data, bytes):
        parts += ["--data-binary", shlex.quote(data.decode("utf-8", "replace"))]
    elif data is not None:
        parts += ["--data-binary", "@-", "# body streamed, not shown"]
    return " ".join(parts)
