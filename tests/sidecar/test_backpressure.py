"""A slow reader of a long stream is relayed with backpressure: the sidecar, run as its own
process so its memory can be read, holds a bounded amount whatever the stream's length.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from tests.fakes.raw_upstream import (
    Peer,
    RawUpstream,
    chunk,
    response_head,
)
from tests.sidecar.client_rig import (
    EVENT,
    LAST,
    RSS_BOUND,
    SSE,
    STREAM_BYTES,
    ChunkedCounter,
    json_head,
    memory_of,
    reset_peak,
    sidecar_process,
)


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
