"""The upstream's response, relayed to the client chunk by chunk as it arrives.

Status, headers and body go back as the upstream sent them (compressed bodies stay
compressed); only hop-by-hop headers are dropped. Once the response has started, a failing
upstream ends the client's response without its final chunk, so the client sees a truncated
transfer rather than a clean end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import structlog
from starlette.types import Message

from prompt_middleware.sidecar.forwarder.exchange import Exchange
from prompt_middleware.sidecar.forwarder.headers import response_headers

__all__ = ["UpstreamResponseCallback", "relay_response"]

logger = structlog.get_logger(__name__)

UpstreamResponseCallback = Callable[[int, float], None]


async def relay_response(
    response: aiohttp.ClientResponse,
    exchange: Exchange,
    host: str,
    on_response: UpstreamResponseCallback | None,
    started: float,
) -> int:
    """Send ``response`` to the client; the status it is counted under."""
    try:
        seconds = time.perf_counter() - started
        if on_response is not None:
            on_response(response.status, seconds)
        watch = exchange.handoff.watch
        if watch is not None:
            watch.upstream_answered(seconds)
        headers = response_headers(response.raw_headers)
        headers += exchange.handoff.response_headers
        start: Message = {
            "type": "http.response.start",
            "status": response.status,
            "headers": headers,
        }
        send = exchange.send
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
                _stream_failed(exchange, host, response.status, exc)
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


def _stream_failed(exchange: Exchange, host: str, status: int, exc: Exception) -> None:
    span = exchange.handoff.trace
    if span is not None:  # the answer is cut short: the span says how
        span.fail(type(exc).__name__)
    logger.warning(
        "upstream_stream_failed",
        path=exchange.scope["path"],
        upstream=host,
        status=status,
        reason=type(exc).__name__,
    )
