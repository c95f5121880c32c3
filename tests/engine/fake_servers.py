"""The fake Langfuse and Humanloop on uvicorn (one pair per test module), a trap listener for
the host an attacker names, and the secrets no output may show: shared by the security tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import httpx2
import pytest
import pytest_asyncio
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.humanloop import FakeHumanloop
from tests.fakes.langfuse import FakeLangfuse
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
PUBLIC, SECRET = "pk-lf-security", "sk-lf-security-secret"
HUMANLOOP_KEY = "hl_sk_security_secret"
ATTACKER_PUBLIC, ATTACKER_SECRET = "pk-lf-attacker", "sk-lf-attacker-secret"
SAFETY_NET_SECONDS = 10
# Tests that use the fake stores run in the module's event loop, where their uvicorn runs.
ON_THE_SERVERS_LOOP: Final = pytest.mark.asyncio(loop_scope="module")


def basic(public: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


def error_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def client_for(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")


@dataclass
class Trap:
    """A TCP listener on 127.0.0.1 that counts every connection it is offered."""

    server: asyncio.Server
    connections: list[int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@contextlib.asynccontextmanager
async def open_trap() -> AsyncIterator[Trap]:
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    async with server:
        yield Trap(server, connections)


class Switchboard:
    """The ASGI app of one of the module's uvicorn servers: each test plugs in its own fake
    (starting and stopping uvicorn costs a fifth of a second: once per module is enough)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no fake plugged in"
        await self.app(scope, receive, send)


Servers = tuple[Switchboard, str, Switchboard, str]


@contextlib.asynccontextmanager
async def serve_fakes() -> AsyncIterator[Servers]:
    """Two uvicorn servers (Langfuse, Humanloop): a module's fixture opens them once."""
    langfuse, humanloop = Switchboard(), Switchboard()
    async with (
        serve_in_background(langfuse) as langfuse_url,
        serve_in_background(humanloop) as humanloop_url,
    ):
        yield langfuse, langfuse_url, humanloop, humanloop_url + "/v5"


@dataclass
class Stores:
    langfuse: FakeLangfuse
    langfuse_url: str
    humanloop: FakeHumanloop
    humanloop_url: str


def plug_stores(servers: Servers) -> Stores:
    """A fresh fake Langfuse and Humanloop behind the module's servers."""
    langfuse_board, langfuse_url, humanloop_board, humanloop_url = servers
    langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    langfuse.add_prompt("greeting", "Hello {{name}}!", labels=["production"])
    humanloop = FakeHumanloop(api_key=HUMANLOOP_KEY)
    humanloop.add_prompt("tagline", "A tagline for {{name}}", deploy_to=["production"])
    langfuse_board.app, humanloop_board.app = langfuse.app, humanloop.app
    return Stores(langfuse, langfuse_url, humanloop, humanloop_url)


def hostile_fields(url: str) -> dict[str, Any]:
    """Every field a client might hope the middleware reads a host or a key from."""
    host = url.removeprefix("http://")
    return {
        "langfuse_host": url,
        "langfuse_base_url": url,
        "langfuse_baseurl": url,
        "langfuse_url": url,
        "api_base": url,
        "base_url": url,
        "api_url": url,
        "host": host,
        "url": url,
        "humanloop_base_url": url + "/v5",
        "humanloop_api_key": "hl_sk_attacker",
        "humanloop_host": url,
        "api_key": "sk-attacker",
        "upstream_base_url": url,
        "extra_headers": {"host": host},
        "metadata": {
            "langfuse_host": url,
            "langfuse_public_key": ATTACKER_PUBLIC,
            "langfuse_secret_key": ATTACKER_SECRET,
        },
    }


def _all_secrets() -> list[str]:
    return [
        SECRET,
        ATTACKER_SECRET,
        HUMANLOOP_KEY,
        "sk-lf-wrong-configured",
        "sk-sidecar-key",
        base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode(),
        base64.b64encode(f"{ATTACKER_PUBLIC}:{ATTACKER_SECRET}".encode()).decode(),
    ]


def assert_no_secret(*texts: str) -> None:
    shown = "\n".join(texts)
    assert [secret for secret in _all_secrets() if secret in shown] == []


# The fixtures of every test module that runs against the fake stores (a plugin of
# tests/conftest.py): one set of servers per module, fresh stores per test.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with serve_fakes() as running:
        yield running


@pytest.fixture
def stores(servers: Servers) -> Stores:
    """A fresh fake Langfuse and Humanloop behind the module's servers."""
    return plug_stores(servers)
