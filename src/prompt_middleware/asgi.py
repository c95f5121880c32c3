"""Two small ASGI answers every app here gives the same way: a whole response, and lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from starlette.types import Receive, Send

__all__ = ["JSON", "send_response", "serve_lifespan"]

LifespanHook = Callable[[], Awaitable[None]]


JSON: Final = b"application/json"


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the whole of ``body`` in one message."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_lifespan(
    receive: Receive,
    send: Send,
    *,
    startup: LifespanHook | None = None,
    shutdown: LifespanHook | None = None,
) -> None:
    """Answer the server's lifespan messages, running ``startup``/``shutdown`` before each."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
