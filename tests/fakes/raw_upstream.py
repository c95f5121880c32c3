"""A bare HTTP/1.1 upstream on 127.0.0.1 that misbehaves on purpose, and counters of what leaks.

:class:`RawUpstream` runs a *script* for each accepted connection, on plain asyncio streams,
so a test can do what no well-behaved server does: never answer, stop half-way through a body,
reset the connection. It counts connections accepted and closed, so a test can assert that
the sidecar dropped (or pooled) the upstream connection; ``open`` is the difference.

:class:`Resources` counts what a process can leak: asyncio tasks and file descriptors.
:func:`settle` polls a condition with ``asyncio.sleep(0)``: the loop runs, no time passes on
purpose; the deadline is a safety net only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

__all__ = [
    "Peer",
    "RawRequest",
    "RawUpstream",
    "Resources",
    "Script",
    "chunk",
    "response_head",
    "settle",
]

SAFETY = 10.0  # seconds: a bound on every wait, never the way a test synchronises


@dataclass(frozen=True)
class RawRequest:
    """One request as it arrived: the head parsed a little, the body as bytes."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


@dataclass
class Peer:
    """One accepted connection, as a script sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    upstream: RawUpstream

    async def read_request(self) -> RawRequest | None:
        """The next request on this connection (Content-Length bodies); None at EOF."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        ]
        length = int(next((v for k, v in headers if k == "content-length"), "0"))
        body = await self.reader.readexactly(length)
        request = RawRequest(method, target, headers, body)
        self.upstream.requests.append(request)
        self.upstream.request_received.set()
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_eof(self) -> None:
        """Wait for the other side to close; whatever it sends meanwhile is counted and dropped."""
        while data := await self.reader.read(65536):
            self.upstream.extra_bytes += len(data)

    def reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
        sock: socket.socket = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Script = Callable[[Peer], Awaitable[None]]


class RawUpstream:
    """``async with RawUpstream(script) as upstream``: ``upstream.url`` ends in ``/v1``."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.closed = 0
        self.extra_bytes = 0
        self.requests: list[RawRequest] = []
        self.request_received = asyncio.Event()
        self.url = ""

    @property
    def open(self) -> int:
        return self.accepted - self.closed

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        # Python 3.11's wait_closed does not wait for the connections: end them here.
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.accepted += 1
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await self._script(Peer(reader, writer, self))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.closed += 1
            self._handlers.discard(task)


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (an empty ``data`` is the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True)
class Resources:
    """What this process holds that a request could leak: tasks, descriptors, sockets.

    ``detail`` names the tasks, for the assertion message; it is not compared.
    """

    tasks: int
    fds: int
    sockets: int
    detail: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def now(cls) -> Resources:
        tasks = asyncio.all_tasks()
        fds = os.listdir("/proc/self/fd")
        sockets = 0
        for fd in fds:
            # The descriptor listdir itself used is gone by now: skip what cannot be read.
            with contextlib.suppress(OSError):
                sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        names = tuple(sorted(getattr(task.get_coro(), "__qualname__", "?") for task in tasks))
        return cls(len(tasks), len(fds), sockets, names)

    @classmethod
    def baseline(cls) -> Resources:
        """:meth:`now`, after collecting garbage: an earlier test's lost socket closing later
        must not look like this test's doing."""
        gc.collect()
        return cls.now()

    def plus(self, *, tasks: int = 0, sockets: int = 0) -> Resources:
        """This, with ``tasks`` more tasks and ``sockets`` more sockets (each one descriptor)."""
        return Resources(self.tasks + tasks, self.fds + sockets, self.sockets + sockets)


async def settle(condition: Callable[[], bool]) -> bool:
    """Let the loop run until ``condition()`` holds; False if it still fails at the deadline."""
    deadline = time.monotonic() + SAFETY
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0)
    return True
