"""Clients that misbehave: they leave half-way, read slowly, send odd but valid HTTP.

The sidecar (and the middleware alone, in front of a :class:`RecordingApp`) runs on uvicorn
on 127.0.0.1 and is spoken to over raw sockets, so a test controls every byte and every
close. A client that leaves reaches nothing it had not reached yet, cancels what it had, and
leaves no task, descriptor or upstream connection behind. A slow reader of a long stream is
relayed with backpressure: the sidecar, run as its own process so its memory can be read,
holds a bounded amount whatever the stream's length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.memory import MemoryStore, text_prompt
from tests.fakes.raw_upstream import (
    SAFETY,
    Peer,
    RawUpstream,
    Resources,
    chunk,
    response_head,
    settle,
)
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
URL = "/v1/chat/completions"
MANAGED = b'{"model": "mem/gpt-4o", "prompt_id": "greeting", "prompt_variables": {"name": "Ada"}}'
MANAGED_STREAM = MANAGED[:-1] + b', "stream": true}'
REWRITTEN = b'{"model":"gpt-4o","messages":[{"role":"user","content":"Hello Ada"}]}'
JSON = "application/json"
SSE = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]


def memory_store() -> MemoryStore:
    return MemoryStore(text_prompt("greeting", "Hello {{name}}"))


@dataclass
class Tracked:
    """An ASGI wrapper that counts the HTTP requests the app is done with: what a test waits on."""

    app: ASGIApp
    finished: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.finished += 1


@dataclass
class RawClient:
    """One client connection, driven byte by byte."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, base_url: str) -> RawClient:
        port = int(base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        return int(status_line.split()[1]), headers

    async def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers = await self.read_head()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
            return status, headers, body
        return status, headers, await self.reader.readexactly(int(headers["content-length"]))

    async def close(self, how: str = "close") -> None:
        if how == "reset":
            sock: socket.socket = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: sidecar", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_head(length: int, **extra: str) -> bytes:
    headers = {"content-type": JSON, "content-length": str(length)}
    return request_head(URL, {**headers, **{k.replace("_", "-"): v for k, v in extra.items()}})


ANSWER = b'{"object": "chat.completion"}'


async def answer_json(peer: Peer) -> None:
    head = response_head(200, [("content-type", JSON), ("content-length", str(len(ANSWER)))])
    while await peer.read_request() is not None:
        await peer.send(head + ANSWER)


@dataclass
class Rig:
    url: str
    tracked: Tracked
    baseline: Resources
    upstream: RawUpstream | None = None
    store: MemoryStore = field(default_factory=memory_store)

    async def assert_clean(self, *, pooled: int = 0) -> None:
        """No task, descriptor or upstream connection left but ``pooled`` idle ones."""
        expected = self.baseline.plus(tasks=pooled, sockets=2 * pooled)

        def clean() -> bool:
            open_upstream = 0 if self.upstream is None else self.upstream.open
            return open_upstream == pooled and Resources.now() == expected

        if not await settle(clean):
            pytest.fail(f"left behind: {Resources.now()} (expected {expected})")


@contextlib.asynccontextmanager
async def sidecar_rig(**values: Any) -> AsyncIterator[Rig]:
    """The sidecar with a memory store (``mem/``) in front of a :class:`RawUpstream`."""
    store = memory_store()
    async with RawUpstream(answer_json) as upstream:
        settings = Settings(upstream_base_url=upstream.url, **values)
        tracked = Tracked(Sidecar(settings, stores={"mem": store}))
        async with serve_in_background(tracked, lifespan="on") as url:
            yield Rig(url, tracked, Resources.baseline(), upstream, store)


@contextlib.asynccontextmanager
async def middleware_rig(app: RecordingApp) -> AsyncIterator[Rig]:
    """The middleware alone in front of ``app``, on uvicorn."""
    store = memory_store()
    middleware = PromptMiddleware(app, Settings(), stores={"mem": store})
    tracked = Tracked(middleware)
    async with serve_in_background(tracked) as url:
        yield Rig(url, tracked, Resources.baseline(), store=store)
    await middleware.engine.aclose()


# --- leaving early --------------------------------------------------------------------------


PARTIAL_BODIES = {
    # 10 of the 1000 bytes announced.
    "content-length": json_head(1000) + MANAGED[:10],
    # One chunk, and never the last one.
    "chunked": request_head(URL, {"transfer-encoding": "chunked"}) + chunk(MANAGED[:10]),
}


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("framing", list(PARTIAL_BODIES))
@pytest.mark.parametrize("target", ["sidecar", "middleware"])
async def test_a_client_leaving_before_its_body_is_complete_reaches_nothing(
    target: str, framing: str, how: str
) -> None:
    app = RecordingApp()
    rig = sidecar_rig() if target == "sidecar" else middleware_rig(app)
    async with rig as r:
        client = await RawClient.connect(r.url)
        await client.send(PARTIAL_BODIES[framing])
        await client.close(how)
        async with asyncio.timeout(SAFETY):  # a safety net: the request ends by itself
            assert await settle(lambda: r.tracked.finished == 1)
        assert app.requests == []
        assert r.store.total_calls == 0
        if r.upstream is not None:
            assert r.upstream.accepted == 0
        await r.assert_clean()


async def test_a_client_leaving_mid_upload_cancels_the_upstream_request() -> None:
    # Past 64 KiB the forwarder streams a body on as it arrives (an upload to /v1/files):
    # the upstream has the request already when the client goes; its connection must close.

    async def swallow(peer: Peer) -> None:
        await peer.reader.readuntil(b"\r\n\r\n")
        await peer.until_eof()

    with structlog.testing.capture_logs() as logs:
        async with RawUpstream(swallow) as upstream:
            tracked = Tracked(Sidecar(Settings(upstream_base_url=upstream.url), stores={}))
            async with serve_in_background(tracked, lifespan="on") as url:
                baseline = Resources.baseline()
                client = await RawClient.connect(url)
                head = request_head("/v1/files", {"content-length": str(1_000_000)})
                await client.send(head + b"x" * 200_000)
                assert await settle(lambda: upstream.extra_bytes > 65_536)
                await client.close()
                await Rig(url, tracked, baseline, upstream).assert_clean()
                assert tracked.finished == 1
    assert upstream.accepted == 1
    assert upstream.extra_bytes <= 200_000
    assert any(log["event"] == "client_disconnected" for log in logs)


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_leaving_mid_stream_cancels_the_upstream_stream(how: str) -> None:
    fake = FakeUpstream()
    fake.gate = asyncio.Event()  # never set: without the client leaving, it streams forever
    async with serve_in_background(fake) as upstream_url:
        settings = Settings(upstream_base_url=upstream_url + "/v1")
        tracked = Tracked(Sidecar(settings, stores={"mem": memory_store()}))
        async with serve_in_background(tracked, lifespan="on") as url:
            baseline = Resources.baseline()
            client = await RawClient.connect(url)
            await client.send(json_head(len(MANAGED_STREAM)) + MANAGED_STREAM)
            async with asyncio.timeout(SAFETY):
                status, headers = await client.read_head()
                assert (status, headers["x-prompt-name"]) == (200, "greeting")
                assert b"data: " in await client.reader.read(65536)
                await client.close(how)
                await fake.stream_cancelled.wait()
            assert (fake.open_streams, fake.completed, fake.cancelled) == (0, 0, 1)
            assert json.loads(fake.last.body) == {**json.loads(REWRITTEN), "stream": True}
            await Rig(url, tracked, baseline).assert_clean()


@pytest.mark.parametrize("pooled", [False, True])
async def test_a_client_leaving_while_its_prompt_is_fetched_is_not_sent_upstream(
    pooled: bool,
) -> None:
    async with sidecar_rig() as r:
        assert r.upstream is not None
        r.store.put(text_prompt("farewell", "Bye {{name}}"))
        if pooled:  # an earlier request leaves an idle keep-alive connection to the upstream
            await exchange(r.url, MANAGED)
        r.store.gate = asyncio.Event()
        client = await RawClient.connect(r.url)
        abandoned = MANAGED.replace(b'"greeting"', b'"farewell"')
        await client.send(json_head(len(abandoned)) + abandoned)
        assert await settle(lambda: r.store.total_calls == 1 + pooled)
        await client.close()
        r.store.gate.set()  # the prompt arrives after its client has gone
        assert await settle(lambda: r.tracked.finished == 1 + pooled)
        if pooled:
            # A request after it, on the same pooled connection: the upstream has read
            # whatever came before it.
            await exchange(r.url, MANAGED)
            assert [request.body for request in r.upstream.requests] == [REWRITTEN] * 2
            assert r.upstream.accepted == 1  # and the pooled connection is still good
            await r.assert_clean(pooled=1)
        else:
            await r.assert_clean()  # the upstream read all it was sent before it closed
            assert r.upstream.requests == []


async def exchange(url: str, body: bytes) -> None:
    client = await RawClient.connect(url)
    await client.send(json_head(len(body)) + body)
    assert (await client.read_response())[0] == 200
    await client.close()


# --- odd but valid HTTP ---------------------------------------------------------------------


async def test_expect_100_continue_gets_its_continue_and_the_rewrite() -> None:
    async with sidecar_rig() as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        async with asyncio.timeout(SAFETY):
            await client.send(json_head(len(MANAGED), expect="100-continue"))
            # The body is sent only once the server asks for it.
            assert await client.reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            await client.send(MANAGED)
            status, headers, body = await client.read_response()
        assert (status, headers["x-prompt-name"]) == (200, "greeting")
        assert body == ANSWER
        (sent,) = r.upstream.requests
        assert sent.body == REWRITTEN
        assert sent.header("content-length") == str(len(REWRITTEN))
        assert sent.header("expect") is None  # answered by us, not passed on
        await client.close()
        await r.assert_clean(pooled=1)


async def test_expect_100_continue_over_the_body_limit_is_refused_without_a_continue() -> None:
    async with sidecar_rig(max_body_bytes=1000) as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        async with asyncio.timeout(SAFETY):
            await client.send(json_head(5000, expect="100-continue"))
            # No "100 Continue": the answer comes before the body is ever sent.
            status, _, body = await client.read_response()
        assert status == 413
        assert json.loads(body)["error"]["code"] == "request_too_large"
        assert r.upstream.accepted == 0
        await client.close()
        await r.assert_clean()


CHUNKED_BODIES = {
    "managed": (MANAGED, REWRITTEN),
    # Not managed: passed on byte for byte, odd spacing and all.
    "unmanaged": (b'{"model":  "gpt-4o", "messages": [], "seed": 7}',) * 2,
}


@pytest.mark.parametrize("case", list(CHUNKED_BODIES))
async def test_a_chunked_request_body_reaches_the_upstream_with_a_content_length(
    case: str,
) -> None:
    sent_body, expected = CHUNKED_BODIES[case]
    async with sidecar_rig() as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        head = request_head(URL, {"content-type": JSON, "transfer-encoding": "chunked"})
        async with asyncio.timeout(SAFETY):
            await client.send(head)
            # Three chunks in three writes, one with a chunk extension, then the last chunk.
            await client.send(chunk(sent_body[:7]))
            await client.send(b"%x;ext=1\r\n%s\r\n" % (len(sent_body[7:20]), sent_body[7:20]))
            await client.send(chunk(sent_body[20:]) + chunk(b""))
            status, _, _ = await client.read_response()
        assert status == 200
        (sent,) = r.upstream.requests
        assert sent.body == expected
        assert sent.header("content-length") == str(len(expected))
        assert sent.header("transfer-encoding") is None
        await client.close()
        await r.assert_clean(pooled=1)


# --- a slow reader of a long stream ---------------------------------------------------------


STREAM_BYTES = 128 * 1024 * 1024
EVENT = b"data: " + b"x" * (64 * 1024 - 8) + b"\n\n"  # 64 KiB per SSE event
LAST = b"data: [DONE]\n\n"
RSS_BOUND = 16 * 1024 * 1024  # an eighth of the stream


class ChunkedCounter:
    """Decodes a chunked body as it arrives; counts its bytes and keeps its tail."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data_left = 0  # of the current chunk
        self._crlf_left = 0  # after it
        self.size = 0
        self.tail = b""
        self.done = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._buffer and not self.done:
            if self._data_left:
                part = self._buffer[: self._data_left]
                self._buffer = self._buffer[len(part) :]
                self._data_left -= len(part)
                self.size += len(part)
                self.tail = (self.tail + part)[-64:]
            elif self._crlf_left:
                skipped = min(self._crlf_left, len(self._buffer))
                self._buffer = self._buffer[skipped:]
                self._crlf_left -= skipped
            else:
                line, crlf, rest = self._buffer.partition(b"\r\n")
                if not crlf:
                    return
                self._buffer = rest
                self._data_left = int(line.split(b";")[0], 16)
                self._crlf_left = 2
                self.done = self._data_left == 0


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0]) * 1024
    return values


def reset_peak(pid: int) -> None:
    """Set a process's VmHWM (its peak RSS) to its current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextlib.asynccontextmanager
async def sidecar_process(upstream_url: str) -> AsyncIterator[tuple[str, int]]:
    """``python -m prompt_middleware serve`` with its environment; yields its URL and pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    environ.update(
        PYTHONPATH=str(ROOT),
        PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL=upstream_url,
        PROMPT_MIDDLEWARE_STORES="mem=tests.fakes.memory:greeting_store",
        PROMPT_MIDDLEWARE_PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "prompt_middleware",
        "serve",
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(60):  # a safety net: start-up is awaited on its log line
            while b"Uvicorn running on" not in (line := await process.stderr.readline()):
                assert line, "the sidecar exited before it started"

        async def discard(stream: asyncio.StreamReader) -> None:
            while await stream.read(65536):
                pass

        drain = asyncio.create_task(discard(process.stderr))
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        if drain is not None:
            await drain


async def test_a_slow_reader_of_a_long_stream_keeps_the_sidecars_memory_bounded() -> None:
    sent = [0]

    async def long_stream(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            size = int(request.header("x-stream-bytes") or 0)
            await peer.send(response_head(200, SSE))
            for _ in range(size // len(EVENT)):
                await peer.send(chunk(EVENT))  # waits while the sidecar does not read
                sent[0] += len(EVENT)
                await asyncio.sleep(0)  # let the client's loop run between writes
            await peer.send(chunk(LAST) + chunk(b""))

    body = b'{"model": "mem/gpt-4o", "prompt_id": "hello", "stream": true}'

    async def stream(url: str, size: int, reads: Callable[[int], int]) -> ChunkedCounter:
        """Ask for ``size`` bytes; read with ``reads(n)`` bytes for the n-th recv."""
        loop = asyncio.get_running_loop()
        with socket.socket() as sock:
            # Set before connecting, so the window the client offers is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", int(url.rsplit(":", 1)[1])))
            head = json_head(len(body), x_stream_bytes=str(size))
            await loop.sock_sendall(sock, head + body)
            received = b""
            while b"\r\n\r\n" not in received:
                received += await loop.sock_recv(sock, 4096)
            head_bytes, _, rest = received.partition(b"\r\n\r\n")
            assert head_bytes.startswith(b"HTTP/1.1 200")
            counter = ChunkedCounter()
            counter.feed(rest)
            n = 0
            while not counter.done:
                data = await loop.sock_recv(sock, reads(n))
                assert data, "the sidecar ended the stream early"
                counter.feed(data)
                n += 1
                await asyncio.sleep(0)
        return counter

    async with RawUpstream(long_stream) as upstream, sidecar_process(upstream.url) as (url, pid):
        async with asyncio.timeout(120):  # a safety net only
            # Warm up: a first stream lets the sidecar make its pools and buffers.
            warm = await stream(url, 4 * 1024 * 1024, lambda n: 1 << 20)
            assert warm.size == 4 * 1024 * 1024 + len(LAST)
            reset_peak(pid)
            before = memory_of(pid)
            sent[0] = 0
            backlog = [0]

            def slow_then_fast(n: int) -> int:
                # 16 bytes a read for 32768 reads (512 KiB), then as fast as it can. While it
                # crawls, an unbounded relay would have taken the whole stream from upstream.
                if n < 32768:
                    return 16
                if n == 32768:
                    backlog[0] = sent[0]
                return 1 << 20

            counter = await stream(url, STREAM_BYTES, slow_then_fast)
        after = memory_of(pid)
    assert counter.size == STREAM_BYTES + len(LAST)
    assert counter.tail.endswith(EVENT[-16:] + LAST)
    # While the client crawled, the upstream could only fill the buffers between them.
    assert backlog[0] < STREAM_BYTES // 2, backlog
    growth = after["VmHWM"] - before["VmRSS"]
    assert growth < RSS_BOUND, f"the sidecar's peak RSS grew by {growth} bytes"
