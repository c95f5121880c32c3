"""Serve an ASGI app with a real uvicorn on 127.0.0.1, in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_in_background"]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Leave SIGINT/SIGTERM to pytest: a test server must not swallow Ctrl+C.
        yield


@contextlib.asynccontextmanager
async def serve_in_background(
    app: ASGIApp, *, lifespan: Literal["on", "off"] = "off"
) -> AsyncIterator[str]:
    """Start uvicorn on 127.0.0.1 on a free port; yield its base URL; stop it on exit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        if not server.started:
            ready.cancel()
            task.result()  # startup failed: raise its error
            raise RuntimeError("uvicorn stopped before it started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
