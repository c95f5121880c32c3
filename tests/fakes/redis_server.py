"""A real Redis for tests (Debian's ``redis-server`` on a free 127.0.0.1 port), and a "silent
Redis" that accepts connections and never answers.

The server is started with no persistence in a temporary directory; start-up is awaited by
reading its log for "Ready to accept connections" (an event, not a timer), then checked with
a PING. ``kill``/``restart`` keep the port, so clients configured with the URL reconnect.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO

__all__ = ["RedisServer", "SilentRedis", "redis_server_binary", "running_redis"]

_READY = b"Ready to accept connections"
_START_TIMEOUT = 20.0


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or None when it is not installed."""
    found = shutil.which("redis-server")
    if found is None and os.path.exists("/usr/sbin/redis-server"):
        found = "/usr/sbin/redis-server"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``url`` stays the same across ``kill`` and ``start``."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/install-test-servers")
        self._binary = binary
        self._directory = tempfile.mkdtemp(prefix="pm-redis-")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once it answers PING."""
        process = subprocess.Popen(
            [
                self._binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._directory,
                "--logfile", "",
                # Keyspace events: a test awaits a key being written instead of polling it.
                "--notify-keyspace-events", "KA",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self._directory,
        )  # fmt: skip
        self._process = process
        assert process.stdout is not None
        _wait_for_line(process.stdout, _READY, _START_TIMEOUT)
        # The log is read no further: drain it so that the server never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        if not self.ping():
            raise RuntimeError("redis-server said it was ready but does not answer PING")

    def ping(self) -> bool:
        """True if the server answers PING within a second."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (no goodbye to its clients) and reap it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """SIGTERM the server and reap it."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def pause(self) -> None:
        """SIGSTOP the server: connections are still accepted (by the kernel), never answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Kill the server and start a fresh (empty) one on the same port."""
        self.kill()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped and cleaned up on exit."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


class SilentRedis:
    """A TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._accepted: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return len(self._accepted)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._accepted.append(connection)  # held open, read never, answered never

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for connection in self._accepted:
            connection.close()


def _wait_for_line(stream: IO[bytes], needle: bytes, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while needle not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError(f"redis-server did not start: {seen[-2000:]!r}")
            chunk = stream.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                raise RuntimeError(f"redis-server exited: {seen[-2000:]!r}")
            seen += chunk


def _drain(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):
        while stream.read1(4096):  # type: ignore[attr-defined]
            pass
