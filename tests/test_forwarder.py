"""The forwarder against a fake upstream, both on real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import unittest.mock
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.handoff import UPSTREAM_SCOPE_KEY, WAITED_SCOPE_KEY, Upstream
from prompt_middleware.settings import Secret, Settings
from prompt_middleware.sidecar.forwarder import exchange as exchange_module
from prompt_middleware.sidecar.forwarder import app as app_module
from prompt_middleware.sidecar.forwarder import targets
from prompt_middleware.sidecar.forwarder import Forwarder, create_session
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import CannedResponse, FakeUpstream

SETTINGS_KEY = "sk-settings-secret"
ENTRY_KEY = "sk-entry-secret"
CLIENT_AUTH = "Bearer sk-client-secret"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
SAFETY = 10  # seconds: a bound on every wait, never the way a test synchronises


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def upstream(fake: FakeUpstream) -> AsyncIterator[str]:
    """The fake upstream's base URL, OpenAI-style (ends in /v1)."""
    async with serve_in_background(fake) as url:
        yield f"{url}/v1"


def with_upstream(app: ASGIApp, target: Upstream) -> ASGIApp:
    """What the middleware does for a model-list entry with an api_base."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, UPSTREAM_SCOPE_KEY: target}, receive, send)

    return wrapped


@contextlib.asynccontextmanager
async def forwarding(
    settings: Settings,
    *,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, Forwarder]]:
    """A forwarder on uvicorn and an httpx client talking to it."""
    forwarder = Forwarder(settings, **options)
    app = forwarder if wrap is None else wrap(forwarder)
    try:
        async with (
            serve_in_background(app) as url,
            httpx.AsyncClient(base_url=url, timeout=SAFETY) as client,
        ):
            yield client, forwarder
    finally:
        await forwarder.aclose()


def settings_for(base_url: str | None, **values: Any) -> Settings:
    return Settings(upstream_base_url=base_url, **values)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    return error


# --- requests and responses as sent ---------------------------------------------------------


async def test_chat_completion_round_trip(fake: FakeUpstream, upstream: str) -> None:
    timings: list[tuple[int, float]] = []
    body = b'{"model": "gpt-4o",  "messages": [{"role": "user", "content": "caf\xc3\xa9"}]}'
    on_response = lambda status, seconds: timings.append((status, seconds))  # noqa: E731
    async with forwarding(settings_for(upstream), on_upstream_response=on_response) as (
        client,
        _,
    ):
        response = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.json()["choices"][0]["message"]["content"] == body.decode()
    sent = fake.last
    assert (sent.method, sent.path, sent.body) == ("POST", "/v1/chat/completions", body)
    assert sent.header("content-length") == str(len(body))
    assert sent.header("content-type") == "application/json"
    assert sent.header("host") == upstream.removeprefix("http://").removesuffix("/v1")
    assert len(timings) == 1
    assert timings[0][0] == 200
    assert timings[0][1] > 0


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
async def test_path_with_or_without_v1_goes_to_base_url(
    fake: FakeUpstream, upstream: str, path: str
) -> None:
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.get(path + "?limit=2&after=a%20b&x=%2F")
    assert response.status_code == 200
    assert response.json()["data"][0]["id"] == "gpt-4o"
    assert fake.last.path == "/v1/models"
    assert fake.last.query == "limit=2&after=a%20b&x=%2F"
    assert fake.last.body == b""


async def test_each_request_keeps_its_own_path_and_query(fake: FakeUpstream, upstream: str) -> None:
    # The quoted upstream URL of a path is worked out once; the query is each request's own.
    sent = []
    async with forwarding(settings_for(upstream)) as (client, _):
        for target in ("/v1/files/a b?x=1", "/v1/files/a b?x=2", "/v1/files/a b", "/v1/models"):
            await client.get(target)
            sent.append((fake.last.path, fake.last.query))
    # The fake records the path as its server decoded it (the raw one was a%20b).
    assert sent == [
        ("/v1/files/a b", "x=1"),
        ("/v1/files/a b", "x=2"),
        ("/v1/files/a b", ""),
        ("/v1/models", ""),
    ]


def test_remembered_upstream_urls_stay_bounded_and_right() -> None:
    remembered = targets._path_url
    sizes = []
    for i in range(targets.MAX_URLS + 100):
        url = remembered("http://upstream:8000/v1", f"/v1/files/{i} x")
        assert str(url) == f"http://upstream:8000/v1/files/{i}%20x"
        sizes.append(remembered.cache_info().currsize)
    assert max(sizes) == targets.MAX_URLS


async def test_base_url_prefix_is_kept(fake: FakeUpstream, upstream: str) -> None:
    base = upstream.removesuffix("/v1") + "/openai/deployments/x/"
    async with forwarding(settings_for(base)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert fake.last.path == "/openai/deployments/x/chat/completions"
    # The fake's own 404 comes back as it sent it.
    assert response.status_code == 404
    assert (
        response.json()["error"]["message"] == "Unknown path /openai/deployments/x/chat/completions"
    )


async def test_upstream_error_passes_back_byte_for_byte(fake: FakeUpstream, upstream: str) -> None:
    fake.response = CannedResponse(
        500,
        b"upstream exploded \xff <not json>",
        [(b"content-type", b"text/plain"), (b"x-upstream-request-id", b"req-123")],
    )
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 500
    assert response.content == b"upstream exploded \xff <not json>"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-upstream-request-id"] == "req-123"
    assert response.headers["content-length"] == str(len(response.content))


async def test_compressed_body_passes_back_compressed(fake: FakeUpstream, upstream: str) -> None:
    compressed = gzip.compress(b'{"object": "list", "data": []}')
    fake.response = CannedResponse(
        200, compressed, [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    )
    async with (
        forwarding(settings_for(upstream)) as (client, _),
        client.stream("GET", "/v1/models", headers={"accept-encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == compressed
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(compressed))
    assert fake.last.header("accept-encoding") == "gzip"


async def test_hop_by_hop_request_headers_are_dropped(fake: FakeUpstream, upstream: str) -> None:
    headers = {
        "connection": "keep-alive, X-Private",
        "x-private": "for this hop",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "trailer": "x-checksum",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-kept": "yes",
        "user-agent": "my-client/1.0",
    }
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    sent = dict(fake.last.headers)
    for name in ("connection", "x-private", "keep-alive", "te", "trailer", "proxy-authorization"):
        assert name not in sent
    assert sent["x-kept"] == "yes"
    assert sent["user-agent"] == "my-client/1.0"
    assert fake.last.headers_named("host") == [upstream.split("/")[2]]
    assert fake.last.headers_named("content-length") == [str(len(fake.last.body))]


async def test_hop_by_hop_response_headers_are_dropped(fake: FakeUpstream, upstream: str) -> None:
    fake.extra_headers = [
        (b"connection", b"X-Private"),
        (b"x-private", b"for this hop"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authenticate", b"Basic"),
        (b"x-kept", b"yes"),
    ]
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.get("/v1/models")
    assert response.status_code == 200
    for name in ("connection", "x-private", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers
    assert response.headers["x-kept"] == "yes"


@pytest.mark.parametrize(
    ("padding", "declared", "framing"),
    [
        # A small body is gathered and sent with its length, however it arrived.
        (10, False, "content-length"),
        (10, True, "content-length"),
        # A large one is sent on as it arrives: with the client's length, else chunked.
        (100_000, True, "content-length"),
        (100_000, False, "chunked"),
    ],
)
async def test_request_body_in_several_messages(
    fake: FakeUpstream, upstream: str, padding: int, declared: bool, framing: str
) -> None:
    # Driven by hand so that the body really comes in three messages.
    parts = [b'{"model": "gpt-4o", "padding": "', b"x" * padding, b'", "messages": []}']
    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(sum(map(len, parts))).encode()))
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]
    forwarder = Forwarder(settings_for(upstream))
    try:
        sent = await call(forwarder, scope_for("POST", "/v1/chat/completions", headers), messages)
    finally:
        await forwarder.aclose()
    assert sent[0]["status"] == 200
    assert fake.last.body == b"".join(parts)
    if framing == "content-length":
        assert fake.last.headers_named("content-length") == [str(len(fake.last.body))]
        assert fake.last.header("transfer-encoding") is None
    else:
        assert fake.last.header("content-length") is None
        assert fake.last.header("transfer-encoding") == "chunked"


async def test_connections_are_pooled(fake: FakeUpstream, upstream: str) -> None:
    async with forwarding(settings_for(upstream)) as (client, _):
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert len({request.client for request in fake.requests}) == 1


# --- which upstream, which key --------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_key", "settings_key", "client_auth", "expected"),
    [
        (ENTRY_KEY, SETTINGS_KEY, CLIENT_AUTH, f"Bearer {ENTRY_KEY}"),
        (None, SETTINGS_KEY, CLIENT_AUTH, f"Bearer {SETTINGS_KEY}"),
        (None, None, CLIENT_AUTH, CLIENT_AUTH),
        (None, None, None, None),
    ],
)
@pytest.mark.parametrize("from_entry", [True, False])
async def test_authorization_precedence(
    fake: FakeUpstream,
    upstream: str,
    from_entry: bool,
    entry_key: str | None,
    settings_key: str | None,
    client_auth: str | None,
    expected: str | None,
) -> None:
    if not from_entry and entry_key is not None:
        expected = f"Bearer {settings_key}"
    key = None if settings_key is None else Secret(settings_key)
    entry = Upstream(upstream, None if entry_key is None else Secret(entry_key))
    wrap = (lambda app: with_upstream(app, entry)) if from_entry else None
    headers = {} if client_auth is None else {"authorization": client_auth}
    async with forwarding(settings_for(upstream, upstream_api_key=key), wrap=wrap) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    assert fake.last.headers_named("authorization") == ([] if expected is None else [expected])


async def test_upstream_in_scope_beats_settings(fake: FakeUpstream, upstream: str) -> None:
    other = FakeUpstream()
    async with serve_in_background(other) as other_url:
        entry = Upstream(f"{other_url}/v1", Secret(ENTRY_KEY))
        settings = settings_for(upstream, upstream_api_key=Secret(SETTINGS_KEY))
        async with forwarding(settings, wrap=lambda app: with_upstream(app, entry)) as (
            client,
            _,
        ):
            response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert fake.requests == []
    assert other.last.path == "/v1/chat/completions"
    assert other.last.header("authorization") == f"Bearer {ENTRY_KEY}"
    assert other.last.header("host") == other_url.removeprefix("http://")


async def test_no_upstream_is_a_400_naming_the_model() -> None:
    forwarder = Forwarder(Settings())
    transport = httpx.ASGITransport(app=forwarder)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        chat = await client.post("/v1/chat/completions", json={**CHAT, "model": "my-model"})
        models = await client.get("/v1/models")
    assert chat.status_code == 400
    error = error_of(chat)
    assert error["code"] == "invalid_prompt_request"
    assert error["param"] == "model"
    assert "'my-model'" in error["message"]
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in error["message"]
    assert models.status_code == 400
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in error_of(models)["message"]


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [("api.x", "'api.x'"), ("https://user:hunter2@api.x/v1", "'https://api.x/v1'")],
)
def test_invalid_base_url_is_refused_at_start(base_url: str, shown: str) -> None:
    expected = re.escape(f"PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL={shown} is invalid")
    with pytest.raises(ConfigurationError, match=expected) as raised:
        Forwarder(Settings(upstream_base_url=base_url))
    assert "hunter2" not in str(raised.value)


async def test_invalid_api_base_of_an_entry_is_502() -> None:
    entry = Upstream("https://user:hunter2@api.x/v1", Secret(ENTRY_KEY))
    app = with_upstream(Forwarder(Settings()), entry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_unavailable"
    assert "'https://api.x/v1'" in error_of(response)["message"]
    assert "hunter2" not in response.text
    assert ENTRY_KEY not in response.text


# --- the upstream failing -------------------------------------------------------------------


async def test_refused_connection_is_502() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        settings = settings_for(
            f"http://127.0.0.1:{port}/v1", upstream_api_key=Secret(SETTINGS_KEY)
        )
        with structlog.testing.capture_logs() as logs:
            async with forwarding(settings) as (client, _):
                response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_unavailable"
    assert f"127.0.0.1:{port}" in error["message"]
    assert SETTINGS_KEY not in response.text
    assert SETTINGS_KEY not in repr(logs)
    assert any(log["event"] == "upstream_request_failed" for log in logs)


class _SilentResolver(AbstractResolver):
    """A DNS server that never answers: the connect phase outlives any timeout."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


async def test_connect_timeout_is_502() -> None:
    settings = settings_for("http://llm.example.test/v1", upstream_connect_timeout_seconds=0.2)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=_SilentResolver())
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async with forwarding(settings, session_factory=session) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_unavailable"
    assert "llm.example.test" in error["message"]
    assert "PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS" in error["message"]


async def test_no_response_in_time_is_504(fake: FakeUpstream, upstream: str) -> None:
    fake.hold_headers = asyncio.Event()  # never set: the upstream never answers
    settings = settings_for(upstream, upstream_timeout_seconds=0.2)
    async with forwarding(settings) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 504
        error = error_of(response)
        assert error["code"] == "upstream_timeout"
        assert "PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS" in error["message"]
        # The forwarder gave up on the request: the upstream sees its client leave.
        async with asyncio.timeout(SAFETY):
            await fake.stream_cancelled.wait()


async def test_the_optional_total_timeout_is_504(fake: FakeUpstream, upstream: str) -> None:
    fake.hold_headers = asyncio.Event()  # never set: the upstream never answers
    settings = settings_for(upstream, upstream_total_timeout_seconds=0.2)
    async with forwarding(settings) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 504
        error = error_of(response)
        assert error["code"] == "upstream_timeout"
        assert "PROMPT_MIDDLEWARE_UPSTREAM_TOTAL_TIMEOUT_SECONDS" in error["message"]


async def test_upstream_dropping_mid_stream_ends_the_clients_stream(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.drop_after = 2
    received: list[bytes] = []

    async def read_all(response: httpx.Response) -> None:
        async for chunk in response.aiter_raw():
            received.append(chunk)

    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings_for(upstream)) as (client, _):
            request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
            async with asyncio.timeout(SAFETY), request as response:
                assert response.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_all(response)
    assert b"".join(received).count(b"data: ") == 2
    assert b"[DONE]" not in b"".join(received)
    assert any(log["event"] == "upstream_stream_failed" for log in logs)


# --- streaming ------------------------------------------------------------------------------


async def test_first_chunk_arrives_before_the_last_is_sent(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.gate = asyncio.Event()
    async with forwarding(settings_for(upstream)) as (client, _):
        request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
        async with asyncio.timeout(SAFETY), request as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.aiter_raw()
            first = await anext(chunks)
            # The upstream is still holding the rest of its stream.
            assert fake.open_streams == 1
            assert fake.completed == 0
            assert first.startswith(b"data: ")
            assert b'"role":"assistant"' in first
            fake.gate.set()
            rest = b"".join([chunk async for chunk in chunks])
    events = (first + rest).split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert len(events) == fake.chunks + 4
    deltas = [json.loads(event[6:])["choices"][0]["delta"] for event in events[1:-3]]
    assert "".join(delta["content"] for delta in deltas) == fake.last.body.decode()
    assert fake.completed == 1


async def test_client_leaving_mid_stream_cancels_the_upstream_request(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.gate = asyncio.Event()  # never set: the stream would go on forever
    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings_for(upstream)) as (client, _):
            request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
            async with asyncio.timeout(SAFETY):
                async with request as response:
                    assert b'"role":"assistant"' in await anext(response.aiter_raw())
                # Leaving the block closed the unfinished response, and its connection.
                await fake.stream_cancelled.wait()
            assert fake.open_streams == 0
            assert fake.completed == 0
            assert any(log["event"] == "client_disconnected" for log in logs)
            # The forwarder still works, on a new upstream connection: the old one was closed.
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert fake.requests[0].client != fake.requests[1].client


async def test_client_leaving_before_the_response_cancels_the_upstream_request(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.hold_headers = asyncio.Event()  # never set
    async with forwarding(settings_for(upstream)) as (client, _):
        waiting = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        async with asyncio.timeout(SAFETY):
            await fake.request_received.wait()
            waiting.cancel()  # the client gives up and closes its connection
            await fake.stream_cancelled.wait()
    assert waiting.cancelled()
    assert fake.cancelled == 1


async def test_a_quick_answer_starts_no_watcher(
    fake: FakeUpstream, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched: list[object] = []

    async def recording_watch(receive: Receive, exchange: object) -> None:
        watched.append(exchange)

    monkeypatch.setattr(exchange_module, "_watch_disconnect", recording_watch)
    monkeypatch.setattr(app_module, "_WATCH_AFTER_SECONDS", 3600.0)
    async with forwarding(settings_for(upstream)) as (client, forwarder):
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        queue = forwarder._watching  # private: the queue under test has no public view
        assert queue is not None
        # Each exchange waits in the queue, marked over: when it falls due, it is skipped.
        assert len(queue) == 3
        assert all(exchange.over for _, exchange in queue._pending)
    assert watched == []
    assert len(queue) == 0  # closing the forwarder dropped them and their timer


class FakeLoop:
    """The part of an event loop a watch queue uses, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        return self.call_at(self.now + delay, callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        self.timers.append((when, callback))
        return unittest.mock.Mock()

    def fire(self) -> None:
        when, callback = self.timers.pop(0)
        self.now = max(self.now, when)
        callback()


def test_exchanges_are_watched_when_due_and_only_if_still_going() -> None:
    loop = FakeLoop()
    queue = exchange_module.WatchQueue(loop, 0.04)  # type: ignore[arg-type]
    watched: list[str] = []

    class Exchange:
        def __init__(self, name: str) -> None:
            self.name = name
            self.over = False

        def watch(self) -> None:
            watched.append(self.name)

    first, second, third, fourth = (Exchange(n) for n in ("first", "second", "third", "4th"))
    queue.add(first)  # type: ignore[arg-type]
    loop.now += 0.001
    queue.add(second)  # type: ignore[arg-type]
    loop.now += 0.001
    queue.add(third)  # type: ignore[arg-type]
    loop.now += 0.019
    queue.add(fourth)  # type: ignore[arg-type]
    assert len(loop.timers) == 1  # one timer for every exchange
    second.over = True  # answered within the delay
    loop.fire()  # at 100.04: only the first is due
    assert watched == ["first"]
    # The third is due at 100.042, but the timer waits a quarter of the delay: 100.05.
    assert loop.timers[0][0] == pytest.approx(100.05)
    loop.fire()
    assert watched == ["first", "third"]  # the second was over: never watched
    assert loop.timers[0][0] == pytest.approx(100.061)  # the fourth is due after the tick
    loop.fire()
    assert watched == ["first", "third", "4th"]
    assert loop.timers == []
    assert len(queue) == 0
    queue.add(Exchange("later"))  # type: ignore[arg-type]
    assert len(loop.timers) == 1  # an empty queue starts its timer again


async def test_a_request_that_waited_is_watched_at_once(
    fake: FakeUpstream, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The middleware waited for a prompt store: the client may be gone, so the watcher runs
    # before the upstream call, whatever the delay for other requests.
    monkeypatch.setattr(app_module, "_WATCH_AFTER_SECONDS", 3600.0)
    fake.hold_headers = asyncio.Event()  # never set

    def waited(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, WAITED_SCOPE_KEY: True}, receive, send)

        return wrapped

    async with forwarding(settings_for(upstream), wrap=waited) as (client, _):
        waiting = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        async with asyncio.timeout(SAFETY):
            await fake.request_received.wait()
            waiting.cancel()
            await fake.stream_cancelled.wait()
    assert fake.cancelled == 1


async def test_a_client_gone_before_a_waited_request_is_sent_costs_no_upstream_call(
    fake: FakeUpstream, upstream: str
) -> None:
    # The client left while the middleware waited for the store: its disconnect is already
    # queued. The forwarder ends quietly (nothing raised to the server), with no upstream call.
    forwarder = Forwarder(settings_for(upstream))
    scope = {**scope_for("POST", "/v1/chat/completions", []), WAITED_SCOPE_KEY: True}
    messages: list[Message] = [
        {"type": "http.request", "body": json.dumps(CHAT).encode(), "more_body": False},
        {"type": "http.disconnect"},
    ]
    try:
        with structlog.testing.capture_logs() as logs:
            sent = await call(forwarder, scope, messages)
    finally:
        await forwarder.aclose()
    assert sent == []
    assert fake.requests == []
    assert [log["event"] for log in logs] == ["client_disconnected"]


# --- lifecycle and debugging ----------------------------------------------------------------


async def test_lifespan_closes_the_session(fake: FakeUpstream, upstream: str) -> None:
    settings = settings_for(upstream)
    sessions: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        sessions.append(create_session(settings))
        return sessions[-1]

    forwarder = Forwarder(settings, session_factory=session)
    async with serve_in_background(forwarder, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/v1/models")).status_code == 200
        assert len(sessions) == 1
        assert not sessions[0].closed
    assert sessions[0].closed


async def test_detailed_debug_logs_curl_without_secrets(fake: FakeUpstream, upstream: str) -> None:
    settings = settings_for(upstream, upstream_api_key=Secret(SETTINGS_KEY))
    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings, detailed_debug=True) as (client, _):
            await client.post("/v1/chat/completions?api-version=1&key=sk-query", json=CHAT)
    (log,) = [log for log in logs if log["event"] == "upstream_request"]
    curl = log["curl"]
    url = f"{upstream}/chat/completions?api-version=1&key=**********"
    assert curl.startswith(f"curl -sS -X POST '{url}'")
    assert "'authorization: Bearer **********'" in curl
    assert '"model":"gpt-4o"' in curl
    assert SETTINGS_KEY not in repr(logs)
    assert "sk-query" not in repr(logs)
    assert fake.last.query == "api-version=1&key=sk-query"  # masked in the log only


# --- a raw ASGI driver, for request bodies in several messages ------------------------------


def scope_for(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"sidecar"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }


async def call(app: ASGIApp, scope: Scope, messages: list[Message]) -> list[Message]:
    pending = list(messages)
    sent: list[Message] = []
    finished = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    async with asyncio.timeout(SAFETY):
        await app(scope, receive, send)
    return sent
