"""Shared fixtures: a recording ASGI app and clients that drive the middleware in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import msgspec
import pytest
from starlette.types import Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.stores.base import PromptStore

# The fake Langfuse and Humanloop servers, for the modules that ask for them.
pytest_plugins = ("tests.engine.fake_servers",)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    path: str

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class RecordingApp:
    """A tiny upstream-like ASGI app: records what reached it and answers 200 ``{"ok": true}``."""

    requests: list[Received] = field(default_factory=list)
    status: int = 200

    @property
    def last(self) -> Received:
        return self.requests[-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(Received(b"".join(chunks), headers, scope["path"]))
        body = b'{"ok":true}'
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def app() -> RecordingApp:
    return RecordingApp()


ClientFactory = Callable[..., httpx2.AsyncClient]


@pytest.fixture
async def make_client(app: RecordingApp) -> AsyncIterator[ClientFactory]:
    """``make_client(settings, stores=...)``: an httpx2 client talking to the wrapped app."""
    clients: list[httpx2.AsyncClient] = []
    middlewares: list[PromptMiddleware] = []

    def factory(
        settings: Settings | None = None, *, stores: dict[str, PromptStore] | None = None
    ) -> httpx2.AsyncClient:
        middleware = PromptMiddleware(app, settings or Settings(), stores=stores)
        middlewares.append(middleware)
        client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=middleware), base_url="http://testserver"
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
    for middleware in middlewares:
        await middleware.engine.aclose()
