"""Small ASGI pieces every part here shares: a whole response, lifespan, and a header's value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

from starlette.types import Receive, Send

__all__ = ["JSON", "header_of", "send_response", "serve_lifespan"]

LifespanHook = Callable[[], Awaitable[None]]


JSON: Final = b"application/json"


def header_of(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of the first header called ``name`` (lower-case), its name compared in any
    case: ASGI's names are lower-case, an HTTP client's or an app's are as they were written.
    Only a name of ``name``'s length is lowered to compare."""
    for key, value in headers:
        if key == name or (len(key) == len(name) and key.lower() == name):
            return value
    return None


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
