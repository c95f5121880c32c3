"""Clients that misbehave: they leave half-way, read slowly, send odd but valid HTTP.

The sidecar (and the middleware alone, in front of a :class:`RecordingApp`) runs on uvicorn
on 127.0.0.1 and is spoken to over raw sockets, so a test controls every byte and every
close. A client that leaves reaches nothing it had not reached yet, cancels what it had, and
leaves no task, descriptor or upstream connection behind. A slow reader of a long stream is
relayed with backpressure: the sidecar, run as its own process so its memory can be read,
holds a bounded amount whatever the stream's length.

This module: the raw-socket client, the rigs, the bodies the tests send.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.memory import MemoryStore, text_prompt
from tests.fakes.raw_upstream import (
    Peer,
    RawUpstream,
    Resources,
    chunk,
    response_head,
    settle,
)
from tests.fakes.server import serve_in_background

ROOT = Path(__file__).resolve().parents[2]


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


PARTIAL_BODIES = {
    # 10 of the 1000 bytes announced.
    "content-length": json_head(1000) + MANAGED[:10],
    # One chunk, and never the last one.
    "chunked": request_head(URL, {"transfer-encoding": "chunked"}) + chunk(MANAGED[:10]),
}


async def exchange(url: str, body: bytes) -> None:
    client = await RawClient.connect(url)
    await client.send(json_head(len(body)) + body)
    assert (await client.read_response())[0] == 200
    await client.close()


CHUNKED_BODIES = {
    "managed": (MANAGED, REWRITTEN),
    # Not managed: passed on byte for byte, odd spacing and all.
    "unmanaged": (b'{"model":  "gpt-4o", "messages": [], "seed": 7}',) * 2,
}


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
