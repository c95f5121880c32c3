"""The HTTP-client side of a request span: it reads the response body as the caller reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from prompt_middleware.tracing.span import GenerationSpan

__all__ = ["TracedStream"]


class TracedStream(httpx2.AsyncByteStream):
    """A response stream that shows the span each chunk and ends it when closed.

    Each chunk is shown to the span as it is handed to the caller (reading it takes
    microseconds and keeps nothing back); the span ends when the stream closes, which the
    client does once the body is read or the response is closed. An httpx2 stream; the httpx
    transport uses a subclass that is an httpx stream too (``transport_httpx.py``), as each
    client checks for its own stream class.
    """

    def __init__(self, stream: httpx2.AsyncByteStream, span: GenerationSpan) -> None:
        self._stream = stream
        self._span = span

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            # Before the yield: a caller that stops after the last chunk never resumes us.
            self._span.response_chunk(chunk)
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._span.end()
