"""The store fault matrix: Langfuse failing every way it can, the middleware still answering.

The fake Langfuse runs on uvicorn on 127.0.0.1 behind :class:`TcpFront`, a TCP hop that can
also refuse or reset connections; the middleware in front of a :class:`RecordingApp` is
driven in process. For every fault:

* cold (nothing cached): the 502 of README "Errors", OpenAI-shaped, with no secret in it, within
  the store timeout;
* a broken answer is never cached: the next request goes to the store again, and once the
  store heals the next request is a fresh fetch;
* warm (``cache_ttl_seconds=0``, so every request revalidates in the background): the stale
  copy is served while the fault lasts, and fresh content follows once the store heals.

Background refreshes are awaited with ``cache.drain()``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
import pytest
import pytest_asyncio
from starlette.types import ASGIApp, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.fakes.langfuse import INVALID_JSON, WRONG_SHAPE, FakeLangfuse
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
PUBLIC, SECRET = "pk-lf-faults", "sk-lf-faults-secret"
BASIC = base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
REQUEST = {
    "model": "langfuse/gpt-4o-mini",
    "prompt_id": "greeting",
    "prompt_variables": {"name": "Ada"},
}
V1 = [{"role": "user", "content": "Hello Ada (v1)"}]
V2 = [{"role": "user", "content": "Hello Ada (v2)"}]
SAFETY_NET_SECONDS = 5  # a hang fails the test instead of the run; never a synchronisation

# Every test shares the module's event loop, in which the fake Langfuse's uvicorn runs.
pytestmark = pytest.mark.asyncio(loop_scope="module")


# --- a TCP hop that can refuse and reset -----------------------------------------------------

FrontMode = Literal["forward", "reset", "refuse"]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets an RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() != -1:  # not already closed
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass  # the other side went away: nothing left to relay
    finally:
        writer.close()


class TcpFront:
    """A TCP hop on 127.0.0.1 in front of the fake Langfuse: forwards, resets or refuses.

    ``refuse`` closes the listening socket (a connect is then refused) and a later mode opens
    it again on the same port; ``reset`` accepts, then closes at once with an RST. Every mode
    change resets the connections already open, so a pooled keep-alive connection cannot
    slip past the fault.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self.mode: FrontMode = "forward"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def set_mode(self, mode: FrontMode) -> None:
        self.mode = mode
        for writer in list(self._writers):
            _reset(writer)
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self.start()  # the same port again

    async def aclose(self) -> None:
        await self.set_mode("refuse")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            if self.mode == "reset":
                _reset(writer)
                return
            target_reader, target_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
            pair = {writer, target_writer}
            self._writers |= pair
            try:
                await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))
            finally:
                self._writers -= pair
        finally:
            self._tasks.discard(task)


# --- the rig -----------------------------------------------------------------------------------


@dataclass
class Rig:
    langfuse: FakeLangfuse
    front: TcpFront
    app: RecordingApp
    middleware: PromptMiddleware
    client: httpx2.AsyncClient

    async def ask(self) -> httpx2.Response:
        async with asyncio.timeout(SAFETY_NET_SECONDS):
            return await self.client.post(URL, json=REQUEST)

    async def settle(self) -> None:
        """Wait for the background refresh a stale answer started."""
        async with asyncio.timeout(SAFETY_NET_SECONDS):
            await self.middleware.engine.cache.drain()


MakeRig = Callable[..., AbstractAsyncContextManager[Rig]]


class Switchboard:
    """The ASGI app of the module's one uvicorn server: each test plugs in its own fake.

    Starting and stopping uvicorn costs a fifth of a second; once per module it is paid once.
    """

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no fake plugged in"
        await self.app(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def langfuse_server() -> AsyncIterator[tuple[Switchboard, int]]:
    board = Switchboard()
    async with serve_in_background(board) as url:
        yield board, httpx2.URL(url).port or 80


@pytest.fixture
def make_rig(langfuse_server: tuple[Switchboard, int]) -> MakeRig:
    board, port = langfuse_server

    @asynccontextmanager
    async def run(*, store_timeout: float) -> AsyncIterator[Rig]:
        langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
        langfuse.add_prompt("greeting", "Hello {{name}} (v1)", labels=["production"])
        board.app = langfuse.app
        front = TcpFront(port)
        await front.start()
        app = RecordingApp()
        settings = Settings(
            langfuse_public_key=PUBLIC,
            langfuse_secret_key=Secret(SECRET),
            langfuse_base_url=front.url,
            cache_ttl_seconds=0,
            store_timeout_seconds=store_timeout,
        )
        middleware = PromptMiddleware(app, settings)
        client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=middleware), base_url="http://testserver"
        )
        try:
            yield Rig(langfuse, front, app, middleware, client)
        finally:
            langfuse.release()  # held requests must not outlive the test
            await client.aclose()
            await middleware.engine.aclose()
            await front.aclose()

    return run


# --- the faults ----------------------------------------------------------------------------


async def _hold(rig: Rig) -> None:
    rig.langfuse.hold()


async def _release(rig: Rig) -> None:
    rig.langfuse.release()


def _fail_with(status: int | None) -> Callable[[Rig], Awaitable[None]]:
    async def apply(rig: Rig) -> None:
        rig.langfuse.fail_with = status

    return apply


def _broken_body(body: bytes | None) -> Callable[[Rig], Awaitable[None]]:
    async def apply(rig: Rig) -> None:
        rig.langfuse.broken_body = body

    return apply


async def _rotate_secret(rig: Rig) -> None:
    rig.langfuse.secret_key = "sk-lf-rotated"  # the middleware's key is revoked: a real 401


async def _restore_secret(rig: Rig) -> None:
    rig.langfuse.secret_key = SECRET


def _front(mode: FrontMode) -> Callable[[Rig], Awaitable[None]]:
    async def apply(rig: Rig) -> None:
        await rig.front.set_mode(mode)

    return apply


def _fetches(rig: Rig) -> int:
    return rig.langfuse.fetch_count


def _connections(rig: Rig) -> int:
    return rig.front.accepted


@dataclass(frozen=True)
class Fault:
    name: str
    apply: Callable[[Rig], Awaitable[None]]
    heal: Callable[[Rig], Awaitable[None]]
    message: str  # what the cold error message must say
    # How often the store was tried (None: a refused connect reaches nothing to count).
    attempts: Callable[[Rig], int] | None
    store_timeout: float = 2.0

    def __str__(self) -> str:
        return self.name


FAULTS = [
    Fault("slow", _hold, _release, "did not answer", _fetches, store_timeout=0.5),
    Fault("http-500", _fail_with(500), _fail_with(None), "HTTP 500", _fetches),
    Fault("http-503-html", _fail_with(503), _fail_with(None), "HTTP 503", _fetches),
    Fault("http-429", _fail_with(429), _fail_with(None), "rate-limiting", _fetches),
    Fault("http-401", _rotate_secret, _restore_secret, "refused the credentials", _fetches),
    Fault("refused", _front("refuse"), _front("forward"), "could not be reached", None),
    Fault("reset", _front("reset"), _front("forward"), "failed while fetching", _connections),
    Fault("invalid-json", _broken_body(INVALID_JSON), _broken_body(None), "not JSON", _fetches),
    Fault("wrong-shape", _broken_body(WRONG_SHAPE), _broken_body(None), "invalid prompt", _fetches),
]


def error_of(response: httpx2.Response) -> dict[str, Any]:
    """The error body of README "Errors", checked for its shape and for any secret."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    shown = response.text + repr(response.headers)
    for secret in (SECRET, PUBLIC, BASIC):
        assert secret not in shown
    error: dict[str, Any] = body["error"]
    return error


# --- cold: the contract's error ------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_cold_fault_is_a_502_prompt_store_unavailable(
    make_rig: MakeRig, fault: Fault
) -> None:
    async with make_rig(store_timeout=fault.store_timeout) as rig:
        await fault.apply(rig)
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await rig.ask()
        elapsed = loop.time() - started

    assert response.status_code == 502
    error = error_of(response)
    assert (error["code"], error["type"], error["param"]) == (
        "prompt_store_unavailable",
        "api_error",
        None,
    )
    assert fault.message in error["message"]
    assert rig.app.requests == []  # nothing half-rewritten reaches the app
    if fault.name == "slow":
        # It waited for the store, and no longer than its timeout (plus scheduling slack).
        assert fault.store_timeout <= elapsed < fault.store_timeout + 2


async def test_a_closed_port_is_a_502() -> None:
    # The plain case: a base URL whose port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=f"http://127.0.0.1:{port}",
    )
    middleware = PromptMiddleware(app, settings)
    async with (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=middleware), base_url="http://testserver"
        ) as client,
        asyncio.timeout(SAFETY_NET_SECONDS),
    ):
        response = await client.post(URL, json=REQUEST)
    await middleware.engine.aclose()
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "prompt_store_unavailable"
    assert f"127.0.0.1:{port} could not be reached (ConnectError)" in error["message"]


async def test_a_missing_prompt_is_a_404_not_a_fault(make_rig: MakeRig) -> None:
    async with make_rig(store_timeout=2.0) as rig:
        rig.langfuse.delete_prompt("greeting")
        response = await rig.ask()
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["param"]) == ("prompt_not_found", "prompt_id")


# --- a broken answer is never cached; a healed store is used at once --------------------


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_a_broken_answer_is_never_cached(make_rig: MakeRig, fault: Fault) -> None:
    async with make_rig(store_timeout=fault.store_timeout) as rig:
        await fault.apply(rig)
        first = await rig.ask()
        after_first = fault.attempts(rig) if fault.attempts else 0
        second = await rig.ask()
        after_second = fault.attempts(rig) if fault.attempts else 0
        await fault.heal(rig)
        fetches = rig.langfuse.fetch_count
        healed = await rig.ask()

        assert [first.status_code, second.status_code] == [502, 502]
        if fault.attempts is not None:
            assert 0 < after_first < after_second  # the second request tried the store again
        assert healed.status_code == 200
        assert healed.headers["x-prompt-cache"] == "miss"  # fetched, not served from cache
        assert rig.langfuse.fetch_count == fetches + 1
        assert rig.app.last.json()["messages"] == V1


# --- warm: the stale copy while the fault lasts, fresh content once it heals ---------------


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_warm_fault_serves_stale_then_recovers(make_rig: MakeRig, fault: Fault) -> None:
    async with make_rig(store_timeout=fault.store_timeout) as rig:
        warm = await rig.ask()
        assert (warm.status_code, warm.headers["x-prompt-cache"]) == (200, "miss")

        await fault.apply(rig)
        during: list[httpx2.Response] = []
        attempts_before = fault.attempts(rig) if fault.attempts else 0
        for refresh in range(1, 4):
            during.append(await rig.ask())
            if fault.name == "slow":
                # The client has its answer while this refresh is still held by the store.
                async with asyncio.timeout(SAFETY_NET_SECONDS):
                    await rig.langfuse.wait_for_held(refresh)
            assert rig.app.last.json()["messages"] == V1
            await rig.settle()
        attempts_during = fault.attempts(rig) if fault.attempts else 0

        # The store heals with new content: the next refresh brings it in.
        rig.langfuse.add_prompt("greeting", "Hello {{name}} (v2)", labels=["production"])
        await fault.heal(rig)
        revalidating = await rig.ask()
        assert rig.app.last.json()["messages"] == V1  # served at once, refreshed behind it
        await rig.settle()
        fresh = await rig.ask()
        await rig.settle()

    assert [(r.status_code, r.headers["x-prompt-cache"]) for r in during] == [(200, "stale")] * 3
    if fault.attempts is not None:
        assert attempts_during >= attempts_before + 3  # each refresh really met the fault
    assert (revalidating.status_code, fresh.status_code) == (200, 200)
    assert rig.app.last.json()["messages"] == V2
    assert fresh.headers["x-prompt-version"] == "2"


# --- a config that is not an object ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    ["gpt-4o", "", ["temperature", 0.1], [{"model": "gpt-4o", "temperature": 0.1}], 3, 2.5, True],
    ids=repr,
)
async def test_a_config_that_is_not_an_object_serves_the_prompt_without_parameters(
    make_rig: MakeRig, config: Any
) -> None:
    async with make_rig(store_timeout=2.0) as rig:
        rig.langfuse.add_prompt("odd", "Odd {{name}}", config=config, labels=["production"])
        body = {**REQUEST, "prompt_id": "odd", "temperature": 0.7}
        responses = []
        for _ in range(2):  # fetched, then from the cache
            async with asyncio.timeout(SAFETY_NET_SECONDS):
                responses.append(await rig.client.post(URL, json=body))
            await rig.settle()

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.headers["x-prompt-cache"] for r in responses] == ["miss", "stale"]
    for received in rig.app.requests:
        assert received.json() == {
            "model": "gpt-4o-mini",
            "temperature": 0.7,
            "messages": [{"role": "user", "content": "Odd Ada"}],
        }
