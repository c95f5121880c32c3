"""What the forwarder's tests share: a forwarder on uvicorn and a client, raw ASGI calls."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import unittest.mock
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
from aiohttp.abc import AbstractResolver, ResolveResult
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.handoff import UPSTREAM_SCOPE_KEY, Upstream
from prompt_middleware.settings import Settings
from prompt_middleware.sidecar.forwarder import Forwarder
from tests.fakes.server import serve_in_background

SETTINGS_KEY = "sk-settings-secret"


ENTRY_KEY = "sk-entry-secret"


CLIENT_AUTH = "Bearer sk-client-secret"


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


SAFETY = 10  # seconds: a bound on every wait, never the way a test synchronises


def with_upstream(app: ASGIApp, target: Upstream) -> ASGIApp:
    """What the middleware does for a model-list entry with an api_base."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, UPSTREAM_SCOPE_KEY: target}, receive, send)

    return wrapped


@contextlib.asynccontextmanager
async def forwarding(
    settings: Settings,
    *,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[httpx2.AsyncClient, Forwarder]]:
    """A forwarder on uvicorn and an httpx2 client talking to it."""
    forwarder = Forwarder(settings, **options)
    app = forwarder if wrap is None else wrap(forwarder)
    try:
        async with (
            serve_in_background(app) as url,
            httpx2.AsyncClient(base_url=url, timeout=SAFETY) as client,
        ):
            yield client, forwarder
    finally:
        await forwarder.aclose()


def settings_for(base_url: str | None, **values: Any) -> Settings:
    return Settings(upstream_base_url=base_url, **values)


def error_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    return error


class _SilentResolver(AbstractResolver):
    """A DNS server that never answers: the connect phase outlives any timeout."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


class FakeLoop:
    """The part of an event loop a watch queue uses, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        return self.call_at(self.now + delay, callback)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        self.timers.append((when, callback))
        return unittest.mock.Mock()

    def fire(self) -> None:
        when, callback = self.timers.pop(0)
        self.now = max(self.now, when)
        callback()


def scope_for(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"sidecar"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }


async def call(app: ASGIApp, scope: Scope, messages: list[Message]) -> list[Message]:
    pending = list(messages)
    sent: list[Message] = []
    finished = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    async with asyncio.timeout(SAFETY):
        await app(scope, receive, send)
    return sent
