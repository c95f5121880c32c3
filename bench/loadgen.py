"""The Python load generator, the benchmarks' fallback when wrk is not installed.

    .venv/bin/python bench/loadgen.py http://127.0.0.1:8000/v1/chat/completions body.json \\
        --connections 32 --duration 5

Keep-alive HTTP/1.1 on ``--connections`` connections, one request in flight on each: POST the
body, read one response (Content-Length or chunked, so streams count too), POST again, until
``--duration`` has passed. Prints one JSON line: requests per second, non-200 answers, p50
and p99 latency in milliseconds, and its own CPU percent (start-up excluded). Written on
asyncio protocols (uvloop when installed) so that it is not the bottleneck for a Python
server; its ceiling shows as the fake upstream hit directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding: *chunked", re.IGNORECASE)


class _Connection(asyncio.Protocol):
    """Send, read one response, send again; the response ends by length or by its last chunk."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buffer = bytearray()
        self._expected = -1  # total response bytes, once known
        self._chunked = False
        self._scan = 0  # where the next chunk's size line starts
        self._sent = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._buffer.clear()
        self._expected = -1
        self._chunked = False
        self._scan = 0
        self._sent = time.perf_counter_ns()
        self._transport.write(self._run.request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._complete():
            return
        run = self._run
        if self._buffer[9:12] == b"200":
            run.ok += 1
        else:
            run.failed += 1
        run.latencies.append(time.perf_counter_ns() - self._sent)
        if time.perf_counter() < run.deadline:
            self._send()
        else:
            assert self._transport is not None
            self._transport.close()

    def _complete(self) -> bool:
        buffer = self._buffer
        if self._expected < 0 and not self._chunked:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buffer[:end])
            length = _CONTENT_LENGTH.search(head)
            if length is not None:
                self._expected = end + 4 + int(length.group(1))
            elif _CHUNKED.search(head):
                self._chunked = True
                self._scan = end + 4
            else:
                raise RuntimeError("the load generator needs Content-Length or chunked responses")
        if not self._chunked:
            return len(buffer) >= self._expected
        while True:  # walk the chunks received so far
            line_end = buffer.find(b"\r\n", self._scan)
            if line_end < 0:
                return False
            size = int(bytes(buffer[self._scan : line_end]).split(b";")[0], 16)
            next_chunk = line_end + 2 + size + 2
            if len(buffer) < next_chunk:
                return False
            if size == 0:  # the last chunk (no trailers: its CRLF ends the response)
                return True
            self._scan = next_chunk

    def connection_lost(self, exc: Exception | None) -> None:
        self._run.closed.release()


class _Run:
    def __init__(self, url: str, body: bytes, duration: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.request = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.deadline = time.perf_counter() + duration
        self.ok = 0
        self.failed = 0
        self.latencies: list[int] = []
        self.closed = asyncio.Semaphore(0)


async def load(url: str, body: bytes, connections: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = _Run(url, body, duration)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(connections):
        await loop.create_connection(lambda: _Connection(run), run.host, run.port)
    async with asyncio.timeout(duration + 10):  # a server that stops answering fails the run
        for _ in range(connections):
            await run.closed.acquire()
    elapsed = time.perf_counter() - started
    p50 = p99 = None
    if len(run.latencies) >= 2:
        percentiles = statistics.quantiles(run.latencies, n=100)
        p50, p99 = percentiles[49] / 1e6, percentiles[98] / 1e6
    busy = (time.process_time() - cpu) / elapsed * 100
    return {
        "rps": run.ok / elapsed,
        "errors": run.failed,
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu": busy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("body", type=Path, help="a file holding the JSON body to POST")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    arguments = parser.parse_args()
    coroutine = load(
        arguments.url, arguments.body.read_bytes(), arguments.connections, arguments.duration
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coroutine)
    else:
        result = uvloop.run(coroutine)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
